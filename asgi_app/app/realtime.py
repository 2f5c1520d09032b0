"""/rt/ws and /rt/sse: the real-time protocol of docs/protocol.md."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError
from redis.exceptions import RedisError

from . import access, auth
from .events import dumps, parse_id
from .hub import Conn, Hub
from .settings import Settings
from .web import current_user, errors, fail

router = APIRouter(tags=["real-time"])

TopicName = Annotated[str, StringConstraints(pattern=access.TOPIC_RE.pattern)]
EventId = Annotated[str, StringConstraints(pattern=r"^\d{1,20}(-\d{1,20})?$")]
Topics = Annotated[list[TopicName], Field(min_length=1, max_length=100)]


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["subscribe"]
    topics: Topics
    last_event_id: EventId | None = None  # resume: events after this id are replayed


class Unsubscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["unsubscribe"]
    topics: Topics


class Ping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["ping"]
    id: Annotated[str, StringConstraints(max_length=64)] | int | None = None


class Auth(BaseModel):
    """A fresh token before the current one expires keeps the connection open."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["auth"]
    token: Annotated[str, StringConstraints(max_length=2048)]


ClientMessage = TypeAdapter(
    Annotated[Subscribe | Unsubscribe | Ping | Auth, Field(discriminator="type")]
)


class Bucket:
    """Token bucket: `burst` messages at once, then `rate` per second."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the default port filled in; None if it does not parse."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname, port


def same_origin(headers, scheme: str) -> bool:
    """Refuse cross-site WebSocket hijacking: a browser always sends Origin, and it must be
    this site: same scheme, host and port (`http://` for an https site is another origin).
    `scheme` is the request's (ws/wss, from X-Forwarded-Proto behind nginx). Programs without
    Origin authenticate with a Bearer token anyway."""
    origin = headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    site_scheme = "https" if scheme in ("wss", "https") else "http"
    theirs = origin_of(parts.scheme, parts.netloc)
    return theirs is not None and theirs == origin_of(site_scheme, headers.get("host", ""))


# ---- WebSocket ------------------------------------------------------------------------------


class WsSession:
    def __init__(self, ws: WebSocket, conn: Conn, hub: Hub, settings: Settings):
        self.ws, self.conn, self.hub, self.settings = ws, conn, hub, settings
        self.bucket = Bucket(settings.ws_rate_per_second, settings.ws_rate_burst)
        self.strikes = 0
        self.expiry: asyncio.TimerHandle | None = None
        self.inflight: list[str] = []  # taken from the buffer, not yet written (oldest first)
        self.send_now = ws.scope.get("extensions", {}).get("kit.send_now")
        if self.send_now is not None:
            conn.direct = self.write_now

    def write_now(self, frame: str) -> bool:
        """Write at once (no task to wake), only behind nothing: order is kept."""
        return not self.inflight and self.send_now(frame)

    def send(self, obj: dict) -> None:
        self.conn.offer(dumps(obj))

    def error(self, code: str, message: str, **extra) -> None:
        self.send({"type": "error", "code": code, "message": message, **extra})

    def watch_expiry(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        delay = max(0.0, self.conn.user.expires_at - time.time())
        loop = asyncio.get_running_loop()
        self.expiry = loop.call_later(delay, self.conn.close, 1008, "token expired")

    async def run(self) -> None:
        self.hub.conns.add(self.conn)
        self.watch_expiry()
        sender = asyncio.create_task(self.send_loop())
        receiver = asyncio.create_task(self.receive_loop())
        closed = self.conn.closed.waiter()  # a future: no task needed to wait for it
        try:
            await asyncio.wait({receiver, closed, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sender, receiver, closed):
                t.cancel()
            if self.expiry is not None:
                self.expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            # Stop feeding it at once (and announce the leave), then say goodbye.
            await self.hub.disconnect(self.conn)
            if self.conn.closed.is_set():
                # Our decision (bad frame, too slow, shutdown, expiry): tell the client why.
                # Bounded wait: a client that reads nothing must not hold this task.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(10):
                        if self.conn.close_code != 1013:
                            # Replies and events already queued go out first (not for a
                            # client too slow to read them: it resumes instead).
                            for frame in (*self.inflight, *self.conn.buf):
                                await self.ws.send_text(frame)
                        await self.ws.close(self.conn.close_code, self.conn.close_reason[:120])

    async def send_loop(self) -> None:
        while (frames := await self.conn.take()) is not None:
            self.inflight.extend(frames)
            try:
                # What was queued must be on its way within the timeout: a client slower than
                # its events falls further behind with every batch, and is found here (its
                # sends wait on flow control, app/wsproto.py), whatever the buffers between.
                async with asyncio.timeout(self.settings.ws_send_timeout):
                    while self.inflight:
                        await self.ws.send_text(self.inflight[0])
                        del self.inflight[0]
            except TimeoutError:
                return self.conn.close(1013, "too slow: reconnect with last_event_id")

    async def receive_loop(self) -> None:
        limit = self.settings.ws_max_message_bytes
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                return self.conn.close(1003, "binary frames are not supported; send JSON text")
            if len(text) > limit or len(text.encode()) > limit:
                return self.conn.close(1009, f"message too big: the limit is {limit} bytes")
            if not self.bucket.take():
                self.strikes += 1
                if self.strikes >= self.settings.ws_rate_strikes:
                    return self.conn.close(1008, "rate limit exceeded")
                self.error("rate_limited", "too many messages; this one was ignored")
                continue
            self.strikes = 0
            try:
                data = json.loads(text)
            except ValueError:
                return self.conn.close(1007, "invalid JSON")
            try:
                msg = ClientMessage.validate_python(data)
            except ValidationError as e:
                fields = {".".join(map(str, x["loc"])) or "message": x["msg"] for x in e.errors()}
                self.error(
                    "invalid_message",
                    "the message does not match the protocol",
                    **{"fields": fields},
                )
                continue
            try:
                await self.handle(msg)
            except RedisError:
                self.error("unavailable", "the event store is not reachable; retry shortly")

    async def handle(self, msg) -> None:
        conn, user = self.conn, self.conn.user
        match msg:
            case Ping():
                self.send({"type": "pong", "id": msg.id})
            case Subscribe():
                topics = list(dict.fromkeys(msg.topics))
                new = [t for t in topics if t not in conn.subs]
                if len(conn.subs) + len(new) > self.settings.max_topics_per_connection:
                    self.error("too_many_topics", "too many topics on one connection")
                    return
                resume = parse_id(msg.last_event_id) if msg.last_event_id else None
                # Attach first, then acknowledge: every event after `subscribed` is delivered.
                try:
                    subs, forbidden = await self.hub.attach_readable(conn, new, resume)
                except access.AccessUnavailable as e:
                    self.error("unavailable", str(e))
                    return
                if forbidden:
                    self.error("forbidden", "you may not read these topics", topics=forbidden)
                    return
                presence = {t: sorted({*await self.hub.presence(t), user.id}) for t in new}
                self.send({"type": "subscribed", "topics": topics, "presence": presence})
                for sub in subs:
                    if sub is not None:
                        await self.hub.catch_up(sub)
            case Unsubscribe():
                for t in msg.topics:
                    await self.hub.unsubscribe(conn, t)
                self.send({"type": "unsubscribed", "topics": msg.topics})
            case Auth():
                key = self.settings.realtime_token_key.get_secret_value()
                try:
                    fresh = auth.verify(msg.token, key)
                except auth.AuthError as e:
                    self.error("unauthorized", str(e))
                    return
                if fresh.id != user.id:
                    return conn.close(1008, "token is for another user")
                conn.user = fresh
                self.watch_expiry()
                self.send({"type": "authenticated", "expires_at": int(fresh.expires_at)})


async def websocket(ws: WebSocket) -> None:
    """The real-time WebSocket. Auth: `rt_token` cookie or `Authorization: Bearer`."""
    state = ws.app.state
    await ws.accept()
    # Accept first, then close with a code: browsers see a close code, never an HTTP status.
    if not same_origin(ws.headers, ws.url.scheme):
        await ws.close(1008, "cross-origin WebSocket refused")
        return
    token = auth.token_from(ws.headers, ws.cookies)
    try:
        user = auth.verify(token, state.settings.realtime_token_key.get_secret_value())
    except auth.AuthError as e:
        await ws.close(1008, str(e))
        return
    if state.shutdown.is_set():
        await ws.close(1012, "service restart")
        return
    conn = Conn(user, "ws", state.settings.send_queue_size)
    await WsSession(ws, conn, state.hub, state.settings).run()


# Starlette's own route, not FastAPI's: the endpoint takes no dependencies, and FastAPI's wrapper
# (dependency solving, two exit stacks) would be held for every connection's life, ~7 KiB each.
router.add_websocket_route("/rt/ws", websocket)


# ---- Server-Sent Events --------------------------------------------------------------------


class _Stream(StreamingResponse):
    """A StreamingResponse that runs `on_close` however it ends, even when the client left
    before the body began (a generator never started runs no `finally`)."""

    def __init__(self, content, *, on_close, **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.on_close()


@router.get(
    "/rt/sse",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(400, 401, 403, 422, 503)},
)
async def sse(
    request: Request,
    topics: Annotated[str, Query(max_length=4000, description="comma-separated, e.g. user.42")],
    last_event_id: Annotated[
        str | None, Query(max_length=41, description="resume point (or Last-Event-ID)")
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The same events as `text/event-stream`; `id:` is the event id. Reconnecting with
    `Last-Event-ID` replays what was missed; beyond the stream's reach, a `resync` event
    says to refetch from /api/."""
    user = current_user(request)
    state = request.app.state
    settings: Settings = state.settings
    names = list(dict.fromkeys(t.strip() for t in topics.split(",") if t.strip()))
    bad = [t for t in names if not access.TOPIC_RE.match(t)]
    if not names or bad:
        raise fail(400, "invalid_topic", f"topics must look like user.42: {', '.join(bad)}")
    if len(names) > settings.max_topics_per_connection:
        raise fail(400, "too_many_topics", "too many topics on one connection")
    raw = last_event_id_header or last_event_id
    try:
        resume = parse_id(raw) if raw else None
    except ValueError as e:
        raise fail(400, "invalid_last_event_id", str(e)) from e
    if state.shutdown.is_set():
        raise fail(503, "shutting_down", "this process is stopping; retry")

    hub: Hub = state.hub
    try:
        forbidden = await access.forbidden(hub.redis, user.id, names)
    except access.AccessUnavailable as e:
        raise fail(503, "unavailable", str(e)) from e
    if forbidden:
        raise fail(403, "forbidden", f"you may not read: {', '.join(forbidden)}")
    conn = Conn(user, "sse", settings.send_queue_size)
    # Attached before the response starts: the client sees the stream open once its headers
    # arrive, and a write it makes then must reach it, so the live position is fixed first.
    hub.conns.add(conn)
    try:
        subs, refused = await hub.attach_readable(conn, names, resume)
    except (RedisError, access.AccessUnavailable) as e:
        await hub.disconnect(conn)
        raise fail(503, "unavailable", "event store unavailable; retry") from e
    if refused:  # revoked since the check above
        await hub.disconnect(conn)
        raise fail(403, "forbidden", f"you may not read: {', '.join(refused)}")

    async def catch_up_all() -> None:
        try:
            for sub in subs:
                if sub is not None:
                    await hub.catch_up(sub)
        except RedisError:
            conn.close(1011, "event store unavailable")

    subscriber = asyncio.create_task(catch_up_all())
    expiry = asyncio.get_running_loop().call_later(
        max(0.0, user.expires_at - time.time()), conn.close, 1008, "token expired"
    )

    async def stream() -> AsyncIterator[str]:
        # The reconnect delay, and a first line so proxies and clients see the stream open.
        yield f"retry: {settings.sse_retry_ms}\n: connected\n\n"
        while (frames := await conn.take(settings.sse_heartbeat)) is not None:
            # A heartbeat comment when idle: keeps proxies from timing the stream out.
            yield "".join(frames) if frames else ": heartbeat\n\n"
            if not conn.subs:
                return  # every topic revoked: the `unsubscribed` event was the last line

    async def close() -> None:
        expiry.cancel()
        subscriber.cancel()
        await hub.disconnect(conn)

    # FastAPI calls the response right after this return (fastapi.routing.request_response);
    # between the two only dependencies with `yield` could run, and this route has none: so
    # `close` runs however the request ends.
    return _Stream(
        stream(),
        on_close=close,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
