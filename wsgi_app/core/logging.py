"""The kit's one log shape: a JSON object per line with `ts`, `level`, `service`, `logger`,
`msg` and `request_id` (nginx's X-Request-ID, so one request can be followed across
services), plus per-kind fields (docs/design.md, "Logs"). Gunicorn's access and error logs
use it too (gunicorn.conf.py), and so does core/backup.py.
"""

import contextvars
import json
import logging
import os
from datetime import UTC, datetime

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# Which service wrote the line: the image serves wsgi, migrate and backup (compose sets it).
SERVICE = os.environ.get("LOG_SERVICE", "wsgi")


def line(level: str, logger: str, msg: str, rid: str = "", created: float | None = None, **fields):
    when = datetime.fromtimestamp(created, UTC) if created else datetime.now(UTC)
    return json.dumps(
        {
            "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "service": SERVICE,
            "logger": logger,
            "msg": msg,
            "request_id": rid,
            **fields,
        }
    )


class RequestIDFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """`extra={"fields": {...}}` adds per-kind fields to a line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = dict(getattr(record, "fields", None) or {})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return line(
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "request_id", "") or request_id.get(),
            record.created,
            **fields,
        )
