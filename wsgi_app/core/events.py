"""Publish the contract's events after the database commit (docs/design.md, "Redis").

1. XADD to the topic's bounded stream `events:<topic>`: the entry id becomes the event id,
   and readers replay from it.
2. group_send through the channels_redis PubSub layer, so live subscribers get it now.

A write never fails because Redis is down: the failure is logged and counted, the data is
already committed, and clients that missed the event resync from the API.
"""

import asyncio
import json
import logging
import os
import threading
from concurrent.futures import Future
from datetime import UTC, datetime

import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from core.breaker import ping_redis, redis_breaker

log = logging.getLogger(__name__)

# Per-process count of events that could not be published (XADD or group_send failed);
# /api/healthz reports it, the log line says which event.
failures = 0
_failures_lock = threading.Lock()

_client: redis.Redis | None = None
_client_lock = threading.Lock()


def redis_client() -> redis.Redis:
    """One client per process (redis-py's pool is thread-safe and resets itself after fork).

    Short timeouts: with Redis down, a write waits well under a second before giving up.
    """
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(
                    settings.REDIS_URL,
                    decode_responses=True,
                    socket_connect_timeout=0.5,
                    socket_timeout=2,
                    health_check_interval=30,
                )
    return _client


_blocking_client: redis.Redis | None = None


def blocking_redis_client() -> redis.Redis:
    """A client for blocking commands (BLPOP up to 10 s): no short socket timeout."""
    global _blocking_client
    if _blocking_client is None:
        with _client_lock:
            if _blocking_client is None:
                _blocking_client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=15
                )
    return _blocking_client


class _LoopThread:
    """One asyncio loop per process, in a daemon thread, for the async channel layer.

    `async_to_sync` would start a fresh loop per call, and channels_redis ties its Redis
    connections to a loop: every write would reconnect. Started lazily, so it never exists
    before Gunicorn forks its workers.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def submit(self, coro) -> Future:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="channel-layer", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop)


_loop_thread = _LoopThread()


def _count_failure() -> int:
    global failures
    with _failures_lock:
        failures += 1
        return failures


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def publish(topic: str, type_: str, actor: int | None, data: dict) -> dict | None:
    """Publish one event now; return it (with its id), or None if Redis refused it."""
    envelope = {"topic": topic, "type": type_, "ts": now_iso(), "actor": actor, "data": data}
    try:
        if not redis_breaker.allows():
            raise redis.ConnectionError("Redis marked down after a recent failure (breaker open)")
        event_id = redis_client().xadd(
            f"events:{topic}",
            {"event": json.dumps(envelope, separators=(",", ":"))},
            maxlen=settings.EVENT_STREAM_MAXLEN,
            approximate=True,  # MAXLEN ~ : trims whole nodes, O(1) amortised
        )
    except redis.RedisError as exc:
        redis_breaker.trip(ping_redis)
        count = _count_failure()
        log.error("event not published (stream): %s %s: %s [failures=%d]", topic, type_, exc, count)
        return None
    event = {"id": event_id, **envelope}
    future = None
    try:
        layer = get_channel_layer()
        future = _loop_thread.submit(layer.group_send(topic, {"type": "rt.event", "event": event}))
        future.result(timeout=2)
    except Exception as exc:
        if future is not None:
            future.cancel()  # don't leave a send retrying in the loop after we gave up
        # The event is in the stream: subscribers catch up from there on their next read.
        count = _count_failure()
        log.error(
            "event not pushed live: %s %s id=%s: %r [failures=%d]",
            topic,
            type_,
            event_id,
            exc,
            count,
        )
    return event


def publish_on_commit(topic: str, type_: str, actor: int | None, data: dict) -> None:
    """Publish once the surrounding transaction commits; nothing is sent on rollback."""
    transaction.on_commit(lambda: publish(topic, type_, actor, data), robust=True)
