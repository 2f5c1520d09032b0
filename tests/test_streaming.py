"""Long streaming through nginx (the "AI streaming responses" case): Django's
StreamingHttpResponse under Gunicorn and FastAPI's StreamingResponse under Uvicorn send each
token as it is made, and a client that leaves mid-stream stops the work on the server."""

import json
import time

import pytest

from test_observability import log_lines

# (path, service): the sync side needs the session, the async side a real-time token.
SIDES = [("/api/stream-demo", "wsgi"), ("/rt/stream-demo", "asgi")]


@pytest.fixture
def streamer(own_topic):
    """A client with alice's session and her real-time token (Bearer) for both sides."""
    alice, _, token = own_topic
    alice.headers["Authorization"] = f"Bearer {token}"
    return alice


def tokens(response):
    """The stream's tokens (`data:` lines; the last event, `end`, has none), each with the time
    it arrived."""
    for line in response.iter_lines():
        if line.startswith('data: {"'):
            yield time.monotonic(), json.loads(line.removeprefix("data: "))


@pytest.mark.parametrize(("path", "service"), SIDES)
def test_each_token_reaches_the_client_when_it_is_made(streamer, path, service):
    with streamer.stream("GET", path, params={"tokens": 10, "ms": 100}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        got = list(tokens(r))
    assert [data["i"] for _, data in got] == list(range(10))
    # Nine 100 ms pauses on the server: a buffering proxy would deliver them all at the end.
    assert got[-1][0] - got[0][0] >= 0.45


@pytest.mark.parametrize(("path", "service"), SIDES)
def test_a_client_that_leaves_mid_stream_stops_the_work(streamer, docker_client, path, service):
    """200 tokens 50 ms apart (10 s); the client reads 3 and hangs up. The server's log line
    for that request says how many tokens it made: a few, not 200."""
    with streamer.stream("GET", path, params={"tokens": 200, "ms": 50}) as r:
        assert r.status_code == 200, r.read()
        rid = r.headers["x-request-id"]
        received = 0
        for _ in tokens(r):
            received += 1
            if received == 3:
                break
    # The stream would have run 10 s; its end is logged at once when the server stops early.
    deadline = time.monotonic() + 30
    while True:
        ended = [
            entry
            for line in log_lines(docker_client, service)
            if f'"{rid}"' in line and (entry := json.loads(line))["msg"] == "stream ended"
        ]
        if ended or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ended, f"no 'stream ended' line for request {rid} in the {service} logs"
    assert ended[0]["complete"] is False
    # Made after the hang-up: what was in flight, and the write that found the socket closed.
    assert ended[0]["tokens"] <= received + 5, ended[0]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/api/stream-demo", {}, 401),
        ("/rt/stream-demo", {}, 401),
        ("/api/stream-demo", {"tokens": 201}, 422),
        ("/rt/stream-demo", {"ms": 101}, 422),
    ],
)
def test_a_refused_stream_is_a_json_error(client, login, own_topic, path, query, status):
    if status != 401:
        client = login("alice")
        client.headers["Authorization"] = f"Bearer {own_topic[2]}"
    # What a browser's EventSource asks for; errors still come as the kit's JSON body.
    r = client.get(path, params=query, headers={"Accept": "text/event-stream"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] in ("unauthorized", "validation_failed")
