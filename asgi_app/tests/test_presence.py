"""Presence per room: who is connected, in Redis with expiry; events both ways."""

import asyncio
import json
import time

from .conftest import REDIS_URL, member_token, run
from .helpers import connect, recv_type, subscribe


async def presence_event(ws, type_: str, user: int, wait: float = 5.0) -> dict:
    async with asyncio.timeout(wait):
        while True:
            ev = (await recv_type(ws, "event", wait))["event"]
            if ev["type"] == type_ and ev["data"]["user"] == user:
                return ev


def test_join_list_and_leave(server, r, room):
    topic = f"room.{room}"

    async def go():
        alice = await connect(server, member_token(1, room))
        await subscribe(alice, topic)
        bob = await connect(server, member_token(2, room))
        bob_sub = await subscribe(bob, topic)
        joined = await presence_event(alice, "presence.joined", 2)
        await bob.close()
        left = await presence_event(alice, "presence.left", 2)
        await alice.close()
        return bob_sub, joined, left

    bob_sub, joined, left = run(go())
    assert bob_sub["presence"][topic] == [1, 2]
    assert joined["data"] == {"user": 2, "name": "user2"}
    assert joined["actor"] == 2
    assert left["topic"] == topic
    assert r.zscore(f"presence:{topic}", "2") is None


def test_crashed_replicas_users_expire(server, r, room):
    """A replica that died cannot say goodbye: its users' entries expire, a live process
    removes them and announces presence.left once."""
    topic = f"room.{room}"
    r.zadd(f"presence:{topic}", {"99": time.time() - 1, "98": time.time() + 60})

    async def go():
        alice = await connect(server, member_token(1, room))
        sub = await subscribe(alice, topic)
        left = await presence_event(alice, "presence.left", 99)
        await alice.close()
        return sub, left

    sub, left = run(go())
    assert sub["presence"][topic] == [1, 98]  # 99 expired: not listed
    assert left["data"] == {"user": 99}
    assert r.zscore(f"presence:{topic}", "99") is None
    assert r.zscore(f"presence:{topic}", "98") is not None  # not expired: kept


def test_own_presence_refreshes_and_survives_the_ttl(server, r, room):
    topic = f"room.{room}"

    async def go():
        alice = await connect(server, member_token(1, room))
        await subscribe(alice, topic)
        await asyncio.sleep(3)  # twice PRESENCE_TTL (1.5 s in the tests)
        score = r.zscore(f"presence:{topic}", "1")
        await alice.close()
        return score

    score = run(go())
    assert score is not None
    assert score > time.time()


def test_presence_events_are_readable_by_a_channels_consumer(server, r, room):
    """What this service publishes, a Django Channels consumer receives (the same layer)."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    topic = f"room.{room}"

    async def go():
        layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], serializer_format="json")
        channel = await layer.new_channel()
        await layer.group_add(topic, channel)
        alice = await connect(server, member_token(1, room))
        await subscribe(alice, topic)
        async with asyncio.timeout(5):
            message = await layer.receive(channel)
        await alice.close()
        await layer.flush()
        return message

    message = run(go())
    assert message["type"] == "rt.event"
    event = message["event"]
    assert event["type"] == "presence.joined"
    assert event["topic"] == topic
    [(entry_id, fields)] = r.xrange(f"events:{topic}", count=1)
    assert event["id"] == entry_id  # also in the stream, under the same id
    assert json.loads(fields["event"])["type"] == "presence.joined"


def test_live_message_bytes_are_what_channels_redis_writes():
    """Django and this service PUBLISH json.dumps({"type": "rt.event", "event": ...}) (default
    separators): the bytes channels_redis' PubSub layer writes with its JSON serializer, so a
    Channels consumer reads them, and they read what a Channels producer sends."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    message = {"type": "rt.event", "event": {"id": "1-0", "topic": "room.1", "data": {"é": 1}}}
    layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], serializer_format="json")
    assert layer._serializer.serialize(message) == json.dumps(message).encode()
