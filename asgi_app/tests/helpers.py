"""Small client helpers shared by the tests."""

import asyncio
import json

import websockets


async def connect(server, token: str | None = None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await websockets.connect(server.ws_url, additional_headers=headers, **kw)


async def recv(ws, wait: float = 5.0) -> dict:
    async with asyncio.timeout(wait):
        return json.loads(await ws.recv())


async def recv_type(ws, type_: str, wait: float = 5.0) -> dict:
    """The next message of this type (others, like presence events, are skipped)."""
    async with asyncio.timeout(wait):
        while True:
            msg = await recv(ws, wait)
            if msg["type"] == type_:
                return msg


async def card_events(ws, n: int, wait: float = 10.0) -> list[str]:
    """Ids of the next n card events (presence events skipped)."""
    ids = []
    async with asyncio.timeout(wait):
        while len(ids) < n:
            msg = await recv(ws, wait)
            if msg["type"] == "event" and msg["event"]["type"].startswith("card."):
                ids.append(msg["event"]["id"])
    return ids


async def nothing_more(ws, wait: float = 0.5) -> list[dict]:
    """Card events that arrive within `wait` seconds (expected: none)."""
    extra = []
    try:
        async with asyncio.timeout(wait):
            while True:
                msg = await recv(ws, wait)
                if msg["type"] == "event" and msg["event"]["type"].startswith("card."):
                    extra.append(msg)
    except TimeoutError:
        pass
    return extra


async def subscribe(ws, topic: str, last_event_id: str | None = None) -> dict:
    msg = {"type": "subscribe", "topics": [topic]}
    if last_event_id:
        msg["last_event_id"] = last_event_id
    await ws.send(json.dumps(msg))
    return await recv_type(ws, "subscribed")


async def closed_code(ws, wait: float = 5.0) -> tuple[int, str] | None:
    """Read until the server closes: its close code and reason (None: no close frame)."""
    try:
        async with asyncio.timeout(wait):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as e:
        closed = e
    return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else None


async def sse_events(lines, n: int, wait: float = 10.0, types=("card.",)) -> list[dict]:
    """The next n SSE events whose data type starts with one of `types` (or `resync`s),
    as {"id", "event", "data"}; from an httpx response's aiter_lines()."""
    out, block = [], {}
    async with asyncio.timeout(wait):
        async for line in lines:
            if line == "":
                if "data" in block:
                    data = json.loads(block["data"])
                    kind = block.get("event", "message")
                    if kind == "resync" or str(data.get("type", "")).startswith(types):
                        out.append({"id": block.get("id"), "event": kind, "data": data})
                        if len(out) == n:
                            return out
                block = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(":")
                block[field] = value.removeprefix(" ")
    return out
