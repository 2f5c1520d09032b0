"""Health, OpenAPI, io-wait, and JSON errors."""

import time

import httpx


def test_health_readiness_and_docs(server):
    assert httpx.get(server.url + "/rt/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/rt/readyz").json() == {"status": "ok"}
    schema = httpx.get(server.url + "/rt/openapi.json").json()
    assert {"/rt/sse", "/rt/io-wait"} <= set(schema["paths"])
    docs = httpx.get(server.url + "/rt/docs")
    assert docs.status_code == 200
    assert "/rt/openapi.json" in docs.text


def test_io_wait_waits_and_validates(server):
    t = time.perf_counter()
    r = httpx.get(server.url + "/rt/io-wait", params={"ms": 200})
    assert r.status_code == 200
    assert r.json()["waited_ms"] >= 195
    assert time.perf_counter() - t >= 0.195
    bad = httpx.get(server.url + "/rt/io-wait", params={"ms": -1})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid"
    assert "ms" in bad.json()["error"]["fields"]
