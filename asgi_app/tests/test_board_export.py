"""The example's NDJSON export of a board's event history (app/routes/board_export.py)."""

import json

import httpx

from .conftest import Django, bearer, grant, make_token, run


def test_export_streams_the_whole_history_in_order(server, r, room):
    board = room  # an id no other test uses
    topic = f"board.{board}"

    async def publish():
        d = Django()
        ids = await d.publish(topic, 1203)
        await d.close()
        return ids

    ids = run(publish())
    grant(1, topic)
    with httpx.stream(
        "GET", f"{server.url}/rt/stream/boards/{board}/export", headers=bearer(make_token(1))
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in resp.iter_lines() if line]
    assert [e["id"] for e in lines] == ids
    assert lines[0]["topic"] == topic
    assert lines[0]["type"] == "card.updated"
    schema = httpx.get(server.url + "/rt/openapi.json").json()
    assert "/rt/stream/boards/{board_id}/export" in schema["paths"]


def test_export_needs_token_and_membership(server, room):
    board = room
    url = f"{server.url}/rt/stream/boards/{board}/export"
    grant(1, f"board.{board}")
    none = httpx.get(url)
    assert none.status_code == 401
    assert none.json()["error"]["code"] == "unauthorized"
    other = httpx.get(url, headers=bearer(make_token(2)))
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden"
    forged_token = make_token(1, key="another-signing-key-0123456789abcdef")
    forged = httpx.get(url, headers=bearer(forged_token))
    assert forged.status_code == 401
    assert forged.json()["error"]["message"] == "invalid token"
