"""The kit on a 3-node Docker Swarm (`make test-swarm`, deploy/swarm/test.sh): every part
answers through two nodes' nginx, a rolling update loses nothing, a node failure costs at most
a few seconds of failed requests and no event.

Not collected by `make test` (the file name is not test_*): deploy/swarm/test.sh runs it in
the e2e image on the host network, with KIT_HTTPS_URL = node 1's HTTPS port, SWARM_NODE_URLS
the HTTPS ports of every node, DOCKER_HOST the manager, and a runner for the `host` fixture
that deploys (`deploy <tag>`) and stops or starts a node (`stop <n>`, `start <n>`).
"""

import asyncio
import functools
import json
import os
import time

import docker
import httpx
import pytest
import websockets

from conftest import PASSWORD, insecure_tls
from test_board_api import new_board
from test_deploy import Load, SseSubscriber, assert_nothing_lost, deploy_under_load, history
from test_realtime import Subscriber, Token, start, until

# Generous: a deploy on a busy 2-core machine that runs the whole swarm has taken 8 minutes.
pytestmark = pytest.mark.timeout(1200)

STACK = os.environ["SWARM_STACK"]
NODE_URLS = os.environ["SWARM_NODE_URLS"].split()
STOP_BUDGET = 10  # seconds of failed requests a node failure may cost
# This run's users (alice-<RUN>, ...): a lab may keep an earlier run's database.
RUN = "-" + PASSWORD[:8]
# The site's public origin: each lab node maps its own loopback port to the nodes' 443.
ORIGIN = "https://127.0.0.1"


@pytest.fixture(scope="module")
def login(login):
    """conftest's login, whose unsafe requests carry the site's public origin."""

    def _login(username: str) -> httpx.Client:
        c = login(username + RUN)
        c.headers["Origin"] = ORIGIN
        return c

    return _login


@pytest.fixture(scope="module")
def swarm():
    d = docker.from_env()
    yield d
    d.close()


def placement(swarm, service: str) -> list[str]:
    """Hostnames of the nodes running the service's tasks."""
    nodes = {n.id: n.attrs["Description"]["Hostname"] for n in swarm.nodes.list()}
    tasks = swarm.services.get(f"{STACK}_{service}").tasks(filters={"desired-state": "running"})
    return sorted(nodes[t["NodeID"]] for t in tasks if t["Status"]["State"] == "running")


@pytest.fixture(scope="module")
def users():
    """alice (the e2e helpers' default user) and bob, signed up through the API."""
    with httpx.Client(
        base_url=NODE_URLS[0],
        verify=False,  # noqa: S501
        timeout=15,
        headers={"Origin": ORIGIN},
    ) as c:
        for name in ("alice", "bob"):
            r = c.post("/api/auth/signup", json={"username": name + RUN, "password": PASSWORD})
            assert r.status_code == 201, r.text
            c.cookies.clear()  # signed up is logged in: the next one signs up anonymously


async def one_event_each_way(url: str, token: str, topic: str, publish) -> tuple[dict, dict]:
    """A WebSocket and an SSE subscriber through `url`; `publish()` makes one event."""
    ws_url = url.replace("https://", "wss://") + "/rt/ws"
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        websockets.connect(ws_url, ssl=insecure_tls(), additional_headers=auth) as ws,
        httpx.AsyncClient(base_url=url, verify=False, timeout=20) as ac,  # noqa: S501
    ):
        await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        async with ac.stream("GET", "/rt/sse", params={"topics": topic}, headers=auth) as r:
            # The headers come once the server has attached the stream to the topic.
            assert r.status_code == 200
            lines = r.aiter_lines()
            await asyncio.to_thread(publish)
            async with asyncio.timeout(15):
                m: dict = {}
                while not m.get("event", {}).get("type", "").startswith("card."):
                    m = json.loads(await ws.recv())  # presence events come too
                async for line in lines:
                    if line.startswith("data: ") and '"card.' in line:
                        return m["event"], json.loads(line[6:])
    raise AssertionError("no SSE event")


def test_every_part_answers_through_two_nodes_with_replicas_on_two(swarm, users, login):
    for svc in ("wsgi", "asgi"):
        assert len(set(placement(swarm, svc))) >= 2, f"{svc} not spread: {placement(swarm, svc)}"
    for url in NODE_URLS[:2]:
        with httpx.Client(base_url=url, verify=False, timeout=15) as c:  # noqa: S501
            home = c.get("/")
            assert home.status_code == 200
            assert "<html" in home.text.lower()
            assert c.get("/static/").status_code in (403, 404)  # nginx's, not an app's
            r = c.post("/api/auth/login", json={"username": "bob" + RUN, "password": PASSWORD})
            assert r.status_code == 200, r.text
            c.headers.update({"X-CSRFToken": c.cookies["csrftoken"], "Origin": ORIGIN})
            board = c.post("/api/boards/", json={"name": f"swarm {url}"})
            assert board.status_code == 201, board.text
            cards = f"/api/boards/{board.json()['id']}/cards/"
            token = c.post("/api/realtime/token").json()["token"]
            topic = f"board.{board.json()['id']}"

            def publish(c=c, cards=cards):
                assert c.post(cards, json={"title": "over the swarm"}).status_code == 201

            ws_event, sse_event = asyncio.run(one_event_each_way(url, token, topic, publish))
            assert ws_event["id"] == sse_event["id"]
            assert ws_event["type"] == "card.created"
            listed = c.get(cards)
            assert listed.status_code == 200
            assert "over the swarm" in listed.text


def test_a_node_failure_costs_seconds_and_no_event(swarm, users, login, host):
    """Before the rolling update: the first deploy spreads the replicas over the two emptier
    nodes (the data node runs Postgres, Redis and backup), so each runs a wsgi and an asgi."""

    def hostnames(**filters) -> set[str]:
        return {n.attrs["Description"]["Hostname"] for n in swarm.nodes.list(filters=filters)}

    manager, data = hostnames(role="manager"), hostnames(**{"node.label": "kit.data=true"})
    both = set(placement(swarm, "wsgi")) & set(placement(swarm, "asgi")) - manager - data
    assert both, "no worker node outside the data node runs both a wsgi and an asgi replica"
    victim = sorted(both)[0]
    number = victim.removeprefix("swarm-lab-node")
    c, board, _ = new_board(login)
    topic = f"board.{board}"
    token = Token(c)

    async def go():
        subs = [Subscriber(token, topic) for _ in range(20)]
        sses = [SseSubscriber(token, topic) for _ in range(5)]
        tasks = await start(subs) + [asyncio.create_task(s.run()) for s in sses]
        # An SSE stream opened without Last-Event-ID starts at "now": the first card must come
        # after every stream is open, or a stream that opened late misses it (not a loss).
        async with asyncio.timeout(30):
            for s in sses:
                await s.subscribed.wait()
        load = Load(c, board)
        load_task = asyncio.create_task(load.run())
        await asyncio.sleep(3)
        stopped = time.monotonic()
        rc, out = await asyncio.to_thread(host, f"stop {number}")
        assert rc == 0, out

        def moved() -> bool:
            return all(
                len(placement(swarm, s)) == 2 and victim not in placement(swarm, s)
                for s in ("wsgi", "asgi")
            )

        assert await until(moved, 180, 2), "the replicas were not rescheduled"
        rescheduled = time.monotonic() - stopped
        await asyncio.sleep(5)
        load.stop.set()
        await load_task
        rc, out = await asyncio.to_thread(host, f"start {number}")
        assert rc == 0, out
        expected = await asyncio.to_thread(history, c, board)
        await until(lambda: all(len(s.cards) >= len(expected) for s in subs + sses), 90)
        await asyncio.sleep(1)
        for t in tasks:
            t.cancel()
        return load, subs + sses, expected, rescheduled

    load, everyone, expected, rescheduled = asyncio.run(go())
    # How long requests failed: the time over which failed requests were sent, and over which
    # they were answered. A request in flight on the node when it goes is answered only when
    # the node is gone for good (here 10 s later: `docker stop`'s kill): that wait is its own.
    sent = [s for s, _ in load.failed_between] or [0.0]
    answered = [a for _, a in load.failed_between] or [0.0]
    window = max(max(sent) - min(sent), max(answered) - min(answered))
    waited = max(a - s for s, a in load.failed_between) if load.failed_between else 0.0
    print(
        f"node {victim} stopped: {len(load.failures)} of {load.sent} requests failed "
        f"within {window:.1f} s (the longest waited {waited:.1f} s for its answer); replicas "
        f"rescheduled after {rescheduled:.0f} s; {len(expected)} events to {len(everyone)} "
        "subscribers"
    )
    assert window <= STOP_BUDGET, f"requests failed for {window:.1f} s: {load.failures[:5]}"
    for s in everyone:
        assert s.cards == expected  # every event once, in order, across the failure

    def rejoined() -> bool:  # back in the swarm, and serving: its nginx (global) runs again
        return victim in placement(swarm, "nginx")

    assert asyncio.run(until(rejoined, 180, 2)), f"{victim} did not rejoin"


def test_a_rolling_update_fails_no_request_and_loses_no_event(swarm, users, login, host):
    def spec(svc: str) -> tuple[str, str]:
        attrs = swarm.services.get(f"{STACK}_{svc}").attrs["Spec"]
        return attrs["Labels"]["kit.release"], attrs["TaskTemplate"]["ContainerSpec"]["Image"]

    before = {svc: spec(svc) for svc in ("wsgi", "asgi", "nginx")}
    run = deploy_under_load("deploy t2", login, functools.partial(host, timeout=900))
    assert run["rc"] == 0, f"the deploy failed: {run['output']}"
    for svc in ("wsgi", "asgi"):
        release, image = spec(svc)
        assert release == "t2"
        assert image != before[svc][1], f"{svc} still runs {image}"
    # t2's nginx is t1's image retagged: the edge was left running.
    assert spec("nginx") == ("t2", before["nginx"][1])
    assert_nothing_lost(run)
