"""WebSocket close codes through nginx under abuse (issue 12, findings 7 and 8): a frame far
over the limit gets 1009 every time (not a TCP reset), a reader too slow for its events gets
1013 within a bounded time (not 1006 after the keepalive gives up), and an Origin of another
scheme is refused like any other cross-site Origin."""

import asyncio
import contextlib
import json
import threading
import time

import pytest
import websockets

from conftest import HTTPS_URL, WS_URL, insecure_tls

pytestmark = pytest.mark.timeout(240)

TRIES = 10


@pytest.fixture
def token(login) -> str:
    r = login("carol").post("/api/realtime/token")
    assert r.status_code == 200, r.text
    return r.json()["token"]


async def close_code(ws, wait: float = 15) -> int | None:
    """The code of the server's close frame; None when the connection ended without one."""
    try:
        async with asyncio.timeout(wait):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None


def test_a_4_mib_frame_gets_1009_every_time(token):
    auth = {"Authorization": f"Bearer {token}"}

    async def once() -> int | None:
        ws = await websockets.connect(
            WS_URL, ssl=insecure_tls(), additional_headers=auth, open_timeout=10
        )
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send("x" * (4 * 1024 * 1024))
        return await close_code(ws)

    async def go() -> list[int | None]:
        codes = []
        for _ in range(TRIES):
            codes.append(await once())
            await asyncio.sleep(0.2)  # within nginx's handshake rate (5/s)
        return codes

    codes = asyncio.run(go())
    assert codes == [1009] * TRIES, f"close codes (None: reset, no close frame): {codes}"


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (HTTPS_URL, True),
        (HTTPS_URL.replace("https://", "http://", 1), False),  # same host and port, http
        ("https://evil.example", False),
    ],
)
def test_the_origin_must_be_this_sites_scheme_host_and_port(token, origin, accepted):
    auth = {"Authorization": f"Bearer {token}"}

    async def go():
        async with websockets.connect(
            WS_URL, ssl=insecure_tls(), additional_headers=auth, origin=origin, open_timeout=10
        ) as ws:
            try:
                await ws.send('{"type": "ping", "id": "o"}')
                async with asyncio.timeout(10):
                    return await ws.recv()
            except websockets.ConnectionClosed as e:
                return e.rcvd.code if e.rcvd else None

    got = asyncio.run(go())
    if accepted:
        assert isinstance(got, str), f"closed with {got}"
        assert json.loads(got) == {"type": "pong", "id": "o"}
    else:
        assert got == 1008


def publish_in_django(wsgi, topic: str, count: int, size: int, per_second: int) -> None:
    """Publish through Django's own path (XADD + channel layer), paced, from a wsgi container:
    faster than nginx's API rate limit would let a test create cards."""
    script = (
        "import time\n"
        "from core.events import publish\n"
        f"pad = 'x' * {size}\n"
        f"for i in range({count}):\n"
        f"    publish({topic!r}, 'card.updated', None, {{'id': i, 'pad': pad}})\n"
        f"    time.sleep({1 / per_second})\n"
    )
    code, out = wsgi.exec_run(["python", "manage.py", "shell", "-c", script])
    assert code == 0, out


def test_readers_too_slow_for_9_kb_events_get_1013_in_bounded_time(own_topic, containers):
    """10 readers take 5 events/s of a flow of 9 KB events up to 50/s: each is closed with
    1013 soon after the flow starts, its close frame behind only the little that flow control
    lets be on the way (not behind megabytes of nginx and socket buffers)."""
    _, topic, token = own_topic
    auth = {"Authorization": f"Bearer {token}"}

    async def reader(ready: asyncio.Event) -> tuple[int | None, float]:
        """The close code, and the seconds from the first event to the close."""
        async with websockets.connect(
            WS_URL,
            ssl=insecure_tls(),
            additional_headers=auth,
            open_timeout=10,
            ping_interval=None,  # this reader is slow on purpose, not dead
            max_size=2**20,
        ) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
            while json.loads(await ws.recv())["type"] != "subscribed":
                pass
            ready.set()
            first = None
            try:
                while True:
                    await ws.recv()
                    first = first or time.monotonic()
                    await asyncio.sleep(0.2)
            except websockets.ConnectionClosed as e:
                return (e.rcvd.code if e.rcvd else None), time.monotonic() - (first or 0)

    async def go() -> list[tuple[int | None, float]]:
        readies = [asyncio.Event() for _ in range(TRIES)]
        tasks = []
        for ready in readies:
            tasks.append(asyncio.create_task(reader(ready)))
            await asyncio.sleep(0.2)  # within nginx's handshake rate (5/s)
        async with asyncio.timeout(30):
            for ready in readies:
                await ready.wait()
        flow = threading.Thread(
            target=publish_in_django,
            args=(containers("wsgi")[0], topic, 1500, 9000, 50),
            daemon=True,
        )
        flow.start()
        async with asyncio.timeout(150):
            return await asyncio.gather(*tasks)

    results = asyncio.run(go())
    codes = [code for code, _ in results]
    assert codes == [1013] * TRIES, f"close codes (None: no close frame): {codes}"
    slowest = max(seconds for _, seconds in results)
    assert slowest < 90, f"a reader saw its 1013 {slowest:.0f} s after its first event"
