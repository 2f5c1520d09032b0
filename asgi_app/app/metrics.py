"""Prometheus metrics of the real-time service, served on METRICS_PORT (an internal port,
never proxied by nginx; compose/start sets it). Counters are bumped at the point where a
thing happens (hub.py, main.py); connection and subscription counts are read from the hub
at scrape time, so the hot paths carry no gauge bookkeeping.

One Uvicorn process per container (the default) owns the port; with UVICORN_WORKERS > 1 the
first worker serves its own numbers only (the others log that the port is taken).
"""

import contextlib
import logging
import os
import time
from datetime import datetime
from functools import lru_cache

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger("asgi.metrics")

REQUESTS = Counter("kit_asgi_requests_total", "HTTP requests answered", ["method", "status"])
LATENCY = Histogram(
    "kit_asgi_request_duration_seconds",
    "Time to answer an HTTP request (a stream: until it ends)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
)
DELIVERED = Counter("kit_asgi_events_delivered_total", "Live events queued to a client", ["kind"])
LAG = Histogram(
    "kit_asgi_fanout_lag_seconds",
    "From the event's `ts` (written by the publisher) to its queueing for a client",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CLOSES = Counter(
    "kit_asgi_closes_total",
    "Connections closed by the service, by close code (1013: slow consumer)",
    ["kind", "code"],
)
for _kind in ("ws", "sse"):
    CLOSES.labels(_kind, "1013")  # a 0 to alert on before the first slow consumer
REDIS_RECONNECTS = Counter(
    "kit_asgi_redis_reconnects_total", "Redis connections lost and reopened (Pub/Sub, streams)"
)


def request(method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, str(status)).inc()
    LATENCY.observe(seconds)


@lru_cache(maxsize=4096)
def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def delivered(ev, kind: str) -> None:
    DELIVERED.labels(kind).inc()
    # An event without a valid `ts` is still delivered, just not timed.
    with contextlib.suppress(KeyError, TypeError, ValueError):
        LAG.observe(max(0.0, time.time() - _epoch(ev.body["ts"])))


def closed(kind: str, code: int) -> None:
    CLOSES.labels(kind, str(code)).inc()


class HubCollector:
    """Open connections, topics and subscriptions of this process's hub."""

    hub = None

    def collect(self):
        conns = GaugeMetricFamily(
            "kit_asgi_connections", "Open WebSockets (ws) and SSE streams (sse)", labels=["kind"]
        )
        counts = {"ws": 0, "sse": 0}
        subs = 0
        hub = self.hub
        if hub is not None:
            for conn in list(hub.conns):
                counts[conn.kind] = counts.get(conn.kind, 0) + 1
                subs += len(conn.subs)
        for kind, n in counts.items():
            conns.add_metric([kind], n)
        yield conns
        yield GaugeMetricFamily(
            "kit_asgi_topics",
            "Topics with live subscribers in this process",
            value=len(hub.feeds) if hub is not None else 0,
        )
        yield GaugeMetricFamily(
            "kit_asgi_subscriptions",
            "Subscriptions (connection x topic) in this process",
            value=subs,
        )


COLLECTOR = HubCollector()
REGISTRY.register(COLLECTOR)


def serve(hub) -> None:
    """Start the metrics endpoint once per process (METRICS_PORT unset: none, e.g. tests)."""
    COLLECTOR.hub = hub
    port = os.environ.get("METRICS_PORT", "")
    if not port or getattr(serve, "started", False):
        return
    try:
        start_http_server(int(port))
        serve.started = True
    except OSError as e:
        log.warning("metrics port %s not served by this process: %s", port, e)
