from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

from core import events
from core.breaker import ping_redis, redis_breaker
from core.logging import request_id


class HealthCheckMiddleware:
    """Answer /api/healthz and /api/readyz before anything else runs.

    Placed first, so neither ALLOWED_HOSTS (the container healthcheck sends Host
    127.0.0.1:8000) nor the HTTPS redirect (it speaks plain HTTP) gets in the way, and no
    session or user is loaded for a probe.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/api/healthz":
            # Events this process failed to publish since it started (the log says which).
            return JsonResponse({"status": "ok", "event_publish_failures": events.failures})
        if request.path == "/api/readyz":
            return self.ready()
        return self.get_response(request)

    @staticmethod
    def ready() -> JsonResponse:
        checks = {}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"error: {type(exc).__name__}"
        finally:
            # Probes don't go through request_finished: give the connection back now.
            connection.close()
        if not redis_breaker.allows():
            # A background probe is already asking Redis every few seconds; answer at once
            # instead of holding a thread for a DNS or connect timeout.
            checks["redis"] = "error: unavailable (probing)"
        else:
            try:
                events.redis_client().ping()
                cache.ping()  # the cache forgives outages; readiness must not
                checks["redis"] = "ok"
            except Exception as exc:
                redis_breaker.trip(ping_redis)
                checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(value == "ok" for value in checks.values())
        return JsonResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status=200 if ok else 503,
        )


class RequestIDMiddleware:
    """Keep nginx's X-Request-ID for the log lines written while this request runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = request_id.set(request.headers.get("X-Request-ID", "")[:64])
        try:
            return self.get_response(request)
        finally:
            request_id.reset(token)
