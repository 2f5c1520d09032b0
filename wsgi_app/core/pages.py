"""The site's own pages: home (log in), sign up, the favicon. Apps add theirs in their urls."""

from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie  # the login form posts to the API with X-CSRFToken
def home(request):
    return render(request, "core/home.html")


@ensure_csrf_cookie
def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    return render(request, "core/signup.html")


def favicon(request):
    # Browsers ask for /favicon.ico on every page without a <link rel=icon> (the admin's).
    return HttpResponsePermanentRedirect(staticfiles_storage.url("core/favicon.svg"))


def site(request) -> dict:
    """Context processor: what every page of the site shows."""
    from django.conf import settings

    return {"site_name": settings.SITE_NAME}
