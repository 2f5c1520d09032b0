"""The kit's one log shape (as wsgi_app/core/logging.py): a JSON object per line with `ts`,
`level`, `service`, `logger`, `msg`, `request_id`, plus per-kind fields. Uvicorn loads it
with --log-config (log-config.json); RequestLog writes one access line per request or
WebSocket, with nginx's X-Request-ID.
"""

import contextvars
import json
import logging
import time
from datetime import UTC, datetime

from . import metrics

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
access = logging.getLogger("asgi.access")
delivery = logging.getLogger("asgi.delivery")
QUIET = ("/rt/healthz", "/rt/readyz")  # the healthcheck every 5 s is noise


class JsonFormatter(logging.Formatter):
    """`extra={"fields": {...}}` adds per-kind fields; `extra={"request_id": ...}` another id."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "service": "asgi",
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
            **(getattr(record, "fields", None) or {}),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)


def header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


class RequestLog:
    """ASGI middleware: keeps X-Request-ID for the log lines of this request (and the events
    it publishes), counts and times requests, and logs one access line each."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        token = request_id.set(header(scope, b"x-request-id")[:64])
        start = time.perf_counter()
        status = {"code": 0}

        async def watch(message):
            kind = message["type"]
            if kind == "http.response.start":
                status["code"] = message["status"]
            elif kind == "websocket.close":
                status["code"] = message.get("code", 1000)
            elif kind == "websocket.accept":
                status["code"] = 101
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            elapsed = time.perf_counter() - start
            if scope["type"] == "http":
                metrics.request(scope["method"], status["code"] or 500, elapsed)
            if scope["path"] not in QUIET:
                fields = {
                    "kind": scope["type"],
                    "method": scope.get("method", "GET"),
                    "path": scope["path"],
                    "status": status["code"],
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": header(scope, b"x-real-ip"),
                }
                access.info("request", extra={"fields": fields})
            request_id.reset(token)


def log_delivery(ev, subscribers: int) -> None:
    """One line per event and process (hub.py): the write's request id finds every delivery."""
    fields = {
        "event_id": ev.id,
        "topic": ev.topic,
        "type": ev.body.get("type"),
        "subscribers": subscribers,
    }
    delivery.info(
        "event delivered", extra={"request_id": ev.body.get("request_id", ""), "fields": fields}
    )
