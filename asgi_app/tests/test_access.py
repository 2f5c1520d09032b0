"""Access per subscription from Django's access sets, and revocation on every process."""

import asyncio
import json

import httpx

from .conftest import Django, Server, bearer, grant, make_token, run
from .helpers import card_events, connect, nothing_more, recv, recv_type, subscribe


def test_revoked_member_loses_the_feed_at_once_on_every_process(server, room):
    """Bob reads the topic by WebSocket on one process and by SSE on another; Django revokes
    his access: both his subscriptions end before the next event, Alice's go on."""
    topic = f"room.{room}"
    grant(1, topic)
    grant(2, topic)
    other = Server()

    bob_sse = bearer(make_token(2))

    async def go():
        d = Django()
        alice = await connect(server, make_token(1))
        await subscribe(alice, topic)
        bob = await connect(server, make_token(2))
        await subscribe(bob, topic)
        async with (
            httpx.AsyncClient(base_url=other.url, timeout=10) as c,
            c.stream("GET", "/rt/sse", params={"topics": topic}, headers=bob_sse) as s,
        ):
            assert s.status_code == 200
            lines = s.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            await asyncio.sleep(0.3)  # attached
            await d.revoke(2, topic)
            await d.publish(topic, 1)
            sse_tail = []
            async with asyncio.timeout(5):
                async for line in lines:  # ends: every topic of the stream was revoked
                    sse_tail.append(line)
        unsubscribed = await recv_type(bob, "unsubscribed")
        late = await nothing_more(bob)
        await bob.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        again = await recv_type(bob, "error")
        alice_got = await card_events(alice, 1)
        await d.close()
        await alice.close()
        await bob.close()
        return unsubscribed, late, again, alice_got, sse_tail

    try:
        unsubscribed, late, again, alice_got, sse_tail = run(go())
    finally:
        other.stop()
    assert unsubscribed == {"type": "unsubscribed", "topics": [topic], "reason": "revoked"}
    assert late == []
    assert again["code"] == "forbidden"
    assert len(alice_got) == 1
    assert "event: unsubscribed" in sse_tail
    assert not any("card.updated" in line for line in sse_tail)


def test_access_is_checked_per_subscription(server, room):
    grant(1, f"room.{room}")
    token = make_token(1)

    async def go():
        ws = await connect(server, token)
        await ws.send(json.dumps({"type": "subscribe", "topics": [f"room.{room + 1}"]}))
        refused = await recv(ws)
        grant(1, f"room.{room + 1}")  # granted later: the next subscribe passes
        ok = await subscribe(ws, f"room.{room + 1}")
        await ws.close()
        return refused, ok

    refused, ok = run(go())
    assert refused["code"] == "forbidden"
    assert ok["topics"] == [f"room.{room + 1}"]


def test_without_access_sets_the_answer_is_retry_not_forbidden(server, r, room):
    """Redis lost the sets (flushed): clients are told to retry while Django rebuilds them."""
    token = make_token(1)

    async def go():
        ws = await connect(server, token)
        await ws.send(json.dumps({"type": "subscribe", "topics": [f"room.{room}"]}))
        msg = await recv(ws)
        await ws.close()
        return msg

    msg = run(go())
    assert msg["code"] == "unavailable"
    sse = httpx.get(
        server.url + "/rt/sse", params={"topics": f"room.{room}"}, headers=bearer(token)
    )
    assert sse.status_code == 503
    assert sse.json()["error"]["code"] == "unavailable"
