"""Fan-out: one Redis subscription per topic per process, delivered in memory to local clients.

How an event reaches a client, exactly once and in order:
- Django (or this service) XADDs the event to `events:<topic>`, then PUBLISHes it on
  `<EVENT_CHANNEL_PREFIX>__group__<topic>` (channels_redis' group_send wire format).
- Each process SUBSCRIBEs once per topic it serves. A message there only rings the bell: the
  topic's pump reads the stream after the last id it delivered (XRANGE) and hands each entry,
  in stream order, to every local subscription. Reading the stream, not the message, keeps
  order even when two Django workers publish out of order, and a lost Pub/Sub message (Redis
  reconnect) only delays events until the next bell or the catch-up after reconnecting.
- A subscription delivers an event only if its id is above the last one it delivered
  (de-duplication), so a resume (replay from the stream) and live events never overlap.
- Access is checked per subscription against Django's access sets (app/access.py), before
  and again after attaching. Django removes a user from a set, then publishes
  `access.revoked` on the topic: every process serving the topic reads it from the stream in
  order and drops that user's subscriptions there, so nothing after it reaches them.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from . import access, metrics
from .auth import User
from .events import (
    ZERO,
    Event,
    StreamId,
    channel_prefix,
    dumps,
    format_id,
    parse_id,
    publish,
    read_after,
    stream_info,
)
from .logs import log_delivery
from .settings import Settings
from .waits import Flag

log = logging.getLogger("asgi.hub")
BATCH = 500


class Conn:
    """One client connection (WebSocket or SSE) with a bounded send buffer."""

    def __init__(self, user: User, kind: str, limit: int):
        self.user = user
        self.kind = kind  # "ws" or "sse": which pre-built frame of an event it sends
        self.limit = limit
        # A list, not a deque, and Flags, not asyncio Events (app/waits.py): every empty
        # deque or Event holds ~0.8 KiB, times every connection held.
        self.buf: list[str] = []
        self.ready = Flag()  # frames waiting, or closed
        self.room = Flag()  # the buffer has room again (put waits on it)
        self.subs: dict[str, Subscription] = {}
        self.closed = Flag()
        self.close_code = 1000
        self.close_reason = ""
        # Writes a frame at once if it can (True), without waking the send task: set by the
        # WebSocket session when the server offers it (app/wsproto.py, send_now).
        self.direct: Callable[[str], bool] | None = None

    def frame(self, ev: Event) -> str:
        return ev.ws_frame if self.kind == "ws" else ev.sse_frame

    def resync_frame(self, topic: str, head: str) -> str:
        body = dumps({"type": "resync", "topic": topic, "last_event_id": head})
        if self.kind == "ws":
            return body
        return f"event: resync\nid: {head}\ndata: {body}\n\n"

    def revoked_frame(self, topic: str) -> str:
        body = dumps({"type": "unsubscribed", "topics": [topic], "reason": "revoked"})
        return body if self.kind == "ws" else f"event: unsubscribed\ndata: {body}\n\n"

    def close(self, code: int, reason: str) -> None:
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason
            metrics.closed(self.kind, code)
            self.closed.set()
            self.ready.set()
            self.room.set()

    def offer(self, frame: str) -> None:
        """Queue a frame without waiting. A full buffer means the client reads too slowly:
        it is closed (1013), never buffered without bound; it resumes from its last id."""
        if self.closed.is_set():
            return
        if self.direct is not None and not self.buf and self.direct(frame):
            return
        if len(self.buf) >= self.limit:
            self.close(1013, "too slow: send queue full, reconnect with last_event_id")
            return
        self.buf.append(frame)
        self.ready.set()

    async def put(self, frame: str) -> None:
        """Queue a frame, waiting for room (a replay is paced by the client's reading)."""
        while len(self.buf) >= self.limit and not self.closed.is_set():
            self.room.clear()
            await self.room.wait()
        if not self.closed.is_set():
            self.buf.append(frame)
            self.ready.set()

    async def take(self, idle: float | None = None) -> list[str] | None:
        """All queued frames ([] after `idle` seconds without any); None once closed."""
        if not self.buf and not self.closed.is_set():
            self.ready.clear()
            try:
                async with asyncio.timeout(idle):
                    await self.ready.wait()
            except TimeoutError:
                return []
        if self.closed.is_set():
            return None
        frames, self.buf = self.buf, []
        self.room.set()
        return frames


class Subscription:
    __slots__ = (
        "after",
        "conn",
        "dropped",
        "joined",
        "max_pending",
        "pending",
        "replaying",
        "resync",
        "target",
        "topic",
    )

    def __init__(self, conn: Conn, topic: str, after: StreamId, replaying: bool, max_pending: int):
        self.conn = conn
        self.topic = topic
        self.after = after  # id of the last event delivered (or skipped) for this topic
        self.replaying = replaying
        # Live events collected during the replay; None once live (push no longer queues).
        self.pending: deque[Event] | None = deque()
        self.max_pending = max_pending
        self.target: StreamId = after  # replay up to here; live events follow
        self.resync: str | None = None
        self.dropped = False  # unsubscribed or revoked: the replay stops, nothing more is sent
        self.joined = False  # counted in presence

    def push(self, ev: Event) -> None:
        if self.replaying:
            # Live events wait until the replay has caught up, so order holds.
            self.pending.append(ev)
            if len(self.pending) > self.max_pending:
                self.conn.close(1013, "too slow: events piled up during replay")
            return
        if ev.sid <= self.after:
            return  # already delivered: replay and live overlap are de-duplicated here
        self.after = ev.sid
        self.conn.offer(self.conn.frame(ev))
        metrics.delivered(ev, self.conn.kind)


class Feed:
    """The per-process state of one topic: local subscriptions and the stream position."""

    def __init__(self, topic: str):
        self.topic = topic
        self.subs: set[Subscription] = set()
        self.head: StreamId = ZERO  # last stream id handed to the subscriptions
        self.wake = asyncio.Event()
        self.ready: asyncio.Future | None = None
        self.task: asyncio.Task | None = None


class Hub:
    def __init__(self, redis: Redis, settings: Settings):
        self.redis = redis
        self.settings = settings
        self.feeds: dict[str, Feed] = {}
        self.conns: set[Conn] = set()
        self.present: Counter[tuple[str, int]] = Counter()  # (topic, user) -> local conns
        self._names: dict[int, str] = {}
        self._confirm: dict[str, asyncio.Future] = {}
        self._pubsub = redis.pubsub()
        self._tasks: list[asyncio.Task] = []
        self._ps_lock = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        self.prefix = channel_prefix(settings.event_channel_prefix)

    # ---- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._read_pubsub(), name="hub-pubsub"),
            asyncio.create_task(self._presence_loop(), name="hub-presence"),
        ]

    async def stop(self) -> None:
        for t in self._tasks + [f.task for f in self.feeds.values() if f.task]:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    # ---- subscribing ----------------------------------------------------------------

    async def attach(self, conn: Conn, topic: str, last_event_id: StreamId | None):
        """Phase 1 of subscribing: from here on the topic's live events are collected for
        conn (in order, not yet sent). Then `catch_up` replays and starts delivery.
        Returns None when conn is already subscribed to topic."""
        if topic in conn.subs:
            return None
        feed = await self._feed(topic)
        info = await stream_info(self.redis, topic) if last_event_id is not None else None
        last_generated, horizon = info or (ZERO, ZERO)
        # No await between reading the head and attaching: the pump cannot slip past us.
        target = feed.head
        resync = None
        if last_event_id is None:
            start = target  # live only
        elif last_event_id < horizon or last_event_id > max(last_generated, target):
            # Older than the stream still holds, or from a stream that no longer exists:
            # events were lost for this client, so it must refetch state from /api/.
            start, resync = target, format_id(target)
        else:
            # Replay (last_event_id, target]; if the client is ahead of this process (it
            # saw the event on another replica first), de-duplication skips up to its id.
            start = last_event_id
        sub = Subscription(conn, topic, start, True, self.settings.send_queue_size)
        sub.target, sub.resync = target, resync
        feed.subs.add(sub)
        conn.subs[topic] = sub
        return sub

    async def attach_readable(
        self, conn: Conn, topics: list[str], last_event_id: StreamId | None
    ) -> tuple[list["Subscription | None"], list[str]]:
        """`attach` to each topic the user may read: (subscriptions, []), or ([], forbidden
        topics) and nothing attached. Checked again once attached: a revocation that lands
        between the first check and the attach is seen by the second check, or is published
        after the attach point and so delivered live (Django removes access, then publishes).
        Raises access.AccessUnavailable while Django rebuilds the sets."""
        refused = await access.forbidden(self.redis, conn.user.id, topics)
        if refused:
            return [], refused
        subs = [await self.attach(conn, t, last_event_id) for t in topics]
        refused = await access.forbidden(self.redis, conn.user.id, topics)
        if refused:
            for sub in subs:
                if sub is not None:
                    self._detach(conn, sub.topic)
            return [], refused
        return subs, []

    async def catch_up(self, sub: "Subscription") -> None:
        """Phase 2: resync notice or replay from the stream, then the live events
        collected meanwhile, de-duplicated by id; from then on live delivery."""
        conn, topic = sub.conn, sub.topic
        try:
            if sub.resync is not None:
                conn.offer(conn.resync_frame(topic, sub.resync))
            after = sub.after
            while after < sub.target and not conn.closed.is_set() and not sub.dropped:
                events, after, n = await read_after(
                    self.redis, topic, after, BATCH, until=format_id(sub.target)
                )
                for ev in events:
                    if ev.sid > sub.after:
                        sub.after = ev.sid
                        await conn.put(conn.frame(ev))
                if n < BATCH:
                    break
            sub.after = max(sub.after, sub.target)
            # Then the live events collected meanwhile, paced like the replay (more may
            # arrive while we wait for room; a client too slow for them is closed by push).
            while sub.pending and not conn.closed.is_set() and not sub.dropped:
                ev = sub.pending.popleft()
                if ev.sid > sub.after:
                    sub.after = ev.sid
                    await conn.put(conn.frame(ev))
        finally:
            sub.replaying = False
            sub.pending = None
        if not sub.dropped:
            sub.joined = True
            await self._join(conn, topic)

    async def unsubscribe(self, conn: Conn, topic: str) -> None:
        sub = self._detach(conn, topic)
        if sub is not None and sub.joined:
            await self._leave(conn, topic)

    def _detach(self, conn: Conn, topic: str) -> "Subscription | None":
        """Stop feeding conn this topic, at once (no await)."""
        sub = conn.subs.pop(topic, None)
        if sub is None:
            return None
        sub.dropped = True
        feed = self.feeds.get(topic)
        if feed is not None:
            feed.subs.discard(sub)
            if not feed.subs:
                asyncio.get_running_loop().call_later(5, self._drop_if_idle, topic)
        return sub

    def _revoke(self, sub: "Subscription") -> None:
        """Django revoked sub's user's access: drop the subscription before the next event,
        tell the client, and announce the leave (in the background)."""
        conn, topic = sub.conn, sub.topic
        if self._detach(conn, topic) is not sub:
            return
        conn.offer(conn.revoked_frame(topic))
        if sub.joined:
            self._spawn(self._leave(conn, topic))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.conns):
            conn.close(code, reason)

    async def disconnect(self, conn: Conn) -> None:
        self.conns.discard(conn)
        for topic in list(conn.subs):
            with contextlib.suppress(RedisError, OSError):
                await self.unsubscribe(conn, topic)

    async def _feed(self, topic: str) -> Feed:
        feed = self.feeds.get(topic)
        if feed is not None:
            await asyncio.shield(feed.ready)
            return feed
        feed = Feed(topic)
        loop = asyncio.get_running_loop()
        feed.ready = loop.create_future()
        self.feeds[topic] = feed
        try:
            channel = self.channel(topic)
            confirmed = loop.create_future()
            self._confirm[channel] = confirmed
            async with self._ps_lock:
                await self._pubsub.subscribe(channel)
            # Only once Redis confirmed the subscription is the stream's head read: every
            # event after it will ring the bell, every event up to it is in the stream.
            await asyncio.wait_for(confirmed, timeout=5)
            info = await stream_info(self.redis, topic)
            feed.head = info[0] if info else ZERO
            feed.task = asyncio.create_task(self._pump(feed), name=f"pump-{topic}")
            feed.ready.set_result(None)
        except BaseException as e:
            self.feeds.pop(topic, None)
            self._confirm.pop(self.channel(topic), None)
            feed.ready.set_exception(RuntimeError(f"cannot subscribe to {topic}: {e!r}"))
            feed.ready.exception()  # retrieved: waiters get it, the loop does not warn
            raise
        return feed

    def _drop_if_idle(self, topic: str) -> None:
        feed = self.feeds.get(topic)
        if feed is None or feed.subs or feed.task is None:
            return
        del self.feeds[topic]
        feed.task.cancel()
        self._spawn(self._unsubscribe_channel(self.channel(topic)))

    def channel(self, topic: str) -> str:
        return self.prefix + topic

    async def _unsubscribe_channel(self, channel: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            async with self._ps_lock:
                if channel[len(self.prefix) :] not in self.feeds:
                    await self._pubsub.unsubscribe(channel)

    # ---- reading ----------------------------------------------------------------------

    async def _read_pubsub(self) -> None:
        """The one Pub/Sub reader of this process: confirmations and bells."""
        while True:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                msg = await self._pubsub.get_message(timeout=1.0)
                if msg is None:
                    continue
                channel = msg["channel"]
                if msg["type"] == "subscribe":
                    fut = self._confirm.pop(channel, None)
                    if fut is not None and not fut.done():
                        fut.set_result(None)
                    elif (feed := self.feeds.get(channel[len(self.prefix) :])) is not None:
                        # redis-py re-subscribed after a reconnect: catch up on what was
                        # published while the connection was down.
                        feed.wake.set()
                elif msg["type"] == "message":
                    self._ring(channel[len(self.prefix) :], msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                log.warning("pubsub connection lost (%r); reconnecting", e)
                metrics.REDIS_RECONNECTS.inc()
                await asyncio.sleep(0.5)
                # redis-py resubscribes on reconnect; catch up on what was published meanwhile.
                for feed in self.feeds.values():
                    feed.wake.set()

    def _ring(self, topic: str, data: str) -> None:
        feed = self.feeds.get(topic)
        if feed is None:
            return
        try:
            sid = parse_id(json.loads(data)["event"]["id"])
            if sid <= feed.head:
                return  # already read from the stream
        except (ValueError, KeyError, TypeError):
            pass  # not our shape: the stream decides
        feed.wake.set()

    async def _pump(self, feed: Feed) -> None:
        while True:
            await feed.wake.wait()
            feed.wake.clear()
            try:
                while True:
                    events, last, n = await read_after(self.redis, feed.topic, feed.head, BATCH)
                    for ev in events:
                        for sub in tuple(feed.subs):
                            if ev.revokes(sub.conn.user.id):
                                self._revoke(sub)
                            else:
                                sub.push(ev)
                        log_delivery(ev, len(feed.subs))
                    feed.head = last
                    if n < BATCH:
                        break
            except (RedisError, OSError) as e:
                log.warning("reading %s failed (%r); retrying", feed.topic, e)
                await asyncio.sleep(0.5)
                feed.wake.set()

    # ---- presence ------------------------------------------------------------------------

    async def presence(self, topic: str) -> list[int]:
        members = await self.redis.zrangebyscore(f"presence:{topic}", time.time(), "+inf")
        return sorted(int(m) for m in members)

    async def _join(self, conn: Conn, topic: str) -> None:
        user = conn.user
        self._names[user.id] = user.name
        self.present[(topic, user.id)] += 1
        if self.present[(topic, user.id)] > 1:
            return
        key = f"presence:{topic}"
        expires = time.time() + self.settings.presence_ttl
        if await self.redis.zadd(key, {str(user.id): expires}, nx=True):
            await self._publish(topic, "presence.joined", user.id, user.name)
        else:
            await self.redis.zadd(key, {str(user.id): expires}, xx=True, gt=True)

    async def _leave(self, conn: Conn, topic: str) -> None:
        user = conn.user
        self.present[(topic, user.id)] -= 1
        if self.present[(topic, user.id)] > 0:
            return
        del self.present[(topic, user.id)]
        if await self.redis.zrem(f"presence:{topic}", str(user.id)):
            await self._publish(topic, "presence.left", user.id, user.name)

    async def _publish(self, topic: str, type_: str, uid: int, name: str | None) -> None:
        data = {"user": uid} if name is None else {"user": uid, "name": name}
        s = self.settings
        await publish(
            self.redis, s.event_channel_prefix, topic, type_, uid, data, s.event_stream_maxlen
        )

    async def _presence_loop(self) -> None:
        """Refresh our users' entries; sweep expired ones (a crashed replica's users)."""
        period = max(self.settings.presence_ttl / 3, 0.2)
        while True:
            await asyncio.sleep(period)
            try:
                now = time.time()
                expires = now + self.settings.presence_ttl
                pairs = list(self.present)
                async with self.redis.pipeline(transaction=False) as pipe:
                    for topic, uid in pairs:
                        # XX: never resurrect an entry that a leave removed meanwhile.
                        pipe.zadd(f"presence:{topic}", {str(uid): expires}, xx=True, ch=True)
                    updated = await pipe.execute()
                for (topic, uid), ok in zip(pairs, updated, strict=True):
                    # Swept while still here (this process stalled past the TTL): rejoin.
                    key = f"presence:{topic}"
                    if (
                        not ok
                        and self.present.get((topic, uid))
                        and await self.redis.zadd(key, {str(uid): expires}, nx=True)
                    ):
                        await self._publish(topic, "presence.joined", uid, self._names.get(uid))
                for topic in list(self.feeds):
                    stale = await self.redis.zrangebyscore(f"presence:{topic}", "-inf", now)
                    for member in stale:
                        # ZREM decides the race: only the process that removed it announces it.
                        if await self.redis.zrem(f"presence:{topic}", member):
                            await self._publish(topic, "presence.left", int(member), None)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, ValueError) as e:
                log.warning("presence refresh failed: %r", e)
