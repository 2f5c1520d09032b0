"""The example's pages: the board list (the home page once logged in) and the live board."""

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie

from board.models import Board, Card, Invitation
from core import pages as site_pages


@ensure_csrf_cookie  # the pages post to the API with X-CSRFToken
def home(request):
    if not request.user.is_authenticated:
        return site_pages.home(request)  # the site's login page
    boards = (
        Board.objects.visible_to(request.user)
        .select_related("owner")
        .annotate(card_count=Count("cards"))
    )
    invitations = Invitation.objects.filter(username=request.user.username).select_related(
        "board", "inviter"
    )
    return render(request, "board/home.html", {"boards": boards, "invitations": invitations})


@login_required
@ensure_csrf_cookie
def board_page(request, board_id: int):
    board = get_object_or_404(
        Board.objects.visible_to(request.user).select_related("owner"), pk=board_id
    )
    people = {str(board.owner_id): board.owner.username}
    people |= {str(u.pk): u.username for u in board.members.all()}
    return render(
        request,
        "board/board.html",
        {
            "board": board,
            "columns": Card.Column.choices,
            "is_owner": board.owner_id == request.user.pk,
            "people": people,
        },
    )
