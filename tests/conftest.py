"""Fixtures for the end-to-end tests: the running stack, reached from outside through nginx.

`make test` starts a separate stack and runs these tests in a container on the host network,
with the Docker socket mounted so tests can find, restart and inspect the stack's containers.
"""

import contextlib
import itertools
import os
import ssl
import threading
import time
from collections import Counter
from pathlib import Path

import docker
import httpx
import pytest

HTTPS_URL = os.environ.get("KIT_HTTPS_URL", "https://127.0.0.1:443")
HTTP_URL = os.environ.get("KIT_HTTP_URL", "http://127.0.0.1:80")
PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "pykit")
PASSWORD = os.environ.get("E2E_PASSWORD", "")
WS_URL = HTTPS_URL.replace("https://", "wss://", 1) + "/rt/ws"


def insecure_tls() -> ssl.SSLContext:
    """TLS without verification: the stack's certificate is self-signed (made on first start);
    test_stack.py checks the certificate itself."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="session")
def https_url() -> str:
    return HTTPS_URL


@pytest.fixture(scope="session")
def http_url() -> str:
    return HTTP_URL


def new_client(**kwargs) -> httpx.Client:
    # The stack's certificate is self-signed (made on first start), so no verification here;
    # test_stack.py checks the certificate itself.
    return httpx.Client(base_url=HTTPS_URL, verify=False, timeout=15, **kwargs)  # noqa: S501


@pytest.fixture
def client():
    with new_client() as c:
        yield c


@pytest.fixture(scope="session")
def login():
    """login("alice") -> an httpx.Client with alice's session and the CSRF header set.

    nginx allows a few logins a minute per address, so each user logs in once per test
    session and every call gets a new client carrying that session. A test that logs out
    must log in by itself, not through this fixture.
    """
    sessions: dict[str, httpx.Cookies] = {}
    opened = []

    def _login(username: str) -> httpx.Client:
        assert PASSWORD, "E2E_PASSWORD is not set: run the tests through `make test`"
        # Browsers send Origin on unsafe requests; over HTTPS Django's CSRF check wants it.
        c = new_client(headers={"Origin": HTTPS_URL})
        opened.append(c)
        if username not in sessions:
            r = c.post("/api/auth/login", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            sessions[username] = httpx.Cookies(c.cookies)
        c.cookies = httpx.Cookies(sessions[username])
        c.headers["X-CSRFToken"] = c.cookies["csrftoken"]
        return c

    yield _login
    for c in opened:
        c.close()


@pytest.fixture(scope="session")
def docker_client():
    d = docker.from_env()
    yield d
    d.close()


@pytest.fixture
def containers(docker_client):
    """containers("wsgi") -> the running containers of that service in this compose project."""

    def _containers(service: str):
        found = docker_client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    f"com.docker.compose.service={service}",
                ]
            }
        )
        return sorted(found, key=lambda c: c.name)

    return _containers


@pytest.fixture
def own_topic(login):
    """(client, topic, token) for alice's private topic `user.<id>`: every user may read their
    own, so the infrastructure tests need no domain app."""
    alice = login("alice")
    me = alice.get("/api/auth/me")
    assert me.status_code == 200, me.text
    token = alice.post("/api/realtime/token")
    assert token.status_code == 200, token.text
    return alice, f"user.{me.json()['id']}", token.json()["token"]


@pytest.fixture
def publish(containers):
    """publish(topic, count=1, interval=0) -> event ids: Django publishes them (its
    `publish_event` command in a wsgi container), as after a committed write."""

    def _publish(topic: str, count: int = 1, interval: float = 0.0) -> list[str]:
        wsgi = containers("wsgi")[0]
        command = ["python", "manage.py", "publish_event", topic, "e2e.ping"]
        command += ["--count", str(count), "--interval", str(interval)]
        rc, out = wsgi.exec_run(command)
        assert rc == 0, out.decode()
        return out.decode().split()

    return _publish


OPS_DIR = "/reports/ops"


@pytest.fixture(scope="session")
def host():
    """host("backup now") -> (exit code, output): runs scripts/backup.sh now (or
    `deploy <tag>`: scripts/deploy.sh with IMAGE_TAG=<tag>) on the machine with Compose.

    Only for tests marked `ops`: scripts/test.sh runs them last with a runner that executes
    each request this writes to build/test-reports/ops/ and writes the answer back.
    """
    folder = Path(OPS_DIR)
    counter = itertools.count()

    def _host(request: str, timeout: float = 480) -> tuple[int, str]:
        n = next(counter)
        (folder / f"{n}.request.tmp").write_text(request)
        (folder / f"{n}.request.tmp").rename(folder / f"{n}.request")
        done, deadline = folder / f"{n}.done", time.monotonic() + timeout
        while not done.exists():
            assert time.monotonic() < deadline, f"no answer to {request!r} from the runner"
            time.sleep(0.3)
        return int(done.read_text()), (folder / f"{n}.log").read_text()

    return _host


def wait_until_healthy(container, seconds: float = 120) -> str:
    """Wait for a container's healthcheck to pass; returns its last health status."""
    deadline = time.monotonic() + seconds
    while True:
        container.reload()
        status = container.attrs["State"].get("Health", {}).get("Status", "")
        if status == "healthy" or time.monotonic() > deadline:
            return status
        time.sleep(1)


@contextlib.contextmanager
def steady_gets(path: str = "/api/healthz"):
    """GETs at ~10/s (below the API rate limit) in a thread while the block runs. Yields the
    Counter of answers: status codes, or exception names for requests that got none."""
    statuses: Counter = Counter()
    stop = threading.Event()

    def flow():
        with new_client() as c:
            while not stop.is_set():
                try:
                    statuses[c.get(path).status_code] += 1
                except httpx.HTTPError as e:
                    statuses[type(e).__name__] += 1
                time.sleep(0.1)

    worker = threading.Thread(target=flow)
    worker.start()
    try:
        yield statuses
    finally:
        stop.set()
        worker.join()
