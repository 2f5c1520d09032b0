"""The WebSocket protocol: auth, topics, bad frames, limits, live delivery and resume."""

import asyncio
import contextlib
import json
import socket
import time

import websockets

from app.realtime import same_origin

from .conftest import Django, bearer, make_token, member_token, run
from .helpers import (
    card_events,
    closed_code,
    connect,
    nothing_more,
    recv,
    recv_type,
    subscribe,
)


def test_auth_failures_close_with_1008(server, room):
    async def go():
        results = {}
        cases = {
            "none": None,
            "expired": member_token(1, room, ttl=-60),
            "forged": member_token(1, room, key="another-signing-key-0123456789abcdef"),
            "audience": member_token(1, room, aud="other"),
            "garbage": "not.a.jwt",
        }
        for name, token in cases.items():
            ws = await connect(server, token)
            results[name] = await closed_code(ws)
        return results

    got = run(go())
    assert got["none"] == (1008, "authentication required")
    assert got["expired"] == (1008, "token expired")
    assert got["forged"] == (1008, "invalid token")
    assert got["audience"] == (1008, "invalid token")
    assert got["garbage"] == (1008, "invalid token")


def test_token_cookie_is_accepted_and_cross_origin_refused(server, room):
    async def go():
        cookie = {"Cookie": f"rt_token={member_token(1, room)}"}
        ws = await websockets.connect(
            server.ws_url, additional_headers=cookie, origin=f"http://127.0.0.1:{server.port}"
        )
        sub = await subscribe(ws, f"room.{room}")
        await ws.close()
        evil = await websockets.connect(
            server.ws_url, additional_headers=cookie, origin="https://evil.example"
        )
        return sub, await closed_code(evil)

    sub, refused = run(go())
    assert sub["topics"] == [f"room.{room}"]
    assert refused == (1008, "cross-origin WebSocket refused")


def test_forbidden_topic_is_refused_and_connection_stays(server, room):
    async def go():
        ws = await connect(server, member_token(1, room))
        await ws.send(json.dumps({"type": "subscribe", "topics": [f"room.{room + 1}"]}))
        err = await recv(ws)
        await ws.send(json.dumps({"type": "ping", "id": "p1"}))
        pong = await recv(ws)
        await ws.close()
        return err, pong

    err, pong = run(go())
    assert err["type"] == "error"
    assert err["code"] == "forbidden"
    assert err["topics"] == [f"room.{room + 1}"]
    assert pong == {"type": "pong", "id": "p1"}


def test_bad_frames_close_with_the_right_codes(server, room):
    token = member_token(1, room)

    async def after(send) -> tuple[int, str]:
        ws = await connect(server, token)
        await send(ws)
        return await closed_code(ws)

    async def go():
        return {
            "binary": await after(lambda ws: ws.send(b"\x00\x01")),
            "not json": await after(lambda ws: ws.send("{nope")),
            "oversize": await after(
                lambda ws: ws.send(json.dumps({"type": "ping", "id": "x" * 2000}))
            ),
        }

    got = run(go())
    assert got["binary"][0] == 1003
    assert got["not json"] == (1007, "invalid JSON")
    assert got["oversize"][0] == 1009


def test_frame_over_the_protocol_limit_gets_1009_not_a_reset(server, room):
    """4 MiB is far over --ws-max-size: the server fails the connection while the client is
    still sending; its close frame must arrive anyway (the socket is drained, not reset)."""
    token = member_token(1, room)

    async def once() -> tuple[int, str] | None:
        ws = await connect(server, token)
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send("x" * (4 * 1024 * 1024))
        return await closed_code(ws, wait=15)

    async def go():
        return [await once() for _ in range(3)]

    for got in run(go()):
        assert got is not None, "no close frame: the connection was reset"
        assert got[0] == 1009


def test_origin_must_be_this_site_scheme_host_and_port():
    site = {"host": "example.com"}
    assert same_origin(site, "wss")  # a program: no Origin, a token instead
    assert same_origin({**site, "origin": "https://example.com"}, "wss")
    assert same_origin({**site, "origin": "https://example.com:443"}, "wss")
    assert not same_origin({**site, "origin": "http://example.com"}, "wss")
    assert not same_origin({**site, "origin": "https://example.com:8443"}, "wss")
    assert not same_origin({**site, "origin": "https://evil.example"}, "wss")
    assert not same_origin({**site, "origin": "null"}, "wss")
    on_port = {"host": "127.0.0.1:18443", "origin": "https://127.0.0.1:18443"}
    assert same_origin(on_port, "wss")
    assert not same_origin({**on_port, "origin": "http://127.0.0.1:18443"}, "wss")
    assert not same_origin({**on_port, "host": "127.0.0.1:bad"}, "wss")


def test_invalid_message_gets_an_error_and_loses_nothing(server, room):
    async def go():
        ws = await connect(server, member_token(1, room))
        await ws.send(json.dumps({"type": "subscribe", "topics": ["rooms.x"]}))
        err = await recv(ws)
        await ws.send(json.dumps({"type": "dance"}))
        err2 = await recv(ws)
        sub = await subscribe(ws, f"room.{room}")
        await ws.close()
        return err, err2, sub

    err, err2, sub = run(go())
    assert err["code"] == "invalid_message"
    assert any("topics" in k for k in err["fields"])
    assert err2["code"] == "invalid_message"
    assert sub["type"] == "subscribed"


def test_message_rate_limit(server, room):
    async def go():
        ws = await connect(server, member_token(1, room))
        for i in range(40):  # burst is 10, then 5/s; 5 refused in a row close it
            try:
                await ws.send(json.dumps({"type": "ping", "id": i}))
            except websockets.ConnectionClosed:
                break
        seen = []
        try:
            async with asyncio.timeout(5):
                while True:
                    seen.append(json.loads(await ws.recv()))
        except websockets.ConnectionClosed as e:
            return seen, (e.rcvd.code, e.rcvd.reason)

    seen, closed = run(go())
    assert sum(m["type"] == "pong" for m in seen) >= 10
    assert any(m.get("code") == "rate_limited" for m in seen)
    assert closed == (1008, "rate limit exceeded")


def test_django_event_reaches_subscriber_through_channels_layer(server, r, room):
    topic = f"room.{room}"

    async def go():
        ws = await connect(server, member_token(1, room))
        await subscribe(ws, topic)
        d = Django()
        [eid] = await d.publish(topic)
        while (msg := await recv_type(ws, "event"))["event"]["type"].startswith("presence."):
            pass  # our own presence.joined comes first
        await d.close()
        await ws.close()
        return eid, msg

    eid, msg = run(go())
    ev = msg["event"]
    assert ev["id"] == eid
    assert ev["topic"] == topic
    assert ev["type"] == "card.updated"
    assert ev["actor"] == 7
    assert ev["data"]["version"] == 1


def test_out_of_order_publishes_arrive_once_in_stream_order(server, r, room):
    """Two Django workers: A XADDs first but B publishes first. Order follows the stream."""
    topic = f"room.{room}"

    async def go():
        ws = await connect(server, member_token(1, room))
        await subscribe(ws, topic)
        d = Django()
        body = {"topic": topic, "type": "card.created", "ts": "t", "actor": 1, "data": {}}
        a = r.xadd(f"events:{topic}", {"event": json.dumps(body)})
        b = r.xadd(f"events:{topic}", {"event": json.dumps(body)})
        await d.layer.group_send(topic, {"type": "rt.event", "event": {"id": b, **body}})
        await d.layer.group_send(topic, {"type": "rt.event", "event": {"id": a, **body}})
        got = await card_events(ws, 2)
        extra = await nothing_more(ws)
        await d.close()
        await ws.close()
        return [a, b], got, extra

    sent, got, extra = run(go())
    assert got == sent
    assert extra == []


def test_resume_after_reconnect_gets_every_event_exactly_once(server, r, room):
    topic = f"room.{room}"
    token = member_token(1, room)

    async def go():
        d = Django()
        ws = await connect(server, token)
        await subscribe(ws, topic)
        first = await d.publish(topic, 20)
        got = await card_events(ws, 10)  # the client drops after 10 of them
        await ws.close()
        second = await d.publish(topic, 15)  # published while it is away
        ws = await connect(server, token)
        sub = await subscribe(ws, topic, last_event_id=got[-1])
        third_task = asyncio.create_task(d.publish(topic, 5))  # live, during the replay
        rest = await card_events(ws, 30)
        third = await third_task
        extra = await nothing_more(ws)
        await ws.close()
        await d.close()
        return first + second + third, got + rest, extra, sub

    sent, got, extra, sub = run(go())
    assert sub["type"] == "subscribed"
    assert got == sent  # every event, once, in order
    assert extra == []


def test_resume_beyond_the_stream_gets_resync(server, r, room):
    topic = f"room.{room}"

    async def go():
        d = Django()
        old = await d.publish(topic, 30, maxlen=10)  # trimmed to the last 10
        ws = await connect(server, member_token(1, room))
        await subscribe(ws, topic, last_event_id=old[2])
        resync = await recv_type(ws, "resync")
        new = await d.publish(topic, 2, maxlen=10)
        live = await card_events(ws, 2)
        await ws.close()
        await d.close()
        return old, resync, new, live

    old, resync, new, live = run(go())
    assert resync["topic"] == topic
    assert resync["last_event_id"] == old[-1]
    assert live == new  # after the resync, live events continue


def test_slow_consumer_is_closed_and_resumes_without_loss(server, r, room):
    """A client that stops reading is closed with 1013 once its send queue (64) is full;
    the server never buffers without bound. It then resumes from its last id."""
    topic = f"room.{room}"
    token = member_token(1, room)

    async def go():
        d = Django()
        # A fixed, small receive buffer (no autotuning up to 32 MB) and no reading at all.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect(("127.0.0.1", server.port))
        ws = await websockets.connect(
            server.ws_url, sock=sock, additional_headers=bearer(token), max_size=2**24
        )
        await subscribe(ws, topic)
        ws.transport.pause_reading()  # the client stops reading: a stalled tab, a slow link
        # Publish until the server gives up on this client. The kernel's socket buffers
        # absorb a varying 4-12 MB first; the sign that the server's own bounded queue
        # overflowed is that it dropped the connection: the user's presence is gone.
        # Paced, so a server slowed by a busy machine still keeps up with the publisher:
        # 2000 events (60 MB) is far beyond the kernel's buffers plus a 64-frame queue.
        # The pads are random: compressible ones (permessage-deflate is negotiated) would
        # put ~100 bytes per event on the wire, and nothing would ever fill up.
        sent = []
        while r.zscore(f"presence:{topic}", "1") is not None:
            assert len(sent) < 2000, "the server kept buffering for a client that reads nothing"
            sent += await d.publish(topic, 50, size=30_000)
            await asyncio.sleep(0.1)
        ws.transport.resume_reading()
        got, code = [], None
        try:
            async with asyncio.timeout(30):
                while True:
                    msg = json.loads(await ws.recv())
                    if msg["type"] == "event" and msg["event"]["type"].startswith("card."):
                        got.append(msg["event"]["id"])
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
        except TimeoutError:
            raise AssertionError(f"not closed; got {len(got)} of {len(sent)} events") from None
        ws2 = await connect(server, token, max_size=2**24)
        await subscribe(ws2, topic, last_event_id=got[-1])
        rest = await card_events(ws2, len(sent) - len(got), wait=30)
        await ws2.close()
        await d.close()
        return sent, got, code, rest

    sent, got, code, rest = run(go())
    assert code == 1013
    assert 0 < len(got) < len(sent)
    assert got + rest == sent


def test_token_expiry_closes_unless_renewed(server, room):
    """A connection lives as long as its token: at `exp` it is closed with 1008, unless the
    client sent a fresh token for the same user."""
    topic = f"room.{room}"

    async def go():
        short = await connect(server, member_token(1, room, ttl=2))
        await subscribe(short, topic)
        renewed = await connect(server, member_token(1, room, ttl=2))
        await subscribe(renewed, topic)
        await renewed.send(json.dumps({"type": "auth", "token": make_token(1, ttl=300)}))
        authenticated = await recv_type(renewed, "authenticated")
        expired = await closed_code(short, wait=6)
        await renewed.send(json.dumps({"type": "ping", "id": 1}))
        pong = await recv_type(renewed, "pong")
        await renewed.close()
        return expired, authenticated, pong

    expired, authenticated, pong = run(go())
    assert expired == (1008, "token expired")
    assert authenticated["expires_at"] > time.time() + 200
    assert pong["id"] == 1  # still open after the first token's expiry


def test_events_published_while_pubsub_reconnects_are_not_lost(server, r, room):
    """Redis Pub/Sub forgets messages sent while a subscriber is disconnected; the service
    re-subscribes and catches up from the stream, so the client misses nothing."""
    topic = f"room.{room}"

    async def go():
        d = Django()
        ws = await connect(server, member_token(1, room))
        await subscribe(ws, topic)
        await d.publish(topic, 1)
        await card_events(ws, 1)
        # Cut the test server's Pub/Sub connection: the subscriber on DB 15 (the stack's
        # own services use DB 0, and this test's publisher holds no subscription).
        ours = [c for c in r.client_list() if c["db"] == "15" and int(c.get("sub", 0)) > 0]
        for c in ours:
            r.client_kill_filter(_id=c["id"])
        # Published while the connection is down: the PUBLISH reaches nobody, and no later
        # event comes to ring the bell.
        during = await d.publish(topic, 1)
        got = await card_events(ws, 1, wait=5)
        await ws.close()
        await d.close()
        return during, got, len(ours)

    during, got, killed = run(go())
    assert killed == 1
    assert got == during
