from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication


class SessionAuthentication(authentication.SessionAuthentication):
    """Django's session, with CSRF enforced on unsafe methods (as DRF does).

    Naming a scheme makes DRF answer 401 (not 403) to a request without a session, so a
    client can tell "log in" apart from "not allowed".
    """

    def authenticate_header(self, request):
        return 'Session realm="api"'


class SessionAuthScheme(SessionScheme):
    """Describe our session authentication in the OpenAPI schema like DRF's own."""

    target_class = SessionAuthentication
