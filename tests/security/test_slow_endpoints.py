"""Nobody without a login can hold an app worker: the io-wait demo endpoints answer an
anonymous caller at once, cap the wait they allow, and a burst of them leaves another
user's requests fast (issue 12, finding 1: 40 x `?ms=10000` used to stall Django ~47 s)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import new_client

pytestmark = pytest.mark.timeout(120)

# Within nginx's API burst (40 per address), with room for the measured requests.
BURST = 24


def timed_get(path: str, **kwargs) -> tuple[int, float]:
    with new_client() as c:
        started = time.perf_counter()
        r = c.get(path, **kwargs)
        return r.status_code, time.perf_counter() - started


@pytest.mark.parametrize("path", ["/api/io-wait?ms=10000", "/rt/io-wait?ms=10000"])
def test_io_wait_answers_an_anonymous_caller_at_once(path):
    status, seconds = timed_get(path)
    assert status == 401
    assert seconds < 1


@pytest.mark.parametrize(("path", "top"), [("/api/io-wait", 1_000), ("/rt/io-wait", 4_000)])
def test_io_wait_refuses_waits_over_its_cap(login, path, top):
    c = login("alice")
    if path.startswith("/rt/"):
        token = c.post("/api/realtime/token").json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    r = c.get(path, params={"ms": top + 1})
    assert r.status_code == 422, r.text
    assert "ms" in r.json()["error"]["fields"]
    assert time.perf_counter() - started < 1
    ok = c.get(path, params={"ms": 50})
    assert ok.status_code == 200, ok.text
    assert ok.json()["waited_ms"] >= 45


def test_an_anonymous_burst_leaves_another_users_requests_fast(login):
    alice = login("alice")
    assert alice.get("/api/auth/me").status_code == 200  # the connection is open: time the app
    with ThreadPoolExecutor(BURST) as pool:
        burst = [pool.submit(timed_get, "/api/io-wait?ms=10000") for _ in range(BURST)]
        time.sleep(0.3)  # the burst is in flight
        started = time.perf_counter()
        me = alice.get("/api/auth/me")
        took = time.perf_counter() - started
        results = [f.result() for f in burst]
    assert me.status_code == 200, me.text
    assert took < 1, f"GET /api/auth/me took {took:.2f} s during the burst"
    # Refused by Django (401: no login) or, past the slow endpoints' per-address connection
    # limit, by nginx (429): either way at once, holding no worker.
    assert {status for status, _ in results} <= {401, 429}
    # Each asked for 10 s; a new TLS connection in a busy thread pool costs some itself.
    assert max(seconds for _, seconds in results) < 5
