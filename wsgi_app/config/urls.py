from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from board import api, pages
from core import views

router = SimpleRouter()
router.register("boards", api.BoardViewSet, basename="board")
router.register("cards", api.CardDetail, basename="card")

api_urls = [
    path("auth/login", views.login_view, name="login"),
    path("auth/logout", views.logout_view, name="logout"),
    path("auth/me", views.me_view, name="me"),
    path("realtime/token", views.realtime_token_view, name="realtime-token"),
    path("io-wait", views.io_wait_view, name="io-wait"),
    path("boards/<int:board_id>/cards/", api.BoardCardList.as_view(), name="board-cards"),
    path(
        "cards/<int:card_id>/attachments/",
        api.CardAttachmentList.as_view(),
        name="card-attachments",
    ),
    path("openapi.json", SpectacularAPIView.as_view(), {"format": "json"}, name="openapi"),
    # The split view serves its setup script as a file: no inline script under our CSP.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="docs"),
    *router.urls,
]

urlpatterns = [
    path("", pages.home, name="home"),
    path("favicon.ico", pages.favicon),
    path("boards/<int:board_id>/", pages.board_page, name="board-page"),
    path("admin/", admin.site.urls),
    path("api/", include(api_urls)),
]

handler400 = "core.errors.handler400"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
