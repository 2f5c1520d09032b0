"""Every API error has one shape: {"error": {"code", "message", "fields"}} with the right status."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The resource changed since the version given in If-Match."


class TooManyRequests(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"
    default_detail = "Too many requests."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


# DRF's names for generic errors → the codes nginx and the real-time service use for the same
# statuses (docs/protocol.md, "Error shape").
SAME_AS_ELSEWHERE = {
    "not_authenticated": "unauthorized",
    "authentication_failed": "unauthorized",
    "permission_denied": "forbidden",
    "throttled": "rate_limited",
}


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> dict:
    """DRF's nested ValidationError detail → {"field": ["message", ...]}."""
    if isinstance(detail, dict):
        return {
            key: [str(item) for item in value] if isinstance(value, list) else _flatten(value)
            for key, value in detail.items()
        }
    return {"non_field_errors": [str(item) for item in detail]}


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: Django's 500 handler (JSON below) takes over
    if isinstance(exc, exceptions.ValidationError):
        # The JSON was well formed but its values are not acceptable.
        response.status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
        response.data = error_body(
            "validation_failed", "Some fields are invalid.", _flatten(exc.detail)
        )
        return response
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    message = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(exc, exceptions.ParseError):
        code = "malformed_request"
    elif isinstance(exc, exceptions.PermissionDenied) and str(message).startswith("CSRF Failed"):
        code = "csrf_failed"
    code = code if isinstance(code, str) else "error"
    response.data = error_body(SAME_AS_ELSEWHERE.get(code, code), str(message))
    return response


# Django-level handlers (URLs outside the API views, crashes): JSON for /api/, HTML otherwise.
def _json_or_default(request, default, status_code, code, message):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=status_code)
    return default


def handler404(request, exception):
    from django.views.defaults import page_not_found

    return _json_or_default(
        request,
        page_not_found(request, exception),
        404,
        "not_found",
        "No such resource.",
    )


def handler403(request, exception):
    from django.views.defaults import permission_denied

    return _json_or_default(
        request, permission_denied(request, exception), 403, "forbidden", "Not allowed."
    )


def handler500(request):
    from django.conf import settings
    from django.http import HttpResponseServerError
    from django.template import loader

    # No request context on purpose (as Django's own): whatever failed may be in it.
    page = loader.get_template("500.html").render({"site_name": settings.SITE_NAME})
    return _json_or_default(
        request, HttpResponseServerError(page), 500, "internal_error", "Internal error."
    )


def handler400(request, exception):
    from django.views.defaults import bad_request

    if isinstance(exception, RequestDataTooBig):
        return _json_or_default(
            request, bad_request(request, exception), 413, "payload_too_large", str(exception)
        )
    return _json_or_default(
        request, bad_request(request, exception), 400, "bad_request", "Bad request."
    )


def csrf_failure(request, reason=""):
    from django.views.csrf import csrf_failure as default

    return _json_or_default(request, default(request, reason), 403, "csrf_failed", reason)
