"""Server-Sent Events: headers, live events, Last-Event-ID resume, resync, heartbeats."""

import asyncio

import httpx

from .conftest import Django, bearer, member_token, run
from .helpers import sse_events


def test_sse_errors_are_json_with_the_right_status(server, room):
    url = server.url + "/rt/sse"
    token = member_token(1, room)
    cases = {
        "no token": (httpx.get(url, params={"topics": f"room.{room}"}), 401, "unauthorized"),
        "forbidden": (
            httpx.get(url, params={"topics": f"room.{room + 1}"}, headers=bearer(token)),
            403,
            "forbidden",
        ),
        "bad topic": (
            httpx.get(url, params={"topics": "rooms;drop"}, headers=bearer(token)),
            400,
            "invalid_topic",
        ),
        "bad id": (
            httpx.get(
                url,
                params={"topics": f"room.{room}"},
                headers={**bearer(token), "Last-Event-ID": "yesterday"},
            ),
            400,
            "invalid_last_event_id",
        ),
    }
    for name, (resp, status, code) in cases.items():
        assert resp.status_code == status, name
        assert resp.json()["error"]["code"] == code, name


def test_sse_live_then_resume_with_last_event_id(server, r, room):
    topic = f"room.{room}"
    headers = bearer(member_token(1, room))

    async def go():
        d = Django()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
            async with c.stream("GET", "/rt/sse", params={"topics": topic}, headers=headers) as s:
                assert s.headers["content-type"].startswith("text/event-stream")
                assert s.headers["x-accel-buffering"] == "no"
                assert s.headers["cache-control"] == "no-store"
                lines = s.aiter_lines()
                await asyncio.sleep(0.3)  # subscribed
                first = await d.publish(topic, 5)
                got = await sse_events(lines, 5)
            missed = await d.publish(topic, 4)  # while disconnected
            resume = {**headers, "Last-Event-ID": got[-1]["id"]}
            async with c.stream("GET", "/rt/sse", params={"topics": topic}, headers=resume) as s:
                lines = s.aiter_lines()
                replayed = await sse_events(lines, 4)
                live = await d.publish(topic, 2)
                after = await sse_events(lines, 2)
        await d.close()
        return first, got, missed, replayed, live, after

    first, got, missed, replayed, live, after = run(go())
    assert [e["id"] for e in got] == first
    assert all(e["data"]["id"] == e["id"] for e in got)  # id: is the event id
    assert [e["id"] for e in replayed] == missed
    assert [e["id"] for e in after] == live


def test_sse_a_write_made_as_soon_as_the_stream_opens_is_delivered(server, room):
    """EventSource fires `open` on the response headers: an event published then, on a
    topic nobody followed before, must still arrive (the subscription precedes the headers)."""

    async def go():
        d = Django()
        got = []
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
            for i in range(10):
                topic = f"room.{room + i}"
                headers = bearer(member_token(1, room + i))
                params = {"topics": topic}
                async with c.stream("GET", "/rt/sse", params=params, headers=headers) as s:
                    assert s.status_code == 200
                    [sent] = await d.publish(topic, 1)  # before reading a byte of the body
                    [event] = await asyncio.wait_for(sse_events(s.aiter_lines(), 1), 5)
                    got.append((sent, event["id"]))
        await d.close()
        return got

    for sent, received in run(go()):
        assert received == sent


def test_sse_resync_beyond_the_stream(server, r, room):
    topic = f"room.{room}"
    headers = bearer(member_token(1, room))

    async def go():
        d = Django()
        old = await d.publish(topic, 30, maxlen=10)
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as c,
            c.stream(
                "GET", "/rt/sse", params={"topics": topic, "last_event_id": old[0]}, headers=headers
            ) as s,
        ):
            [resync] = await sse_events(s.aiter_lines(), 1)
        await d.close()
        return old, resync

    old, resync = run(go())
    assert resync["event"] == "resync"
    assert resync["data"]["topic"] == topic
    assert resync["id"] == old[-1]  # a reconnect after refetching resumes from here


def test_sse_heartbeat_keeps_an_idle_stream_alive(server, room):
    headers = bearer(member_token(1, room))

    async def go():
        seen = []
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as c,
            c.stream("GET", "/rt/sse", params={"topics": f"room.{room}"}, headers=headers) as s,
        ):
            async with asyncio.timeout(3.5):
                async for line in s.aiter_lines():
                    seen.append(line)
                    if seen.count(": heartbeat") >= 2:
                        break
        return seen

    seen = run(go())
    assert seen[0] == "retry: 2000"
    assert seen.count(": heartbeat") >= 2  # SSE_HEARTBEAT=1 in the tests; 15 s by default
