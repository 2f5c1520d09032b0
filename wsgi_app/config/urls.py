from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    # Apps first: a domain app may take over the home page ("") from core's.
    path("", include("board.urls")),  # example
    path("", include("core.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "core.errors.handler400"
handler403 = "core.errors.handler403"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
