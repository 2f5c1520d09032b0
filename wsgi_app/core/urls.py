"""The site's own URLs: pages, auth, the API root and docs. Apps include theirs before these."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import pages, status, views

api_urls = [
    path("", views.api_root, name="api-root"),
    path("auth/login", views.login_view, name="login"),
    path("auth/signup", views.signup_view, name="signup-api"),
    path("auth/logout", views.logout_view, name="logout"),
    path("auth/me", views.me_view, name="me"),
    path("realtime/token", views.realtime_token_view, name="realtime-token"),
    path("io-wait", views.io_wait_view, name="io-wait"),
    path("stream-demo", views.StreamDemoView.as_view(), name="stream-demo"),
    path("openapi.json", SpectacularAPIView.as_view(), {"format": "json"}, name="openapi"),
    # The split view serves its setup script as a file: no inline script under our CSP.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="docs"),
]

urlpatterns = [
    path("", pages.home, name="home"),
    path("signup/", pages.signup, name="signup"),
    path("favicon.ico", pages.favicon),
    path("status", status.status, name="status"),
    path("api/", include(api_urls)),
]
