"""Gunicorn with the shipped gunicorn.conf.py, in production mode, on a real socket."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.test_service import APP_DIR, SAFE_PRODUCTION


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn():
    started = []

    def start(forwarded_allow_ips: str, **extra_env: str):
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
            **SAFE_PRODUCTION,
            "FORWARDED_ALLOW_IPS": forwarded_allow_ips,
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": "",  # compose's "use the default"
            **extra_env,
        }
        process = subprocess.Popen(  # noqa: S603  (our own config, fixed arguments)
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "config.wsgi:application",
            ],
            cwd=APP_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        # Generous: on a busy 2-core CI machine Django's import alone can take several seconds.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(f"{base}/api/healthz", timeout=2)  # noqa: S310
                return process, base
            except OSError:
                time.sleep(0.2)
        process.kill()
        pytest.fail("gunicorn did not start: " + (process.stdout.read() or ""))

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=35)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url, headers):
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers)  # noqa: S310
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


HEADERS = {
    "Host": "app.example.com",
    "X-Forwarded-Proto": "https",
    "X-Request-ID": "req-abc-123",
    "User-Agent": "kit-test",
}


def test_trusted_proxy_makes_requests_https_and_logs_json(gunicorn):
    process, base = gunicorn("127.0.0.1")
    status, _ = get(f"{base}/api/auth/me", HEADERS)
    assert status == 401  # served as HTTPS: no redirect, just "log in"
    process.terminate()
    output, _ = process.communicate(timeout=35)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("path") == "/api/auth/me"]
    assert access, output
    assert access[0]["request_id"] == "req-abc-123"
    assert access[0]["status"] == 401
    assert access[0]["user_agent"] == "kit-test"
    assert "Control server error" not in output


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(gunicorn):
    _, base = gunicorn("10.255.255.1")  # not us: our X-Forwarded-Proto must not count
    status, headers = get(f"{base}/api/auth/me", HEADERS)
    assert status == 301
    assert headers["Location"].startswith("https://app.example.com/")


def test_metrics_of_every_worker_are_summed_on_the_internal_port(gunicorn, tmp_path):
    metrics_port = free_port()
    (tmp_path / "metrics").mkdir()  # compose/start makes it
    _, base = gunicorn(
        "127.0.0.1",
        GUNICORN_WORKERS="3",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        METRICS_PORT=str(metrics_port),
    )
    for _ in range(30):  # a new connection each: the workers share them
        assert get(f"{base}/api/auth/me", HEADERS)[0] == 401
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    [count] = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("kit_django_requests_total{")
        and 'view="me"' in line
        and 'status="401"' in line
    ]
    assert count == 30
    assert "kit_django_request_duration_seconds_bucket" in text
