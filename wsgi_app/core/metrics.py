"""Prometheus metrics of the Django service (docs/design.md, "Observability").

Gunicorn runs several worker processes: prometheus-client's multiprocess mode keeps each
process's values in files under PROMETHEUS_MULTIPROC_DIR (a tmpfs, emptied by compose/start),
and the arbiter serves their sum on METRICS_PORT (gunicorn.conf.py), an internal port that
nginx never proxies. Without that variable (manage.py, tests) the values stay in-process.
"""

import os
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)

# The SLO in loadtest/slo.toml is p95 < 0.5 s: buckets around it.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "kit_django_requests_total", "HTTP requests answered", ["view", "method", "status"]
)
LATENCY = Histogram(
    "kit_django_request_duration_seconds",
    "Time from the request reaching Django to its response",
    ["view"],
    buckets=LATENCY_BUCKETS,
)
DB_QUERY = Histogram(
    "kit_django_db_query_duration_seconds",
    "Time of each SQL statement",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
CACHE = Counter("kit_django_cache_gets_total", "Cache reads", ["result"])  # hit | miss
EVENTS = Counter("kit_django_events_published_total", "Events written to their stream")
EVENT_FAILURES = Counter(
    "kit_django_event_publish_failures_total", "Events not published (stream or live)", ["stage"]
)
for _stage in ("stream", "live"):
    EVENT_FAILURES.labels(_stage)  # a 0 to alert on before the first failure


class MetricsMiddleware:
    """Count and time each request by the URL pattern's name (bounded, unlike the path)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name or match.route) if match else "unmatched"
        LATENCY.labels(view).observe(time.perf_counter() - start)
        REQUESTS.labels(view, request.method, str(response.status_code)).inc()
        return response


def time_query(execute, sql, params, many, context):
    """A connection.execute_wrappers entry (installed on each new connection, core/apps.py)."""
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        DB_QUERY.observe(time.perf_counter() - start)


def serve_multiprocess(port: int) -> None:
    """Serve every worker's metrics, summed, from the Gunicorn arbiter."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)


def worker_exited(pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
