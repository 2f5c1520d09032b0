"""Fixtures: real Uvicorn servers of the app, the stack's real Redis (DB 15 only), tokens.

The tests run inside the `test` image next to the stack. REDIS_URL names the stack's Redis;
whatever database it names, the tests use DB 15 and flush it, never the stack's data.
Pub/Sub channels are global across databases, so every test uses fresh, random topic ids.
Access is granted as Django grants it: the user's id in the topic's access set (`grant`).
"""

import asyncio
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import pytest
import redis

from app.settings import Settings

KEY = "test-signing-key-0123456789abcdef"
# The stack's Redis as the service reaches it (its ACL user and password).
BASE = Settings(realtime_token_key=KEY).redis_url
REDIS_URL = urlunsplit(urlsplit(BASE)._replace(path="/15"))

# Small limits so the tests reach them quickly.
SERVER_ENV = {
    "REDIS_URL": REDIS_URL,
    "REALTIME_TOKEN_KEY": KEY,
    "SEND_QUEUE_SIZE": "64",
    "PRESENCE_TTL": "1.5",
    "SSE_HEARTBEAT": "1",
    "WS_RATE_PER_SECOND": "5",
    "WS_RATE_BURST": "10",
    "WS_RATE_STRIKES": "5",
    "WS_MAX_MESSAGE_BYTES": "1024",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real Uvicorn process running the app, as compose/start runs it."""

    def __init__(self, *args: str, launcher: str = "uvicorn", **env: str):
        """`args`: more Uvicorn options; `launcher`: the module run (compose/start's: app.serve)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/rt/ws"
        cmd = [sys.executable, "-m", launcher, "app.main:app", "--port", str(self.port), *args]
        cmd += ["--loop", "uvloop", "--http", "httptools"]
        cmd += ["--ws", "app.wsproto:WebSocketProtocol"]
        cmd += ["--timeout-graceful-shutdown", "10", "--ws-max-size", "65536"]
        self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            cmd,
            env={**os.environ, **SERVER_ENV, **env},
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        deadline = time.monotonic() + 60  # a busy 2-core CI machine starts slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/rt/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the server did not become ready")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def r():
    """The stack's Redis, database 15, flushed before each test."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def room():
    """A topic id no other test (or the stack) uses: Pub/Sub channels span databases."""
    return random.randint(10**8, 10**9)


def grant(user: int, *topics: str) -> None:
    """Let `user` read `topics`, as Django does: its id in each topic's access set, and the
    sets marked as built (docs/protocol.md, "Topics and access")."""
    with redis.Redis.from_url(REDIS_URL) as client:
        for topic in topics:
            client.sadd(f"rt:acl:{topic}", str(user))
        client.set("rt:acl:ready", "1")


def member_token(user: int, room: int, **over) -> str:
    """A token for `user`, who may read topic `room.<room>`."""
    grant(user, f"room.{room}")
    return make_token(user, **over)


def make_token(user: int, *, ttl: int = 300, key: str = KEY, **over) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user),
        "name": f"user{user}",
        "aud": "realtime",
        "iss": "wsgi",
        "iat": now,
        "exp": now + ttl,
        **over,
    }
    return jwt.encode(claims, key, algorithm="HS256")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def run(coro):
    return asyncio.run(coro)


class Django:
    """Publishes events as the Django side does: XADD, then what the real channels_redis
    RedisPubSubChannelLayer's group_send (prefix "asgi", JSON serializer) writes: Django
    writes those bytes itself, and using the layer here proves they are the same."""

    def __init__(self):
        from channels_redis.pubsub import RedisPubSubChannelLayer

        self.layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], serializer_format="json")
        self.r = None

    async def publish(self, topic: str, n: int = 1, *, size: int = 0, maxlen: int = 10_000):
        self._redis()
        ids = []
        for i in range(n):
            # `size` is meant as bytes on the wire: random, so per-message deflate (on in the
            # test server and the client) cannot shrink a 30 KB pad to ~100 bytes.
            pad = base64.b64encode(os.urandom(size)).decode()[:size]
            body = {
                "topic": topic,
                "type": "card.updated",
                "ts": "2026-11-24T01:00:00.123Z",
                "actor": 7,
                "data": {"id": i, "version": i + 1, "pad": pad},
            }
            eid = await self.r.xadd(
                f"events:{topic}", {"event": json.dumps(body)}, maxlen=maxlen, approximate=False
            )
            await self.layer.group_send(topic, {"type": "rt.event", "event": {"id": eid, **body}})
            ids.append(eid)
        return ids

    async def revoke(self, user: int, topic: str) -> str:
        """What Django does when `user` loses access: out of the set, then `access.revoked`."""
        await self._redis().srem(f"rt:acl:{topic}", str(user))
        body = {"topic": topic, "type": "access.revoked", "ts": "2026-11-24T01:00:00.123Z"}
        body |= {"actor": None, "data": {"user": user}}
        eid = await self._redis().xadd(f"events:{topic}", {"event": json.dumps(body)})
        await self.layer.group_send(topic, {"type": "rt.event", "event": {"id": eid, **body}})
        return eid

    def _redis(self):
        import redis.asyncio as aioredis

        if self.r is None:
            self.r = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
        return self.r

    async def close(self):
        await self.layer.flush()
        if self.r is not None:
            await self.r.aclose()
