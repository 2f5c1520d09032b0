"""Server-rendered pages: the home page and the live board page."""

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db.models import Count
from django.http import HttpResponsePermanentRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie

from board.models import Board, Card


@ensure_csrf_cookie  # the login form and the board page post to the API with X-CSRFToken
def home(request):
    boards = []
    if request.user.is_authenticated:
        boards = (
            Board.objects.visible_to(request.user)
            .select_related("owner")
            .annotate(card_count=Count("cards"))
        )
    return render(request, "board/home.html", {"boards": boards})


@login_required
@ensure_csrf_cookie
def board_page(request, board_id: int):
    board = get_object_or_404(Board.objects.visible_to(request.user), pk=board_id)
    return render(
        request,
        "board/board.html",
        {"board": board, "columns": Card.Column.choices},
    )


def favicon(request):
    # Browsers ask for /favicon.ico on every page without a <link rel=icon> (the admin's).
    return HttpResponsePermanentRedirect(staticfiles_storage.url("board/favicon.svg"))
