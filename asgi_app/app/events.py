"""The event contract: stream entries, envelopes and the live channel (docs/protocol.md)."""

import json
import re
from datetime import UTC, datetime
from functools import cached_property

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from .access import REVOKED
from .logs import request_id

ID_RE = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
StreamId = tuple[int, int]
ZERO: StreamId = (0, 0)


def parse_id(value: str) -> StreamId:
    """'1732413600000-0' -> (1732413600000, 0); ValueError for anything else."""
    m = ID_RE.match(value.strip())
    if not m:
        raise ValueError(f"not an event id: {value!r}")
    return int(m.group(1)), int(m.group(2) or 0)


def format_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def stream_key(topic: str) -> str:
    return f"events:{topic}"


def channel_prefix(prefix: str) -> str:
    # What channels_redis' RedisPubSubChannelLayer publishes group_send to: EVENT_CHANNEL_PREFIX.
    return f"{prefix}__group__"


def group_channel(prefix: str, topic: str) -> str:
    return channel_prefix(prefix) + topic


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class Event:
    """One stream entry. Frames are built once per process and shared by every connection."""

    __slots__ = ("__dict__", "body", "id", "sid", "topic")

    def __init__(self, topic: str, entry_id: str, fields: dict[str, str]):
        self.topic = topic
        self.id = entry_id
        self.sid = parse_id(entry_id)
        body = json.loads(fields.get("event", "{}"))
        if not isinstance(body, dict):
            body = {"data": body}
        body.pop("id", None)
        self.body = body

    def revokes(self, user_id: int) -> bool:
        """Is this Django's notice that `user_id` may no longer read the topic?"""
        data = self.body.get("data")
        return (
            self.body.get("type") == REVOKED
            and isinstance(data, dict)
            and data.get("user") == user_id
        )

    @cached_property
    def envelope_json(self) -> str:
        return dumps({"id": self.id, **self.body})

    @cached_property
    def ws_frame(self) -> str:
        return f'{{"type":"event","event":{self.envelope_json}}}'

    @cached_property
    def sse_frame(self) -> str:
        return f"id: {self.id}\ndata: {self.envelope_json}\n\n"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def publish(
    redis: Redis, prefix: str, topic: str, type_: str, actor: int | None, data: dict, maxlen: int
):
    """Publish an event exactly as Django does (core/events.py): XADD to the stream, then
    PUBLISH the JSON bytes channels_redis' JSON serializer writes for
    group_send(topic, {"type": "rt.event", "event": envelope}), so Channels consumers read it.
    """
    body = {
        "topic": topic,
        "type": type_,
        "ts": now_iso(),
        "actor": actor,
        "data": data,
        "request_id": request_id.get(),  # the request that caused it, if any
    }
    entry_id = await redis.xadd(
        stream_key(topic), {"event": dumps(body)}, maxlen=maxlen, approximate=True
    )
    message = {"type": "rt.event", "event": {"id": entry_id, **body}}
    await redis.publish(group_channel(prefix, topic), json.dumps(message))
    return entry_id


async def stream_info(redis: Redis, topic: str) -> tuple[StreamId, StreamId] | None:
    """(last generated id, horizon) of a topic's stream, or None if it has none yet.

    The horizon is the oldest id still held once MAXLEN trimming removed something: a
    client whose last id is older may have missed events the stream no longer has.
    (Redis' max-deleted-entry-id counts XDEL only, not trimming, so it cannot tell.)
    """
    try:
        info = await redis.xinfo_stream(stream_key(topic))
    except ResponseError:
        return None
    last = parse_id(info["last-generated-id"])
    horizon = ZERO
    if int(info.get("entries-added", 0)) > int(info["length"]):
        first = info.get("first-entry")
        horizon = parse_id(first[0]) if first else last
    return last, horizon


async def read_after(
    redis: Redis, topic: str, after: StreamId, count: int, until: str = "+"
) -> tuple[list[Event], StreamId, int]:
    """Entries with id > after (exclusive), oldest first; the last id read; entries read."""
    entries = await redis.xrange(
        stream_key(topic), min=f"({format_id(after)}", max=until, count=count
    )
    out, last = [], after
    for entry_id, fields in entries:
        last = parse_id(entry_id)
        try:
            out.append(Event(topic, entry_id, fields))
        except ValueError:
            continue  # a malformed entry is skipped, never crashes every subscriber
    return out, last, len(entries)
