"""What `docker inspect` and the containers themselves show: runtime hardening, secrets given
per service, Redis behind passwords and off nginx's network (issue 12, items 3, 4, 5)."""

import json

import pytest

from conftest import PROJECT

# Long-running services: the compose project's containers, with the user each runs as.
SERVICES = {"nginx": "101", "wsgi": "10001", "asgi": "10001", "redis": "999", "postgres": "999"}

# What each service finds in /run/kit-secrets, and whose it is (docs/design.md, "Secrets").
SECRETS = {
    "wsgi": {
        "django_secret_key",
        "postgres_password",
        "postgres_monitor_password",
        "realtime_token_key",
        "redis_password",
    },
    "asgi": {"realtime_token_key", "redis_password"},
    "postgres": {"postgres_password"},
    "redis": {"users.acl", "redis_admin_password"},
}


@pytest.fixture
def one_shot(docker_client):
    """one_shot("secrets") -> the exited container of a one-shot service."""

    def _one_shot(service: str):
        [c] = docker_client.containers.list(
            all=True,
            filters={
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    f"com.docker.compose.service={service}",
                ]
            },
        )
        return c

    return _one_shot


def sh(container, script: str) -> str:
    code, out = container.exec_run(["sh", "-c", script])
    assert code == 0, out.decode()
    return out.decode()


@pytest.mark.parametrize("service", [*SERVICES, "migrate", "secrets"])
def test_every_container_runs_hardened(service, containers, one_shot):
    c = (containers(service) or [one_shot(service)])[0]
    host = c.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    # Only the one-shot that hands each service its secret files keeps (three) capabilities.
    expected_caps = {"CHOWN", "DAC_OVERRIDE", "FOWNER"} if service == "secrets" else set()
    assert {cap.removeprefix("CAP_") for cap in host["CapAdd"] or []} == expected_caps
    assert "no-new-privileges:true" in host["SecurityOpt"]
    # compose.yaml says why `secrets` is the one exception.
    assert host["ReadonlyRootfs"] is (service != "secrets")
    assert (host["PidsLimit"] or 0) > 0
    assert host["Memory"] > 0
    assert host["NanoCpus"] > 0
    nofile = {u["Name"]: u for u in host["Ulimits"] or []}["nofile"]
    assert nofile["Soft"] >= 16384
    if service in SERVICES:
        assert c.attrs["Config"]["User"].split(":")[0] == SERVICES[service]


@pytest.mark.parametrize("service", ["nginx", "wsgi", "asgi"])
def test_images_have_no_setuid_programs(service, containers):
    c = containers(service)[0]
    assert sh(c, "find / -xdev -perm /6000 -type f 2>/dev/null || true").split() == []
    # Nothing root-owned is writable either: a read-only root filesystem.
    code, out = c.exec_run(["sh", "-c", "echo x > /usr/local/kit-probe"])
    assert code != 0
    assert b"Read-only file system" in out, out


@pytest.mark.parametrize("service", SECRETS)
def test_each_service_gets_only_its_own_secrets_readable_by_it_alone(service, containers):
    c = containers(service)[0]
    uid = SERVICES[service]
    folder = "/run/kit-secrets"  # a name `make init` renames: keep it in one place
    listing = sh(c, f"stat -c '%a %u %n' {folder} {folder}/*").splitlines()
    modes = {line.split()[2].rsplit("/", 1)[-1]: tuple(line.split()[:2]) for line in listing}
    assert modes.pop(folder.rsplit("/", 1)[-1]) == ("500", uid)
    assert set(modes) == SECRETS[service]
    assert set(modes.values()) == {("400", uid)}


def test_nginx_has_no_secrets_at_all(containers):
    code, _ = containers("nginx")[0].exec_run(["ls", "/run/kit-secrets"])
    assert code != 0


def test_secrets_container_keeps_no_secret_in_its_environment(containers, one_shot):
    wsgi = containers("wsgi")[0]
    values = [
        sh(wsgi, f"cat /run/kit-secrets/{name}")
        for name in ("django_secret_key", "postgres_password", "realtime_token_key")
    ]
    inspected = one_shot("secrets").attrs
    names = {e.split("=", 1)[0] for e in inspected["Config"]["Env"]}
    assert not names & {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REALTIME_TOKEN_KEY"}
    dump = json.dumps(inspected)
    assert not [v for v in values if v in dump]


# ---- Redis -----------------------------------------------------------------------------

REDIS_PY = """
import os, sys, redis
url = sys.argv[1]
try:
    print(redis.Redis.from_url(url, socket_timeout=3).execute_command(*sys.argv[2:]))
except redis.RedisError as e:
    print(type(e).__name__, e)
"""


def redis_as(container, url: str, *command: str) -> str:
    """A Redis command from inside an app container (redis-py is in its venv)."""
    code, out = container.exec_run(["python", "-c", REDIS_PY, url, *command])
    assert code == 0, out.decode()
    return out.decode().strip()


def test_redis_refuses_commands_without_a_password(containers):
    # The default user is off (scripts/init-secrets.sh): without a login nothing runs, not
    # even INFO or PING (the metrics exporter logs in as `monitor`).
    wsgi = containers("wsgi")[0]
    for command in (["PING"], ["INFO"], ["GET", "x"], ["KEYS", "*"], ["CONFIG", "GET", "x"]):
        answer = redis_as(wsgi, "redis://redis:6379/0", *command)
        assert answer.startswith("AuthenticationError"), (command, answer)
    # Nor with a guessed password for the user the apps use.
    assert "Error" in redis_as(wsgi, "redis://django:guess@redis:6379/0", "PING")


def test_redis_users_reach_only_their_own_keys(containers):
    asgi = containers("asgi")[0]
    asgi_url = sh(asgi, "python -c 'import app.settings as s; print(s.get_settings().redis_url)'")
    # asgi's user may read event streams, but not Django's cache and sessions...
    assert redis_as(asgi, asgi_url.strip(), "XLEN", "events:user.0") == "0"
    assert redis_as(asgi, asgi_url.strip(), "GET", "wsgi:1:anything").startswith(
        "NoPermissionError"
    )
    # ...and no app may reconfigure Redis or flush everything.
    assert redis_as(asgi, asgi_url.strip(), "CONFIG", "SET", "maxmemory", "0").startswith(
        "NoPermissionError"
    )
    assert redis_as(asgi, asgi_url.strip(), "FLUSHALL").startswith("NoPermissionError")


def test_redis_has_a_memory_limit_that_never_evicts(containers):
    command = containers("redis")[0].attrs["Config"]["Cmd"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--maxmemory") + 1] not in ("0", "")


@pytest.mark.parametrize(("service", "port"), [("redis", 6379), ("postgres", 5432)])
def test_nginx_cannot_reach_the_data_stores(service, port, containers):
    nginx = containers("nginx")[0]
    target = containers(service)[0]
    target.reload()
    addresses = [n["IPAddress"] for n in target.attrs["NetworkSettings"]["Networks"].values()]
    for host in [service, *addresses]:
        code, out = nginx.exec_run(
            ["curl", "-sS", "--connect-timeout", "2", "-o", "/dev/null", f"telnet://{host}:{port}"]
        )
        assert code in (6, 7, 28), (host, code, out)  # unresolvable, refused/unreachable, timeout


def test_redis_key_names_do_not_show_session_ids(login, containers):
    alice = login("alice")
    assert alice.get("/api/auth/me").status_code == 200  # the session is now cached in Redis
    session_id = alice.cookies["sessionid"]
    keys = sh(
        containers("redis")[0],
        "redis-cli --no-auth-warning --user admin"
        ' --pass "$(cat /run/kit-secrets/redis_admin_password)"'
        " -n 1 --scan --pattern 'wsgi:*'",
    ).split()
    assert keys  # the cache and sessions are there...
    assert not [k for k in keys if session_id in k]  # ...under hashed names
