"""Publish events after the database commit (docs/protocol.md, "Events").

1. XADD to the topic's bounded stream `events:<topic>`: the entry id becomes the event id,
   and readers replay from it.
2. PUBLISH on `<EVENT_CHANNEL_PREFIX>__group__<topic>` the bytes channels_redis' PubSub layer
   writes for group_send(topic, {"type": "rt.event", "event": <envelope>}) with its JSON
   serializer: the real-time service (and any Channels consumer) reads them.

A write never fails because Redis is down: the failure is logged and counted, the data is
already committed, and clients that missed the event resync from the API.
"""

import json
import logging
import threading
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import transaction

from core import metrics
from core.breaker import ping_redis, redis_breaker
from core.logging import request_id

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


def _count_failure() -> int:
    global failures
    with _failures_lock:
        failures += 1
        return failures


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def publish(topic: str, type_: str, actor: int | None, data: dict) -> dict | None:
    """Publish one event now; return it (with its id), or None if Redis refused it."""
    envelope = {
        "topic": topic,
        "type": type_,
        "ts": now_iso(),
        "actor": actor,
        "data": data,
        # The write's X-Request-ID: finds its deliveries in asgi's log (docs/protocol.md).
        "request_id": request_id.get(),
    }
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
        metrics.EVENT_FAILURES.labels("stream").inc()
        log.error("event not published (stream): %s %s: %s [failures=%d]", topic, type_, exc, count)
        return None
    metrics.EVENTS.inc()
    event = {"id": event_id, **envelope}
    try:
        redis_client().publish(live_channel(topic), live_message(event))
    except redis.RedisError as exc:
        # The event is in the stream: subscribers catch up from there on their next read.
        count = _count_failure()
        metrics.EVENT_FAILURES.labels("live").inc()
        log.error(
            "event not pushed live: %s %s id=%s: %r [failures=%d]",
            topic,
            type_,
            event_id,
            exc,
            count,
        )
    return event


def live_channel(topic: str) -> str:
    return f"{settings.EVENT_CHANNEL_PREFIX}__group__{topic}"


def live_message(event: dict) -> str:
    # json.dumps with its default separators: exactly what channels_redis' JSON serializer
    # writes (no random prefix on its PubSub layer).
    return json.dumps({"type": "rt.event", "event": event})


def publish_on_commit(topic: str, type_: str, actor: int | None, data: dict) -> None:
    """Publish once the surrounding transaction commits; nothing is sent on rollback."""
    transaction.on_commit(lambda: publish(topic, type_, actor, data), robust=True)
