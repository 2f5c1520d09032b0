"""The example's board API end to end: through nginx over HTTPS, against the scaled test stack,
and a card write reaching the board's WebSocket and SSE subscribers."""

import asyncio
import json
import re
import threading
import time
import uuid

import httpx
import pytest

from conftest import PASSWORD, new_client
from test_realtime import Subscriber, start, until

pytestmark = pytest.mark.timeout(60)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4e50000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def as_user(https_url):
    """as_user("alice") -> a logged-in client, one login per user for this module.

    nginx allows 10 logins a minute per address; this file logs each user in once. It also
    sends Origin, as browsers do on every unsafe request: over HTTPS Django's CSRF check wants
    Origin (or Referer) besides the token.
    """
    sessions = {}

    def make(name):
        if name not in sessions:
            client = new_client()
            response = client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
            assert response.status_code == 200, response.text
            client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
            client.headers["Origin"] = https_url
            sessions[name] = client
        return sessions[name]

    yield make
    for client in sessions.values():
        client.close()


@pytest.fixture
def alice_board(as_user):
    alice = as_user("alice")
    response = alice.post("/api/boards/", json={"name": f"e2e {uuid.uuid4().hex[:8]}"})
    assert response.status_code == 201, response.text
    board = response.json()
    yield alice, board
    alice.delete(f"/api/boards/{board['id']}/")


def assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    if code:
        assert error["code"] == code
    return error


def test_crud_round_trip_over_https(alice_board):
    alice, board = alice_board
    cards_url = f"/api/boards/{board['id']}/cards/"
    created = alice.post(cards_url, json={"title": "Write the e2e tests", "column": "todo"})
    assert created.status_code == 201, created.text
    card = created.json()
    card_url = f"/api/cards/{card['id']}/"
    assert created.headers["location"] == card_url

    got = alice.get(card_url)
    assert got.json()["title"] == "Write the e2e tests"
    assert got.headers["etag"] == '"1"'

    updated = alice.patch(card_url, json={"column": "doing"}, headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert updated.headers["etag"] == '"2"'

    # Someone still holding version 1 cannot overwrite version 2.
    stale = alice.patch(card_url, json={"column": "done"}, headers={"If-Match": '"1"'})
    assert_error(stale, 412, "precondition_failed")
    assert alice.get(card_url).json()["column"] == "doing"

    listed = alice.get(cards_url, params={"column": "doing"}).json()
    assert [c["id"] for c in listed["results"]] == [card["id"]]

    assert alice.delete(card_url, headers={"If-Match": '"2"'}).status_code == 204
    assert_error(alice.get(card_url), 404, "not_found")


def test_other_users_cannot_see_a_board_until_they_are_members(alice_board, as_user):
    alice, board = alice_board
    bob = as_user("bob")
    assert_error(bob.get(f"/api/boards/{board['id']}/"), 404)
    invited = alice.post(f"/api/boards/{board['id']}/invitations/", json={"username": "bob"})
    assert invited.status_code == 202, invited.text
    assert_error(bob.get(f"/api/boards/{board['id']}/"), 404)  # not before bob accepts
    waiting = bob.get("/api/invitations/").json()["results"]
    [mine] = [i for i in waiting if i["board"]["id"] == board["id"]]
    accepted = bob.post(f"/api/invitations/{mine['id']}/accept")
    assert accepted.json()["members"] == ["bob"]
    assert bob.get(f"/api/boards/{board['id']}/").status_code == 200
    assert_error(bob.delete(f"/api/boards/{board['id']}/"), 403, "forbidden")


def test_malformed_json_is_400(alice_board):
    alice, board = alice_board
    response = alice.post(
        f"/api/boards/{board['id']}/cards/",
        content=b'{"title": "half',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "malformed_request")


def test_wrong_content_type_is_415(alice_board):
    alice, board = alice_board
    response = alice.post(
        f"/api/boards/{board['id']}/cards/",
        content=b"title=plain",
        headers={"Content-Type": "text/plain"},
    )
    assert_error(response, 415, "unsupported_media_type")


def test_invalid_values_are_422_with_fields(alice_board):
    alice, board = alice_board
    response = alice.post(f"/api/boards/{board['id']}/cards/", json={"title": "", "column": "x"})
    error = assert_error(response, 422, "validation_failed")
    assert {"title", "column"} <= set(error["fields"])


def test_too_large_upload_is_413(alice_board):
    alice, board = alice_board
    card = alice.post(f"/api/boards/{board['id']}/cards/", json={"title": "big"}).json()
    # Above the app's attachment limit (5 MiB), below nginx's API body limit (10 MiB).
    big = PNG + b"\0" * (6 * 1024 * 1024)
    response = alice.post(
        f"/api/cards/{card['id']}/attachments/", files={"file": ("big.png", big, "image/png")}
    )
    assert_error(response, 413, "payload_too_large")
    assert alice.get(f"/api/cards/{card['id']}/").json()["attachments"] == []


def test_attachment_is_stored_and_served_by_nginx(alice_board, client):
    alice, board = alice_board
    card = alice.post(f"/api/boards/{board['id']}/cards/", json={"title": "pic"}).json()
    response = alice.post(
        f"/api/cards/{card['id']}/attachments/", files={"file": ("dot.png", PNG, "image/png")}
    )
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    assert url.startswith("https://")  # Django knows it is behind TLS
    served = client.get(url)
    assert served.status_code == 200
    assert served.content == PNG
    assert served.headers["x-content-type-options"] == "nosniff"
    # A disguised HTML file is refused by its bytes.
    fake = alice.post(
        f"/api/cards/{card['id']}/attachments/",
        files={"file": ("x.png", b"<script>alert(1)</script>", "image/png")},
    )
    assert_error(fake, 415)


def test_unsafe_request_without_csrf_token_is_refused(alice_board):
    alice, board = alice_board
    token = alice.headers.pop("X-CSRFToken")
    try:
        response = alice.post(f"/api/boards/{board['id']}/cards/", json={"title": "x"})
        assert_error(response, 403, "csrf_failed")
    finally:
        alice.headers["X-CSRFToken"] = token


def test_anonymous_api_is_401(client):
    assert_error(client.get("/api/boards/"), 401, "unauthorized")


def test_session_cookies_are_secure_behind_tls(as_user):
    client = as_user("carol")
    cookies = {cookie.name: cookie for cookie in client.cookies.jar}
    assert cookies["sessionid"].secure
    assert cookies["csrftoken"].secure
    assert cookies["sessionid"].has_nonstandard_attr("HttpOnly")


def test_realtime_token_cookie_is_scoped_to_rt(as_user):
    carol = as_user("carol")
    response = carol.post("/api/realtime/token")
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] > 0
    header = response.headers["set-cookie"]
    assert "rt_token=" in header
    for attribute in ("Path=/rt/", "HttpOnly", "Secure", "SameSite=Strict"):
        assert attribute in header


def test_hsts_is_sent_once(client):
    response = client.get("/api/auth/me")
    assert len(response.headers.get_list("strict-transport-security")) == 1


def test_openapi_schema_and_docs(client):
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200
    assert "/api/cards/{id}/" in schema.json()["paths"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text


def test_static_files_are_hashed_and_precompressed(client):
    page = client.get("/")
    [script] = re.findall(r'src="(/static/core/site\.[0-9a-f]{12}\.js)"', page.text)
    response = client.get(script, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]


def listen_sse(https_url: str, token: str, topic: str, count: int):
    """A thread reading `topic` on /rt/sse until `count` card events came; returns it, started
    and subscribed, and the list it fills."""
    received, subscribed = [], threading.Event()

    def listen():
        with (
            httpx.Client(base_url=https_url, verify=False, timeout=10) as sse,  # noqa: S501
            sse.stream(
                "GET",
                "/rt/sse",
                params={"topics": topic},
                headers={"Authorization": f"Bearer {token}"},
            ) as stream,
        ):
            subscribed.set()
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    event = json.loads(line.removeprefix("data:"))
                    if event.get("type", "").startswith("card."):
                        received.append(event)
                if len(received) == count:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(10)
    time.sleep(0.5)  # let the subscription settle on the asgi side
    return listener, received


def test_card_writes_reach_a_live_subscriber(alice_board, https_url):
    """What Django publishes after commit arrives on /rt/sse (the FastAPI side) in order."""
    alice, board = alice_board
    topic = f"board.{board['id']}"
    token = alice.post("/api/realtime/token").json()["token"]
    listener, received = listen_sse(https_url, token, topic, 2)
    card = alice.post(f"/api/boards/{board['id']}/cards/", json={"title": "live"}).json()
    alice.patch(f"/api/cards/{card['id']}/", json={"column": "done"}, headers={"If-Match": '"1"'})
    listener.join(10)
    assert [(e["type"], e["data"]["version"]) for e in received] == [
        ("card.created", 1),
        ("card.updated", 2),
    ]
    assert all(e["topic"] == topic and e["data"]["id"] == card["id"] for e in received)


def new_board(login, user: str = "alice") -> tuple[httpx.Client, int, str]:
    """A fresh board of `user`, that user's client, and a real-time token."""
    c = login(user)
    r = c.post("/api/boards/", json={"name": f"rt-{time.time_ns()}"})
    assert r.status_code == 201, r.text
    board = r.json()["id"]
    r = c.post("/api/realtime/token")
    assert r.status_code == 200, r.text
    return c, board, r.json()["token"]


def create_card(c: httpx.Client, board: int, title: str) -> dict:
    for _ in range(20):
        r = c.post(f"/api/boards/{board}/cards/", json={"title": title})
        if r.status_code != 429:  # nginx's API rate limit: wait and retry
            break
        time.sleep(float(r.headers.get("Retry-After", "1")))
    assert r.status_code == 201, r.text
    return r.json()


def test_card_created_reaches_websocket_and_sse(login, https_url):
    c, board, token = new_board(login)
    topic = f"board.{board}"

    async def go():
        ws_sub = Subscriber(token, topic)
        [task] = await start([ws_sub])
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(base_url=https_url, verify=False, timeout=20) as ac,  # noqa: S501
            ac.stream("GET", "/rt/sse", params={"topics": topic}, headers=headers) as sse,
        ):
            assert sse.status_code == 200
            assert sse.headers["content-type"].startswith("text/event-stream")
            lines = sse.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            await asyncio.sleep(0.5)  # the SSE subscription is attached
            card = await asyncio.to_thread(create_card, c, board, "hello")
            sse_event, block = None, {}
            async with asyncio.timeout(10):
                async for line in lines:
                    if line:
                        field, _, value = line.partition(": ")
                        block[field] = value
                        continue
                    if "data" in block and json.loads(block["data"])["type"] == "card.created":
                        sse_event = (block["id"], json.loads(block["data"]))
                        break
                    block = {}
        await until(lambda: ws_sub.cards, 10)
        task.cancel()
        return card, ws_sub, sse_event

    card, ws_sub, (sse_id, sse_data) = asyncio.run(go())
    assert sse_data["data"]["id"] == card["id"]
    assert sse_data["topic"] == topic
    assert sse_id == sse_data["id"]  # SSE id: is the event id
    assert ws_sub.cards == [sse_id]  # the same event, once, on the WebSocket too


def logs_with(containers, service: str, text: str, since: float) -> list[dict]:
    """The JSON log lines of a service's replicas since `since` that mention `text`."""
    found = []
    for c in containers(service):
        for line in c.logs(since=int(since) - 1).decode(errors="replace").splitlines():
            if text in line:
                found.append(json.loads(line))
    return found


def test_a_chosen_request_id_follows_a_card_from_nginx_to_every_delivery(
    alice_board, https_url, containers
):
    """A trusted proxy's X-Request-ID (here: curl on nginx's loopback, NGINX_REAL_IP_FROM)
    is the id nginx logs and forwards; Django logs it and puts it in the event's envelope;
    the real-time service logs each delivery of that event with it."""
    alice, board = alice_board
    topic = f"board.{board['id']}"
    token = alice.post("/api/realtime/token").json()["token"]
    rid = f"e2e-{uuid.uuid4().hex}"
    since = time.time()
    listener, received = listen_sse(https_url, token, topic, 1)
    [nginx] = containers("nginx")
    cookies = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
    code, out = nginx.exec_run(
        [
            "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
            "-H", "Host: 127.0.0.1", "-H", f"Origin: {https_url}",
            "-H", f"Cookie: {cookies}", "-H", f"X-CSRFToken: {alice.cookies['csrftoken']}",
            "-H", "Content-Type: application/json", "-H", "X-Forwarded-For: 198.51.100.9",
            "-H", f"X-Request-ID: {rid}",
            "--data", '{"title": "traced"}',
            f"https://127.0.0.1:8443/api/boards/{board['id']}/cards/",
        ]
    )  # fmt: skip
    assert (code, out.decode()) == (0, "201")
    listener.join(10)
    assert [e["request_id"] for e in received] == [rid]

    def everywhere():
        return {s: logs_with(containers, s, rid, since) for s in ("nginx", "wsgi", "asgi")}

    for _ in range(20):  # Docker's log pipe may lag a little
        found = everywhere()
        if all(found.values()):
            break
        time.sleep(0.25)
    assert all(found.values()), found
    [access] = found["nginx"]
    assert access["uri"] == f"/api/boards/{board['id']}/cards/"
    assert access["status"] == 201
    assert any(e.get("path") == access["uri"] for e in found["wsgi"])
    delivered = [e for e in found["asgi"] if e["msg"] == "event delivered"]
    assert delivered
    assert all(e["topic"] == topic for e in delivered)
    assert all(e["request_id"] == rid for entries in found.values() for e in entries)
