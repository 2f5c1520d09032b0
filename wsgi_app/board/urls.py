"""The example's URLs: its pages (the home page among them) and its part of the API."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from board import api, pages

router = SimpleRouter()
router.register("boards", api.BoardViewSet, basename="board")
router.register("cards", api.CardDetail, basename="card")

api_urls = [
    path("boards/<int:board_id>/cards/", api.BoardCardList.as_view(), name="board-cards"),
    path(
        "boards/<int:board_id>/invitations/",
        api.BoardInvitationList.as_view(),
        name="board-invitations",
    ),
    path(
        "boards/<int:board_id>/invitations/<int:invitation_id>/",
        api.BoardInvitationDetail.as_view(),
        name="board-invitation",
    ),
    path("invitations/", api.MyInvitationList.as_view(), name="invitations"),
    path(
        "invitations/<int:invitation_id>/accept",
        api.accept_invitation,
        name="invitation-accept",
    ),
    path(
        "invitations/<int:invitation_id>/decline",
        api.decline_invitation,
        name="invitation-decline",
    ),
    path(
        "cards/<int:card_id>/attachments/",
        api.CardAttachmentList.as_view(),
        name="card-attachments",
    ),
    *router.urls,
]

urlpatterns = [
    path("", pages.home, name="board-home"),
    path("boards/<int:board_id>/", pages.board_page, name="board-page"),
    path("api/", include(api_urls)),
]
