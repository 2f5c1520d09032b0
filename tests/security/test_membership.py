"""Issue 12, finding 2: one user must not be able to change another's real-time access.

Boards are shared by invitation (the invitee's consent), the answers never tell whether a
username exists, the real-time token does not grow with memberships, and a member who is
removed loses the live feed at once, on every asgi replica. (The example domain: boards.)
"""

import asyncio
import json
import secrets
import time

import httpx
import pytest
import websockets

from conftest import HTTPS_URL, WS_URL, insecure_tls

pytestmark = pytest.mark.timeout(120)


def call(c: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """One API call, waiting out nginx's per-IP API rate limit (429 + Retry-After)."""
    for _ in range(30):
        r = c.request(method, url, **kwargs)
        if r.status_code != 429 or "rate_limited" not in r.text:  # not the cap's 429
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))
    return r


def new_board(c: httpx.Client) -> int:
    r = call(c, "POST", "/api/boards/", json={"name": f"sec-{secrets.token_hex(4)}"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def invite(c: httpx.Client, board: int, username: str) -> httpx.Response:
    return call(c, "POST", f"/api/boards/{board}/invitations/", json={"username": username})


def accept_all(bob: httpx.Client, board: int) -> None:
    waiting = call(bob, "GET", "/api/invitations/").json()["results"]
    [mine] = [i for i in waiting if i["board"]["id"] == board]
    r = call(bob, "POST", f"/api/invitations/{mine['id']}/accept")
    assert r.status_code == 200, r.text


def test_answers_never_tell_whether_a_username_exists(login):
    alice = login("alice")
    board = new_board(alice)
    real = invite(alice, board, "bob")
    made_up = invite(alice, board, f"nobody-{secrets.token_hex(6)}")
    assert real.status_code == made_up.status_code == 202
    assert real.json() == made_up.json()
    adds = [
        call(alice, "PATCH", f"/api/boards/{board}/", json={"members": [name]})
        for name in ("bob", f"nobody-{secrets.token_hex(6)}")
    ]
    assert [a.status_code for a in adds] == [422, 422]
    assert adds[0].json() == adds[1].json()
    assert call(alice, "GET", f"/api/boards/{board}/").json()["members"] == []


def test_membership_spam_cannot_change_anothers_token_or_access(login):
    alice, bob = login("alice"), login("bob")
    before = call(bob, "POST", "/api/realtime/token").json()["token"]
    boards = [new_board(alice) for _ in range(25)]
    for board in boards:
        assert invite(alice, board, "bob").status_code == 202
    after = call(bob, "POST", "/api/realtime/token").json()["token"]
    assert len(after) == len(before) < 1024

    async def try_subscribe() -> dict:
        headers = {"Authorization": f"Bearer {after}"}
        async with websockets.connect(WS_URL, ssl=insecure_tls(), additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topics": [f"board.{boards[0]}"]}))
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    refused = asyncio.run(try_subscribe())
    assert refused["type"] == "error"
    assert refused["code"] == "forbidden"


def test_removed_member_loses_the_live_feed_at_once_on_every_replica(login, containers):
    assert len(containers("asgi")) >= 2, "the test stack runs asgi with 2 replicas"
    alice, bob = login("alice"), login("bob")
    board = new_board(alice)
    topic = f"board.{board}"
    assert invite(alice, board, "bob").status_code == 202
    accept_all(bob, board)
    alice_token = call(alice, "POST", "/api/realtime/token").json()["token"]
    bob_token = call(bob, "POST", "/api/realtime/token").json()["token"]

    async def subscribed(token: str):
        headers = {"Authorization": f"Bearer {token}"}
        ws = await websockets.connect(WS_URL, ssl=insecure_tls(), additional_headers=headers)
        await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "subscribed":
            pass
        return ws

    async def messages(ws, until_type: str, wait: float) -> list[dict]:
        got = []
        try:
            async with asyncio.timeout(wait):
                async for raw in ws:
                    got.append(json.loads(raw))
                    if got[-1]["type"] == until_type:
                        break
        except TimeoutError:
            pass
        return got

    async def sse_lines(token: str, out: list[str], open_: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(base_url=HTTPS_URL, verify=False, timeout=30) as c,  # noqa: S501
            c.stream("GET", "/rt/sse", params={"topics": topic}, headers=headers) as s,
        ):
            assert s.status_code == 200
            async for line in s.aiter_lines():
                open_.set()
                out.append(line)  # ends when the last topic of the stream is revoked

    async def go():
        alice_ws = await subscribed(alice_token)
        bob_sockets = []
        for _ in range(4):  # nginx spreads them over the replicas
            bob_sockets.append(await subscribed(bob_token))
            await asyncio.sleep(0.2)  # within nginx's handshake rate
        sse_out, sse_open = [], asyncio.Event()
        sse = asyncio.create_task(sse_lines(bob_token, sse_out, sse_open))
        await asyncio.wait_for(sse_open.wait(), 10)
        await asyncio.sleep(0.5)
        started = time.monotonic()
        removed = await asyncio.to_thread(
            call, alice, "PATCH", f"/api/boards/{board}/", json={"members": []}
        )
        assert removed.status_code == 200, removed.text
        revoked = await asyncio.gather(*(messages(ws, "unsubscribed", 10) for ws in bob_sockets))
        elapsed = time.monotonic() - started
        await asyncio.wait_for(sse, 10)
        card = await asyncio.to_thread(
            call, alice, "POST", f"/api/boards/{board}/cards/", json={"title": "after"}
        )
        assert card.status_code == 201, card.text
        alice_saw = await messages(alice_ws, "__none__", 3)
        bob_saw = await asyncio.gather(*(messages(ws, "__none__", 1) for ws in bob_sockets))
        await bob_sockets[0].send(json.dumps({"type": "subscribe", "topics": [topic]}))
        again = await messages(bob_sockets[0], "error", 5)
        for ws in (alice_ws, *bob_sockets):
            await ws.close()
        return revoked, elapsed, sse_out, alice_saw, bob_saw, again

    revoked, elapsed, sse_out, alice_saw, bob_saw, again = asyncio.run(go())
    for got in revoked:
        assert got[-1] == {"type": "unsubscribed", "topics": [topic], "reason": "revoked"}, got
    assert elapsed < 5
    assert "event: unsubscribed" in sse_out
    types = [m["event"]["type"] for m in alice_saw if m["type"] == "event"]
    assert "card.created" in types  # the board goes on for its owner
    for got in bob_saw:
        assert not [m for m in got if m["type"] == "event"], got
    assert again[-1]["code"] == "forbidden"
