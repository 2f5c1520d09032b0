"""What every user shares: accounts, login with Django's CSRF rules, the shared topic, tokens.

Request names start with their SLO group (see slo.toml): "auth POST /api/realtime/token".
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from locust import FastHttpUser
from locust.exception import StopUser

# Accounts the runner created (run.sh: `manage.py ensure_user`); users take them in turn.
ACCOUNTS = [a for a in os.environ.get("KIT_LOADTEST_USERS", "loadtest").split(",") if a]
PASSWORD = os.environ.get("KIT_LOADTEST_PASSWORD", "")

next_account = itertools.cycle(ACCOUNTS)


def own_topic(user: KitUser) -> str:
    """Core's real-time topic of every account: its private `user.<id>` (docs/protocol.md)."""
    return f"user.{user.user_id}"


# The topic real-time users subscribe to. Core alone has no writer to time, so they measure
# connect and subscribe only; a domain app with a writer user points it at the topic that
# writer fills (share_topic), and fan-out latency gets samples.
_shared_topic: Callable[[KitUser], str] = own_topic


def share_topic(topic_of: Callable[[KitUser], str]) -> None:
    global _shared_topic
    _shared_topic = topic_of


def shared_topic(user: KitUser) -> str:
    return _shared_topic(user)


def items_of(body) -> list:
    """The rows of a list response, paginated (`results`/`items`/`data`) or a bare list."""
    if isinstance(body, list):
        return body
    for key in ("results", "items", "data"):
        if isinstance(body, dict) and isinstance(body.get(key), list):
            return body[key]
    raise ValueError(f"not a list response: {str(body)[:200]}")


def event_age_ms(ts: str) -> float:
    """Milliseconds from an event's `ts` (ISO 8601, UTC) to now; the clocks are the host's."""
    sent = datetime.fromisoformat(ts).timestamp()
    return max(0.0, (time.time() - sent) * 1000)


def browser_origin(url: str) -> str:
    """The Origin a browser sends: no port when it is the scheme's default (Django compares
    it with the Host header, which omits a default port too)."""
    u = urlsplit(url)
    default = {"https": 443, "http": 80}.get(u.scheme)
    port = f":{u.port}" if u.port and u.port != default else ""
    return f"{u.scheme}://{u.hostname}{port}"


def event_id_key(event_id: str) -> tuple[int, int]:
    """Redis stream ids ("<ms>-<seq>") in their real order, to detect gaps and duplicates."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class KitUser(FastHttpUser):
    """A logged-in API client: session cookie, CSRF header, its account's user id."""

    abstract = True
    # Self-signed certificate of a fresh stack; the e2e tests check TLS itself.
    insecure = True
    connection_timeout = 10.0
    network_timeout = 30.0

    account: str
    user_id: int
    origin_headers: dict[str, str]

    def on_start(self) -> None:
        if not getattr(self, "account", None):
            self.account = next(next_account)
        origin = browser_origin(self.host)
        # Django checks Origin (and Referer over HTTPS) on unsafe requests, as a browser sends them.
        self.origin_headers = {"Origin": origin, "Referer": origin + "/"}
        self.login()

    def unsafe_headers(self, **extra: str) -> dict[str, str]:
        token = next((c.value for c in self.client.cookiejar if c.name == "csrftoken"), "")
        return {**self.origin_headers, "X-CSRFToken": token, **extra}

    def login(self) -> None:
        with self.client.post(
            "/api/auth/login",
            json={"username": self.account, "password": PASSWORD},
            headers=self.unsafe_headers(),
            name="login POST /api/auth/login",
            catch_response=True,
        ) as resp:
            ok = resp.status_code == 200
            if ok:
                self.user_id = resp.json()["id"]
            else:
                resp.failure(f"login as {self.account}: {resp.status_code} {resp.text[:200]}")
        if not ok:
            # Without a session nothing else this user does means anything.
            raise StopUser()

    def realtime_token(self) -> str:
        with self.client.post(
            "/api/realtime/token",
            headers=self.unsafe_headers(),
            name="auth POST /api/realtime/token",
            catch_response=True,
        ) as resp:
            token = resp.json().get("token") if resp.status_code == 200 else None
            if not token:
                resp.failure(f"realtime token: {resp.status_code} {resp.text[:200]}")
        if not token:
            raise StopUser()
        return token
