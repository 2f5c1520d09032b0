"""HTTP helpers shared by the routes: JSON errors and token auth."""

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from . import auth


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str]  # per field for 422, else {}: always present


class ErrorBody(BaseModel):
    """Every error answer: {"error": {"code", "message", "fields"}} (docs/protocol.md)."""

    error: ErrorDetail


ERROR_MEANINGS = {
    400: "Bad request",
    401: "No valid real-time token",
    403: "Not allowed",
    404: "Not found",
    422: "Invalid parameters",
    503: "The event store is not reachable, or this process is stopping",
}


def errors(*statuses: int) -> dict:
    """`responses=` for a route: the error statuses it really answers, in the kit's shape."""
    return {s: {"model": ErrorBody, "description": ERROR_MEANINGS[s]} for s in statuses}


def error(status: int, code: str, message: str, fields: dict | None = None) -> JSONResponse:
    body = {"code": code, "message": message, "fields": fields or {}}
    return JSONResponse({"error": body}, status_code=status)


STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found"}


def fail(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, {"code": code, "message": message})


def current_user(request: Request) -> auth.User:
    token = auth.token_from(request.headers, request.cookies)
    try:
        return auth.verify(token, request.app.state.settings.realtime_token_key.get_secret_value())
    except auth.AuthError as e:
        raise HTTPException(
            401, {"code": "unauthorized", "message": str(e)}, {"WWW-Authenticate": "Bearer"}
        ) from e
