"""Schemathesis against both OpenAPI documents, through nginx over HTTPS, logged in:
Django's /api/openapi.json with a session and its CSRF token, the real-time service's
/rt/openapi.json with a real-time token. Checks that no request gets a 5xx, and that every
status and body the APIs answer is one their schema documents. One JUnit report per API
in /reports (counted by `make test`'s summary); exits non-zero on any failure.

`make test` runs it after the e2e suite, with the runner's address allow-listed on nginx
(like the load test): it sends far more requests than the per-address rate limits allow.
"""

import os
import subprocess
import sys

import httpx

BASE = os.environ["KIT_HTTPS_URL"]
USER, PASSWORD = os.environ["SCHEMATHESIS_USER"], os.environ["E2E_PASSWORD"]
REPORTS = os.environ.get("REPORTS", "/reports")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Small enough for `make test`'s time budget, large enough to reach every documented error.
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5")


def login() -> tuple[list[str], list[str]]:
    """Headers for each API: Django's session + CSRF, and a Bearer real-time token."""
    with httpx.Client(base_url=BASE, verify=False, headers={"Origin": BASE}) as c:  # noqa: S501
        r = c.post("/api/auth/login", json={"username": USER, "password": PASSWORD})
        r.raise_for_status()
        csrf = c.cookies["csrftoken"]
        cookie = f"sessionid={c.cookies['sessionid']}; csrftoken={csrf}"
        r = c.post("/api/realtime/token", headers={"X-CSRFToken": csrf})
        r.raise_for_status()
        token = r.json()["token"]
    django = [f"Cookie: {cookie}", f"X-CSRFToken: {csrf}", f"Origin: {BASE}", f"Referer: {BASE}/"]
    return django, [f"Authorization: Bearer {token}"]


def run(name: str, schema: str, headers: list[str], *exclude: str) -> int:
    cmd = ["schemathesis", "run", f"{BASE}{schema}", "--checks", CHECKS]
    cmd += ["--max-examples", MAX_EXAMPLES, "--seed", "1", "--tls-verify", "false"]
    # Coverage (every documented constraint and its violation) and fuzzing; stateful runs
    # (chains through links) cost as much again and found nothing the others did not.
    cmd += ["--phases", "coverage,fuzzing", "--workers", "4", "--request-timeout", "15"]
    cmd += ["--no-color"]
    cmd += ["--report", "junit", "--report-junit-path", f"{REPORTS}/{name}.xml"]
    for header in headers:
        cmd += ["--header", header]
    for path in exclude:
        cmd += ["--exclude-path", path]
    print(f"== schemathesis: {schema}", flush=True)
    return subprocess.run(cmd, check=False).returncode  # noqa: S603 (fixed arguments)


def main() -> int:
    django, realtime = login()
    # The real-time one first: its token lives REALTIME_TOKEN_TTL (5 min), the session longer.
    status = run(
        "schemathesis-rt",
        "/rt/openapi.json",
        realtime,
        "/rt/sse",  # an endless stream when it succeeds; tests/test_realtime.py covers it
        "/rt/stream-demo",  # up to 20 s per call; tests/test_streaming.py covers it
    )
    status |= run(
        "schemathesis-api",
        "/api/openapi.json",
        django,
        "/api/auth/logout",  # would end the session the run uses; the e2e tests cover it
        "/api/stream-demo",  # up to 20 s per call; tests/test_streaming.py covers it
    )
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
