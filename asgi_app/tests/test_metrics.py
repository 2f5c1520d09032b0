"""Metrics with several Uvicorn workers (UVICORN_WORKERS), as compose/start runs them
(app/serve.py, app/metrics.py): the metrics port serves the sum of every process's values,
and a process that is gone leaves its counts in the sum but not its open connections."""

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest

from app.metrics import TRACK_EVERY

from .conftest import Server, free_port, make_token, run
from .helpers import connect

CONNECTIONS = 4
REQUESTS = 10
# Another process's values, as a worker that Uvicorn replaced leaves them: 5 requests
# counted, 3 WebSockets open when it died.
GONE_WORKER = """
from app import metrics
metrics.REQUESTS.labels("GET", "200").inc(5)
metrics.CONNECTIONS.labels("ws").set(3)
"""


def scrape(port: int) -> dict[str, float]:
    """{'name{labels}': value} of the sample lines."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


def requests_total(port: int) -> float:
    return sum(v for k, v in scrape(port).items() if k.startswith("kit_asgi_requests_total{"))


@pytest.mark.timeout(120)  # two workers start slowly on a busy machine
def test_every_worker_is_counted_and_a_gone_one_keeps_only_its_counts(tmp_path):
    port, path = free_port(), str(tmp_path)
    env = {"METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": path}
    server = Server("--workers", "2", launcher="app.serve", **env)
    try:
        before = requests_total(port)
        gone = subprocess.run(  # noqa: S603 (our own interpreter and code)
            [sys.executable, "-c", GONE_WORKER], env={**os.environ, **env}, check=True
        )
        assert gone.returncode == 0
        for _ in range(REQUESTS):  # a new connection each: either worker may take it
            with httpx.Client() as c:
                assert c.get(server.url + "/rt/healthz").status_code == 200
        assert requests_total(port) - before == REQUESTS + 5

        async def open_connections() -> float | None:
            sockets = await asyncio.gather(
                *(connect(server, make_token(100 + i)) for i in range(CONNECTIONS))
            )
            try:
                deadline = time.monotonic() + 10 * TRACK_EVERY
                while time.monotonic() < deadline:
                    got = scrape(port).get('kit_asgi_connections{kind="ws"}')
                    if got == CONNECTIONS:
                        break
                    await asyncio.sleep(TRACK_EVERY / 2)
                return got
            finally:
                await asyncio.gather(*(ws.close() for ws in sockets))

        assert run(open_connections()) == CONNECTIONS
    finally:
        assert server.stop() == 0
