"""Prometheus metrics of the real-time service, served on METRICS_PORT (an internal port,
never proxied by nginx) by the process compose/start runs (app/serve.py).

Every Uvicorn process counts in prometheus-client's multiprocess mode: its values live in
files under PROMETHEUS_MULTIPROC_DIR (a tmpfs, emptied by compose/start), and the serving
process sums them, so UVICORN_WORKERS > 1 is counted whole, as Gunicorn's workers are in
Django. Counters are bumped where a thing happens (hub.py, main.py); the connection and
subscription gauges are copied from each process's hub once a second (`track`), so the hot
paths carry no gauge bookkeeping. Without PROMETHEUS_MULTIPROC_DIR (the unit tests) the values
stay in memory.
"""

import asyncio
import contextlib
import glob
import os
import time
from datetime import datetime
from functools import lru_cache

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

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


# Summed over the live processes; a process that died leaves the sum (`serve`).
CONNECTIONS = Gauge(
    "kit_asgi_connections",
    "Open WebSockets (ws) and SSE streams (sse)",
    ["kind"],
    multiprocess_mode="livesum",
)
TOPICS = Gauge(
    "kit_asgi_topics", "Topics with live subscribers (per process)", multiprocess_mode="livesum"
)
SUBSCRIPTIONS = Gauge(
    "kit_asgi_subscriptions", "Subscriptions (connection x topic)", multiprocess_mode="livesum"
)
TRACK_EVERY = 1.0  # seconds; well below Prometheus' scrape interval


def copy_from(hub) -> None:
    counts = {"ws": 0, "sse": 0}
    subs = 0
    for conn in list(hub.conns):
        counts[conn.kind] = counts.get(conn.kind, 0) + 1
        subs += len(conn.subs)
    for kind, n in counts.items():
        CONNECTIONS.labels(kind).set(n)
    TOPICS.set(len(hub.feeds))
    SUBSCRIPTIONS.set(subs)


async def track(hub) -> None:
    """This process's open connections, topics and subscriptions, into the gauges."""
    while True:
        copy_from(hub)
        await asyncio.sleep(TRACK_EVERY)


class LiveProcesses:
    """Drops the live gauges of processes that are gone (a worker Uvicorn replaced) before
    each scrape: Uvicorn, unlike Gunicorn, has no hook for a worker's exit."""

    def __init__(self, path: str):
        self.path = path

    def collect(self):
        for name in glob.glob(os.path.join(self.path, "gauge_live*_*.db")):
            pid = int(name.rsplit("_", 1)[1].removesuffix(".db"))
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                multiprocess.mark_process_dead(pid, self.path)
            except PermissionError:
                pass  # alive, someone else's
        return []


def serve() -> None:
    """Serve the sum of every process's values on METRICS_PORT (unset: nothing served)."""
    port, path = os.environ.get("METRICS_PORT", ""), os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not port:
        return
    if not path:
        raise RuntimeError("METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR (compose/start sets both)")
    registry = CollectorRegistry()
    registry.register(LiveProcesses(path))  # first: collectors run in registration order
    multiprocess.MultiProcessCollector(registry, path)
    start_http_server(int(port), registry=registry)
