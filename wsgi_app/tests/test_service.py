"""Health endpoints, the I/O-wait and streaming demos, production settings, provisioning,
OpenAPI."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

APP_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_healthz_answers_whatever_the_host(client):
    response = client.get("/api/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert client.get("/api/healthz", HTTP_HOST="evil.example").status_code == 200


@pytest.mark.django_db
def test_readyz_checks_postgres_and_redis(client):
    response = client.get("/api/readyz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_down(client, settings, reset_event_clients):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/api/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")
    # Now known to be down: the next probe answers at once, still 503.
    started = time.perf_counter()
    again = client.get("/api/readyz")
    assert again.status_code == 503
    assert again.json()["checks"]["redis"] == "error: unavailable (probing)"
    assert time.perf_counter() - started < 0.5


def test_other_hosts_are_refused(client):
    assert client.get("/api/auth/me", HTTP_HOST="evil.example").status_code == 400


def test_io_wait_waits_on_redis(as_alice):
    started = time.perf_counter()
    response = as_alice.get("/api/io-wait", {"ms": 150})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json()["waited_ms"] >= 140
    assert 0.14 <= elapsed < 1.5


@pytest.mark.django_db
def test_io_wait_needs_login_and_holds_no_thread_for_anonymous(client):
    started = time.perf_counter()
    response = client.get("/api/io-wait", {"ms": 1000})
    assert response.status_code == 401
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("ms", ["-1", "abc", "1001", "20000"])
def test_io_wait_rejects_bad_values(as_alice, ms):
    response = as_alice.get("/api/io-wait", {"ms": ms})
    assert response.status_code == 422
    assert "ms" in response.json()["error"]["fields"]


def stream_events(chunks) -> list[dict]:
    text = b"".join(chunks).decode()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith('data: {"')]


def test_stream_demo_sends_each_token_as_an_event(as_alice):
    response = as_alice.get("/api/stream-demo", {"tokens": 3, "ms": 0})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    chunks = list(response.streaming_content)
    assert [e["i"] for e in stream_events(chunks)] == [0, 1, 2]
    assert chunks[-1] == b"event: end\ndata: {}\n\n"


def test_stream_demo_closed_mid_stream_makes_no_more_tokens(as_alice, caplog):
    """What Gunicorn does when a write finds the client gone: it closes the response."""
    response = as_alice.get("/api/stream-demo", {"tokens": 200, "ms": 0})
    chunks = iter(response.streaming_content)
    next(chunks), next(chunks)
    with caplog.at_level(logging.INFO, logger="core.views"):
        response.close()
    (ended,) = [r for r in caplog.records if r.getMessage() == "stream ended"]
    assert ended.fields == {"tokens": 2, "complete": False}


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "status"), [({}, 401), ({"tokens": 0}, 422), ({"ms": 101}, 422)])
def test_stream_demo_refusals_are_json_whatever_is_accepted(client, as_alice, query, status):
    c = client if status == 401 else as_alice
    response = c.get("/api/stream-demo", query, HTTP_ACCEPT="text/event-stream")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] in ("unauthorized", "validation_failed")


def manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REALTIME_"))}
    return subprocess.run(  # noqa: S603  (our own manage.py, fixed arguments)
        [sys.executable, "manage.py", *args],
        cwd=APP_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SAFE_PRODUCTION = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "k" * 20 + "Q7x9ZpL2mV8rT4wY6bN1cD3fG5hJ0sA8uE2iO4pR",
    "DJANGO_ALLOWED_HOSTS": "app.example.com",
    "REALTIME_TOKEN_KEY": "r" * 10 + "Q7x9ZpL2mV8rT4wY6bN1cD3fG5hJ0sA8",
    "POSTGRES_PASSWORD": "a-password",
}


def test_check_deploy_is_clean_in_production_mode():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **SAFE_PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG"),
        ({"DJANGO_SECRET_KEY": ""}, "No secret key"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY is weak"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + "x1y2z3" * 10}, "DJANGO_SECRET_KEY is weak"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS is empty"),
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "contains '*'"),
        ({"REALTIME_TOKEN_KEY": "short"}, "REALTIME_TOKEN_KEY"),
    ],
)
def test_production_refuses_unsafe_settings(override, hint):
    result = manage("check", **{**SAFE_PRODUCTION, **override})
    assert result.returncode != 0
    assert "Refusing to start in production mode" in result.stderr
    assert hint in result.stderr


@pytest.mark.django_db
def test_ensure_user_is_idempotent():
    call_command("ensure_user", "dave", "--password", "first-pass-123")
    call_command("ensure_user", "dave", "--password", "second-pass-456", "--superuser")
    [user] = get_user_model().objects.filter(username="dave")
    assert user.check_password("second-pass-456")
    assert user.is_superuser
    assert user.is_staff


@pytest.mark.django_db
def test_no_model_changes_without_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_openapi_schema_and_docs(client):
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/auth/login", "/api/auth/signup", "/api/realtime/token", "/api/"):
        assert path in paths
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
