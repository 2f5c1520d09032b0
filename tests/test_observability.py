"""Monitoring as a team would use it (monitoring/README.md): Prometheus scrapes every target,
each metric the kit documents has samples after some traffic, a stopped service raises the
target-down alert, and every log line of every service is one JSON object with the common
keys. Prometheus' HTTP API on 127.0.0.1 (KIT_PROMETHEUS_URL) is the only way in."""

import asyncio
import json
import os
import re
import time

import httpx
import pytest
import websockets

from conftest import PROJECT, WS_URL, insecure_tls, wait_until_healthy

PROMETHEUS = os.environ.get("KIT_PROMETHEUS_URL", "http://127.0.0.1:9090")
JOBS = {"wsgi", "asgi", "backup", "nginx", "redis", "postgres", "prometheus", "alertmanager"}
# Every metric monitoring/README.md lists, by the service that writes it.
METRICS = [
    "kit_django_requests_total",
    "kit_django_request_duration_seconds_bucket",
    "kit_django_db_query_duration_seconds_bucket",
    "kit_django_cache_gets_total",
    "kit_django_events_published_total",
    "kit_django_event_publish_failures_total",
    "kit_asgi_requests_total",
    "kit_asgi_connections",
    "kit_asgi_topics",
    "kit_asgi_subscriptions",
    "kit_asgi_events_delivered_total",
    "kit_asgi_fanout_lag_seconds_bucket",
    "kit_asgi_closes_total",
    "kit_asgi_redis_reconnects_total",
    "kit_backup_last_success_timestamp_seconds",
    "kit_backup_last_drill_success_timestamp_seconds",
    "nginx_connections_active",
    "nginx_http_requests_total",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "pg_stat_activity_count",
    "pg_settings_max_connections",
]
# Every service `make test` starts (with the monitoring profile): each writes the kit's log
# shape (docs/design.md, "Logs"), the third-party programs through log/json-lines.sh.
SERVICES = {
    "secrets", "nginx", "wsgi", "migrate", "asgi", "redis", "postgres", "backup",
    "prometheus", "alertmanager", "nginx-exporter", "redis-exporter", "postgres-exporter",
}  # fmt: skip
COMMON_KEYS = {"ts", "level", "service", "logger", "msg", "request_id"}
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def query(promql: str) -> list[dict]:
    r = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": promql}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["data"]["result"]


def poll(check, seconds: float, step: float = 2.0):
    """check() until it returns something truthy, or fail with its last answer."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(step)


def log_lines(docker_client, service: str) -> list[str]:
    """Every line a service's containers wrote (`docker compose logs`), running or stopped."""
    found = docker_client.containers.list(
        all=True,
        filters={
            "label": [
                f"com.docker.compose.project={PROJECT}",
                f"com.docker.compose.service={service}",
            ]
        },
    )
    assert found, f"no {service} container"
    return [
        line
        for c in found
        for line in c.logs(stdout=True, stderr=True).decode(errors="replace").splitlines()
    ]


async def read_until_closed(ws) -> None:
    async with asyncio.timeout(10):
        while True:  # what was queued (presence) comes first
            await ws.recv()


def traffic(own_topic, publish) -> None:
    """Requests to both apps, a live event to a WebSocket, and a connection the service
    closes (invalid JSON: 1007), so every counter has something to count."""
    client, topic, token = own_topic
    assert client.get("/api/auth/me").status_code == 200

    async def go():
        headers = {"Authorization": f"Bearer {token}"}
        async with websockets.connect(WS_URL, ssl=insecure_tls(), additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
            while json.loads(await ws.recv())["type"] != "subscribed":
                pass
            publish(topic)
            while json.loads(await ws.recv())["type"] != "event":
                pass
            await ws.send("not json")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await read_until_closed(ws)
            assert closed.value.rcvd.code == 1007

    asyncio.run(go())


def test_every_target_is_up_and_every_metric_has_samples(own_topic, publish, containers):
    traffic(own_topic, publish)

    def per_app(up):
        return {app: sum(t["metric"]["job"] == app for t in up) for app in ("wsgi", "asgi")}

    def targets():
        up = query("up")
        jobs = {t["metric"]["job"] for t in up}
        down = [t["metric"] for t in up if t["value"][1] != "1"]
        # Each replica is a target of its own (DNS service discovery). A replica an earlier test
        # recreated on a new address leaves its old target until the next DNS refresh (10 s).
        replicas = {app: len(containers(app)) for app in ("wsgi", "asgi")}
        return jobs >= JOBS and not down and per_app(up) == replicas and up

    up = poll(targets, 60)
    assert up, (query("up"), {app: len(containers(app)) for app in ("wsgi", "asgi")})

    def missing():
        return [m for m in METRICS if not query(m)]

    assert poll(lambda: not missing(), 45), f"no samples yet: {missing()}"
    delivered = query("sum(kit_asgi_events_delivered_total)")
    assert float(delivered[0]["value"][1]) >= 1
    assert poll(lambda: query('kit_asgi_closes_total{code="1007"}'), 30)


def alerts(name: str) -> list[dict]:
    r = httpx.get(f"{PROMETHEUS}/api/v1/alerts", timeout=5)
    assert r.status_code == 200, r.text
    return [a for a in r.json()["data"]["alerts"] if a["labels"]["alertname"] == name]


@pytest.mark.ops
@pytest.mark.timeout(240)
def test_stopping_asgi_makes_the_target_down_alert_pending(containers):
    def asgi_down():
        return [a for a in alerts("TargetDown") if a["labels"].get("job") == "asgi"]

    # The ops tests before may have restarted asgi: start from a quiet alert.
    assert poll(lambda: not asgi_down(), 60), asgi_down()
    stopped = containers("asgi")
    for c in stopped:
        c.stop(timeout=20)
    try:
        # Pending at its first evaluation after a failed scrape (or after the replicas left
        # DNS): well within the rule's `for: 1m`.
        pending = poll(asgi_down, 60)
        assert pending, alerts("TargetDown")
        assert pending[0]["state"] in ("pending", "firing")
    finally:
        for c in stopped:
            c.start()
        for c in stopped:
            assert wait_until_healthy(c) == "healthy"


@pytest.mark.ops
def test_every_log_line_of_every_service_is_json_with_the_common_keys(docker_client):
    # The stack's services, not `compose run` containers (test runners, one-off commands).
    labels = [f"com.docker.compose.project={PROJECT}", "com.docker.compose.oneoff=False"]
    found = docker_client.containers.list(all=True, filters={"label": labels})
    seen = set()
    for c in found:
        service = c.labels["com.docker.compose.service"]
        seen.add(service)
        lines = c.logs(stdout=True, stderr=True).decode(errors="replace").splitlines()
        assert lines, f"{service} wrote nothing"
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"{service}: not JSON: {line!r}")
            assert isinstance(entry, dict), f"{service}: {line!r}"
            assert entry.keys() >= COMMON_KEYS, f"{service}: {line!r}"
            assert entry["service"] == service, f"{service}: {line!r}"
            assert entry["level"] in LEVELS, f"{service}: {line!r}"
    assert seen >= SERVICES, f"not running: {SERVICES - seen}"


@pytest.mark.parametrize("path", ["/api/no-such-thing", "/rt/no-such-thing", "/static/nope.css"])
def test_a_404_has_one_shape_whoever_answers(client, path):
    """Django (/api/), FastAPI (/rt/) and nginx (/static/) answer with the same body."""
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert (error["code"], error["fields"]) == ("not_found", {})


def test_a_401_has_one_shape_in_both_apps(client):
    django, fastapi = client.get("/api/auth/me"), client.get("/rt/io-wait")
    assert (django.status_code, fastapi.status_code) == (401, 401)
    assert django.json()["error"]["code"] == fastapi.json()["error"]["code"] == "unauthorized"
    assert django.json()["error"]["fields"] == fastapi.json()["error"]["fields"] == {}


def test_the_status_page_shows_live_numbers_to_staff_only(login, client):
    r = login("admin").get("/status")
    assert r.status_code == 200
    assert "does not answer" not in r.text
    for label in ("Requests per second", "Open WebSockets", "Fan-out p95"):
        assert label in r.text
    assert re.search(r"<td>wsgi</td><td>[0-9.]+:9100</td><td class=\"up\">up</td>", r.text)
    assert login("alice").get("/status").status_code == 403
    anonymous = client.get("/status")
    assert anonymous.status_code == 302
    assert anonymous.headers["location"].startswith("/?next=/status")


EXPORTER_ACCESS = """
import json, sys, psycopg, redis
redis_passwords, pg_password = json.loads(sys.argv[1]), sys.argv[2]
try:
    redis.Redis(host="redis", socket_timeout=3).info("memory")  # no login
except redis.RedisError as e:
    print("redis anonymous", type(e).__name__)
(password,) = redis_passwords.values()  # the exporter's map: its address -> password
r = redis.Redis(host="redis", username="monitor", password=password, socket_timeout=3)
print("redis info", "used_memory" in r.info("memory"))
try:
    r.get("wsgi:anything")
except redis.RedisError as e:
    print("redis get", type(e).__name__)
with psycopg.connect(host="postgres", dbname="app", user="kit_monitor", password=pg_password) as c:
    print("pg stats", c.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0] > 0)
    try:
        c.execute("SELECT count(*) FROM auth_user")
    except psycopg.Error as e:
        print("pg data", type(e).__name__)
"""


def test_the_exporters_accounts_read_statistics_and_no_data(containers):
    def secret(service: str, name: str) -> str:
        # The log wrapper's busybox: a `cat` even in the exporters' scratch images.
        cat = ["/usr/local/lib/kit-log/busybox", "cat", f"/run/kit-secrets/{name}"]
        code, out = containers(service)[0].exec_run(cat)
        assert code == 0, out.decode()
        return out.decode()

    redis_passwords = secret("redis-exporter", "redis_exporter_passwords.json")
    assert list(json.loads(redis_passwords)) == ["redis://monitor@redis:6379"]
    pg_password = secret("postgres-exporter", "postgres_monitor_password")
    script = ["python", "-c", EXPORTER_ACCESS, redis_passwords, pg_password]
    code, out = containers("wsgi")[0].exec_run(script)
    assert code == 0, out.decode()
    assert out.decode().split("\n")[:5] == [
        "redis anonymous AuthenticationError",
        "redis info True",
        "redis get NoPermissionError",
        "pg stats True",
        "pg data InsufficientPrivilege",
    ]
