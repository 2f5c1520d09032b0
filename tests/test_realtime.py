"""Real time, end to end: events Django publishes reach WebSocket and SSE subscribers through
nginx over TLS, exactly once and in order, across `asgi` replicas and a replica restart.

The infrastructure's own topic, `user.<id>` (each user may read theirs), and Django's
`publish_event` command: no domain app is needed. The example's own tests cover its flow
(a write reaching its subscribers)."""

import asyncio
import json
import random
import threading
import time

import httpx
import pytest
import websockets

from conftest import WS_URL, insecure_tls

pytestmark = pytest.mark.timeout(240)


class Token:
    """A user's real-time token kept fresh as the kit's pages keep it (renewed at four fifths
    of its life): a connection opened later than that gets a new one, so a long run's
    reconnects are not refused for an expired token."""

    def __init__(self, client: httpx.Client):
        self.client = client
        self.value = ""
        self.renew_at = 0.0
        self.lock = asyncio.Lock()

    async def get(self) -> str:
        async with self.lock:
            if time.monotonic() >= self.renew_at:
                r = await asyncio.to_thread(self.client.post, "/api/realtime/token")
                r.raise_for_status()
                self.value = r.json()["token"]
                self.renew_at = time.monotonic() + 0.8 * r.json()["expires_in"]
        return self.value


async def bearer(token: str | Token) -> dict[str, str]:
    return {"Authorization": f"Bearer {token if isinstance(token, str) else await token.get()}"}


class Subscriber:
    """A WebSocket client that reconnects and resumes from the last id it saw, as a browser
    client of the kit would. `token`: a fixed one, or a Token renewed as the page does."""

    def __init__(self, token: str | Token, topic: str):
        self.token = token
        self.topic = topic
        self.cards: list[str] = []  # ids of published events (not presence), in arrival order
        self.last: str | None = None  # last event id of any type: the resume point
        self.closes: list[int | None] = []
        self.resyncs = 0
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                headers = await bearer(self.token)
                async with websockets.connect(
                    WS_URL, ssl=insecure_tls(), additional_headers=headers, open_timeout=10
                ) as ws:
                    msg = {"type": "subscribe", "topics": [self.topic]}
                    if self.last:
                        msg["last_event_id"] = self.last
                    await ws.send(json.dumps(msg))
                    async for raw in ws:
                        m = json.loads(raw)
                        if m["type"] == "subscribed":
                            self.subscribed.set()
                        elif m["type"] == "resync":
                            self.resyncs += 1
                        elif m["type"] == "event":
                            self.last = m["event"]["id"]
                            if not m["event"]["type"].startswith("presence."):
                                self.cards.append(m["event"]["id"])
                    self.closes.append(ws.close_code)
            except websockets.ConnectionClosed as e:
                self.closes.append(e.rcvd.code if e.rcvd else None)
            except (
                OSError, TimeoutError, websockets.InvalidStatus, websockets.InvalidHandshake,
                httpx.HTTPError,
            ):  # fmt: skip
                self.closes.append(None)  # refused (restarting replica, 429, 502): retry
            await asyncio.sleep(0.2 + random.random() * 0.5)


async def until(predicate, wait: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def start(subs: list[Subscriber]) -> list[asyncio.Task]:
    tasks = []
    for s in subs:
        tasks.append(asyncio.create_task(s.run()))
        await asyncio.sleep(0.15)  # within nginx's handshake rate (5/s, burst 10)
    async with asyncio.timeout(30):
        for s in subs:
            await s.subscribed.wait()
    return tasks


def connections_per_replica(containers) -> list[int]:
    """Established TCP connections on port 8001 inside each asgi container (/proc/net/tcp)."""
    script = (
        "print(sum(1 for l in open('/proc/net/tcp').readlines()[1:] "
        "if l.split()[1].endswith(':1F41') and l.split()[3] == '01'))"
    )
    counts = []
    for ctr in containers("asgi"):
        rc, out = ctr.exec_run(["python", "-c", script])
        assert rc == 0, out
        counts.append(int(out.decode().strip()))
    return counts


def test_every_event_once_at_each_subscriber_across_replicas(own_topic, containers, publish):
    assert len(containers("asgi")) >= 2, "the test stack runs asgi with 2 replicas"
    _, topic, token = own_topic

    async def go():
        subs = [Subscriber(token, topic) for _ in range(8)]
        tasks = await start(subs)
        spread = connections_per_replica(containers)
        expected = await asyncio.to_thread(publish, topic, 30)
        await until(lambda: all(len(s.cards) >= len(expected) for s in subs), 20)
        await asyncio.sleep(0.5)  # a duplicate would arrive now
        for t in tasks:
            t.cancel()
        return subs, expected, spread

    subs, expected, spread = asyncio.run(go())
    assert len(expected) == 30
    assert all(n >= 1 for n in spread), f"subscribers not on every replica: {spread}"
    for s in subs:
        assert s.cards == expected  # every event, once, in stream order
        assert s.closes == []  # nobody was disconnected


def test_restarting_an_asgi_replica_loses_no_event(own_topic, containers, publish):
    """Under a steady flow of writes, one asgi container restarts: its clients get 1012,
    reconnect (nginx picks a live replica) and resume from their last id."""
    replicas = containers("asgi")
    assert len(replicas) >= 2, "the test stack runs asgi with 2 replicas"
    _, topic, token = own_topic
    victim = replicas[0]

    async def go():
        subs = [Subscriber(token, topic) for _ in range(6)]
        tasks = await start(subs)
        restarted = threading.Event()

        def restart():
            time.sleep(2)
            victim.restart(timeout=30)  # SIGTERM, then start again
            restarted.set()

        # About 6 s of events, spanning the restart.
        _, expected = await asyncio.gather(
            asyncio.to_thread(restart), asyncio.to_thread(publish, topic, 60, 0.1)
        )
        await until(lambda: all(len(s.cards) >= len(expected) for s in subs), 60)
        await asyncio.sleep(0.5)
        for t in tasks:
            t.cancel()
        return subs, expected, restarted.is_set()

    subs, expected, restarted = asyncio.run(go())
    # Leave the stack as found: the restarted replica healthy again.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        victim.reload()
        if victim.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(1)
    assert restarted
    assert len(expected) == 60
    closes = [code for s in subs for code in s.closes]
    assert 1012 in closes, f"no client saw the restart: {closes}"
    for s in subs:
        assert s.resyncs == 0
        assert s.cards == expected  # nothing lost, nothing twice, in order
