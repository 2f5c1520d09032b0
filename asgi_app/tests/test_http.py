"""Health, OpenAPI, io-wait, the streaming demo, and JSON errors."""

import json
import time

import httpx

from .conftest import bearer, make_token


def test_health_readiness_and_docs(server):
    assert httpx.get(server.url + "/rt/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/rt/readyz").json() == {"status": "ok"}
    schema = httpx.get(server.url + "/rt/openapi.json").json()
    assert {"/rt/sse", "/rt/io-wait"} <= set(schema["paths"])
    docs = httpx.get(server.url + "/rt/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text


def test_io_wait_waits_and_validates(server):
    auth = bearer(make_token(1))
    t = time.perf_counter()
    r = httpx.get(server.url + "/rt/io-wait", params={"ms": 200}, headers=auth)
    assert r.status_code == 200
    assert r.json()["waited_ms"] >= 195
    assert time.perf_counter() - t >= 0.195
    for ms in (-1, 4001):
        bad = httpx.get(server.url + "/rt/io-wait", params={"ms": ms}, headers=auth)
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "validation_failed"
        assert "ms" in bad.json()["error"]["fields"]


def test_io_wait_needs_a_token(server):
    t = time.perf_counter()
    r = httpx.get(server.url + "/rt/io-wait", params={"ms": 3000})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert time.perf_counter() - t < 1


def test_io_wait_answers_up_to_the_maximum_its_schema_allows(server):
    """The schema's maximum is a wait the Redis client does not time out on (no 503)."""
    schema = httpx.get(server.url + "/rt/openapi.json").json()
    (param,) = schema["paths"]["/rt/io-wait"]["get"]["parameters"]
    top = param["schema"]["maximum"]
    r = httpx.get(
        server.url + "/rt/io-wait",
        params={"ms": top},
        headers=bearer(make_token(1)),
        timeout=top / 1000 + 5,
    )
    assert r.status_code == 200, r.text
    assert r.json()["waited_ms"] >= top - 5


def test_stream_demo_sends_each_token_as_an_event(server):
    auth = bearer(make_token(1))
    r = httpx.get(server.url + "/rt/stream-demo", params={"tokens": 3, "ms": 0}, headers=auth)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    data = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith('data: {"')]
    assert [d["i"] for d in data] == [0, 1, 2]
    assert r.text.endswith("event: end\ndata: {}\n\n")


def test_stream_demo_refusals_are_json(server):
    url = server.url + "/rt/stream-demo"
    assert httpx.get(url).status_code == 401
    for query in ({"tokens": 0}, {"tokens": 201}, {"ms": 101}):
        bad = httpx.get(url, params=query, headers=bearer(make_token(1)))
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "validation_failed"


def test_every_operation_documents_its_errors_in_the_error_shape(server):
    schema = httpx.get(server.url + "/rt/openapi.json").json()
    error_ref = "#/components/schemas/ErrorBody"
    for path, ops in schema["paths"].items():
        for op in ops.values():
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    body = resp["content"]["application/json"]["schema"]
                    assert body == {"$ref": error_ref}, (path, status)
    assert set(schema["paths"]["/rt/io-wait"]["get"]["responses"]) == {"200", "401", "422", "503"}
