"""HTTP helpers shared by the routes: JSON errors and token auth."""

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from . import auth


def error(status: int, code: str, message: str, fields: dict | None = None) -> JSONResponse:
    body: dict = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
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
