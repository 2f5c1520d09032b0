"""The nginx edge, seen from outside: TLS, redirect, headers, static files, limits, routing.

Each test talks to the published ports like a user would. Where a behaviour depends on the
client's IP (rate limits), the second and third "clients" are requests made from inside the
nginx container over loopback, which NGINX_REAL_IP_FROM trusts to name a client address in
X-Forwarded-For: the only way to be several clients from one test runner.
"""

import asyncio
import gzip
import json
import re
import secrets
import socket
import ssl
import subprocess
import time
from collections import Counter
from urllib.parse import urlsplit

import docker
import httpx
import pytest
import websockets
from sslyze import (
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)

from conftest import WS_URL, insecure_tls, steady_gets, wait_until_healthy

pytestmark = pytest.mark.timeout(120)

SECURITY_HEADERS = [
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "x-request-id",
]
# Mozilla intermediate (guideline 6.0), as IANA names (what sslyze reports).
MOZILLA_INTERMEDIATE_TLS12 = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


# ---- helpers ---------------------------------------------------------------------------


@pytest.fixture
def nginx(containers):
    found = containers("nginx")
    assert found, "no running nginx container in this compose project"
    return found[0]


def env_of(container) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])


def backend_ip(container) -> str:
    container.reload()
    nets = container.attrs["NetworkSettings"]["Networks"]
    return next(v["IPAddress"] for k, v in nets.items() if k.endswith("_backend"))


def curl_inside(nginx, *args: str) -> str:
    """curl from inside the nginx container to its own HTTPS port (a loopback client)."""
    code, out = nginx.exec_run(["curl", "-sk", "-H", "Host: localhost", *args])
    assert code == 0, out.decode()
    return out.decode()


def burst_inside(nginx, client_ip: str, url: str, count: int, *extra: str) -> list[tuple]:
    """`count` requests at once from `client_ip` (X-Forwarded-For over trusted loopback).

    Returns (status, Retry-After header, body) per request.
    """
    tmp = f"/tmp/e2e-burst-{secrets.token_hex(4)}"  # noqa: S108 (inside the nginx container)
    try:
        out = curl_inside(
            nginx,
            "--parallel",
            "--parallel-max",
            "50",
            "--create-dirs",
            "-H",
            f"X-Forwarded-For: {client_ip}",
            "-o",
            f"{tmp}/#1",
            "-w",
            "%{http_code} [%header{retry-after}] %{filename_effective}\\n",
            *extra,
            f"https://127.0.0.1:8443{url}{'&' if '?' in url else '?'}n=[1-{count}]",
        )
        # All bodies in one exec: "\x1e<file>\x1f<body>" records.
        dump = nginx.exec_run(
            ["sh", "-c", 'for f in "$0"/*; do printf "\\036%s\\037" "$f"; cat "$f"; done', tmp]
        ).output.decode()
        bodies = dict(rec.split("\x1f", 1) for rec in dump.split("\x1e") if rec)
        results = []
        for line in out.splitlines():
            code, retry, filename = line.split(" ", 2)
            results.append((int(code), retry.strip("[]"), bodies.get(filename, "")))
        return results
    finally:
        nginx.exec_run(["rm", "-rf", tmp])


def access_log(nginx, since: float) -> list[dict]:
    """nginx's JSON access log lines (stdout) written since `since` (epoch seconds)."""
    raw = nginx.logs(stdout=True, stderr=False, since=int(since) - 1).decode()
    entries = []
    for line in raw.splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    # The entrypoint's lines are JSON too (log/json-lines.sh): keep the requests.
    return [e for e in entries if e["logger"] == "nginx.access"]


def access_log_when(nginx, since: float, complete) -> list[dict]:
    """access_log(), read again until complete(entries) or ~5 s have passed: nginx flushes its
    access log at least once a second (logging.conf)."""
    for _ in range(20):
        entries = access_log(nginx, since)
        if complete(entries):
            break
        time.sleep(0.25)
    return entries


def log_for(nginx, since: float, request_ids: set[str]) -> dict[str, dict]:
    entries = access_log_when(nginx, since, lambda es: request_ids <= {e["request_id"] for e in es})
    return {e["request_id"]: e for e in entries if e["request_id"] in request_ids}


def fresh_client_ip() -> str:
    """A client address of our own (TEST-NET-2), fresh for each test run."""
    return f"198.51.100.{secrets.randbelow(250) + 1}"


# ---- TLS -------------------------------------------------------------------------------


def test_tls_protocols_and_ciphers(https_url):
    u = urlsplit(https_url)
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(
            hostname="localhost", port=u.port, ip_address=u.hostname
        ),
        scan_commands={
            ScanCommand.SSL_3_0_CIPHER_SUITES,
            ScanCommand.TLS_1_0_CIPHER_SUITES,
            ScanCommand.TLS_1_1_CIPHER_SUITES,
            ScanCommand.TLS_1_2_CIPHER_SUITES,
            ScanCommand.TLS_1_3_CIPHER_SUITES,
        },
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    (result,) = list(scanner.get_results())
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    accepted = {}
    for name in ("ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2", "tls_1_3"):
        attempt = getattr(result.scan_result, f"{name}_cipher_suites")
        assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, attempt.error_trace
        accepted[name] = {s.cipher_suite.name for s in attempt.result.accepted_cipher_suites}
    assert accepted["ssl_3_0"] == set()
    assert accepted["tls_1_0"] == set()
    assert accepted["tls_1_1"] == set()
    assert accepted["tls_1_3"], "TLS 1.3 refused"
    # Only forward-secret AEAD suites from Mozilla's list; with our ECDSA key, the ECDSA ones.
    assert accepted["tls_1_2"], "TLS 1.2 refused"
    assert accepted["tls_1_2"] <= MOZILLA_INTERMEDIATE_TLS12, accepted["tls_1_2"]


@pytest.mark.parametrize(
    ("flag", "accepted"),
    [("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)],
)
def test_tls_versions_with_openssl_cli(https_url, flag, accepted):
    u = urlsplit(https_url)
    # SECLEVEL=0 lets this client offer TLS 1.0/1.1 at all, so a refusal is the server's.
    proc = subprocess.run(  # noqa: S603 (fixed arguments)
        [
            "openssl",
            "s_client",
            "-connect",
            f"{u.hostname}:{u.port}",
            "-servername",
            "localhost",
            flag,
        ]
        + ([] if flag == "-tls1_3" else ["-cipher", "DEFAULT:@SECLEVEL=0"]),
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    out = proc.stdout.decode() + proc.stderr.decode()
    if accepted:
        assert proc.returncode == 0, out
        assert re.search(r"New, TLSv1\.[23], Cipher is \S+", out), out
    else:
        assert proc.returncode != 0, out
        # The server answered with an alert: refused by nginx, not by this client.
        assert "alert protocol version" in out, out


def test_http2_is_negotiated_and_http11_still_works(https_url):
    with httpx.Client(base_url=https_url, verify=False, http2=True, timeout=10) as c:  # noqa: S501
        r = c.get("/healthz")
    assert r.status_code == 200
    assert r.http_version == "HTTP/2"
    with httpx.Client(base_url=https_url, verify=False, timeout=10) as c:  # noqa: S501
        r = c.get("/healthz")
    assert r.status_code == 200
    assert r.http_version == "HTTP/1.1"


def test_session_resumption_without_tickets(https_url):
    """The server-side session cache resumes sessions; no ticket keys to leak."""
    u = urlsplit(https_url)
    ctx = insecure_tls()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # 1.3 resumes through tickets only

    def handshake(session=None):
        with (
            socket.create_connection((u.hostname, u.port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s,
        ):
            # A whole request with "Connection: close": nginx ends the TLS session cleanly
            # (an abrupt close may void the cached session).
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            response = b""
            while chunk := s.recv(4096):
                response += chunk
            assert response.startswith(b"HTTP/1.1 200"), response
            return s.session, s.session_reused

    first, _ = handshake()
    assert not first.has_ticket
    _, reused = handshake(first)
    assert reused


# ---- redirect and the default server ---------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_http_is_redirected_to_https_with_308(http_url, https_url, method):
    r = httpx.request(
        method, f"{http_url}/api/items/?page=2&q=a%20b", follow_redirects=False, timeout=10
    )
    assert r.status_code == 308  # keeps the method and body, unlike 301
    u = urlsplit(https_url)
    netloc = u.hostname if u.port == 443 else f"{u.hostname}:{u.port}"
    assert r.headers["location"] == f"https://{netloc}/api/items/?page=2&q=a%20b"
    # No HSTS over plain HTTP (browsers ignore it there; RFC 6797).
    assert "strict-transport-security" not in r.headers


def test_unknown_host_gets_no_answer(https_url, http_url):
    for url in (https_url, http_url):
        with httpx.Client(base_url=url, verify=False, timeout=10) as c:  # noqa: S501
            with pytest.raises(httpx.RemoteProtocolError):
                c.get("/", headers={"Host": "attacker.example"})
            # A known name on the same connection settings is answered.
            assert c.get("/healthz").status_code in (200, 308)


def test_unknown_sni_gets_no_answer(https_url, nginx):
    port = 8443  # inside the container (published as HTTPS_PORT)
    out = nginx.exec_run(
        [
            "curl",
            "-sk",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--resolve",
            f"attacker.example:{port}:127.0.0.1",
            f"https://attacker.example:{port}/",
        ]
    )
    # curl: empty reply (52) or HTTP/2 stream reset (92), never a status code.
    assert out.exit_code in (52, 92, 16), out
    assert out.output.decode() == "000"


# ---- response headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/api/healthz", "/rt/healthz", "/healthz", "/no-such-page-e2e"]
)
def test_security_headers_are_present_exactly_once(client, nginx, path):
    r = client.get(path)
    hsts = env_of(nginx).get("NGINX_HSTS", "on")
    for name in SECURITY_HEADERS:
        if name == "strict-transport-security" and hsts == "off":
            assert name not in r.headers
            continue
        assert len(r.headers.get_list(name)) == 1, (name, r.headers.get_list(name))
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["server"] == "nginx"  # no version (server_tokens off)
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    if hsts == "on":
        max_age = int(re.search(r"max-age=(\d+)", r.headers["strict-transport-security"]).group(1))
        assert max_age >= 31536000


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/api/docs", "/rt/docs"])
def test_the_kits_pages_satisfy_the_csp(client, path):
    """Only same-origin scripts and styles, none inline: what `script-src 'self'` allows."""
    r = client.get(path)
    assert r.status_code == 200
    assert "script-src 'self';" in r.headers["content-security-policy"]
    html = r.text
    scripts = re.findall(r"<script\b([^>]*)>", html, flags=re.IGNORECASE)
    assert scripts, "no script on the page: nothing checked"
    for attrs in scripts:
        src = re.search(r'src="([^"]*)"', attrs)
        assert src, f"inline <script{attrs}> on {path}"
        assert src.group(1).startswith("/"), src.group(1)
    assert not re.search(r"<style\b", html, flags=re.IGNORECASE), f"inline <style> on {path}"
    assert not re.search(r"\sstyle=", html, flags=re.IGNORECASE), f"style attribute on {path}"
    for url in re.findall(r'<link\b[^>]*href="([^"]+)"', html, flags=re.IGNORECASE):
        assert url.startswith("/"), url


def test_request_id_is_returned_logged_and_sent_upstream(client, nginx, containers):
    since = time.time()
    r = client.get("/api/healthz", headers={"X-Forwarded-For": "203.0.113.66"})
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    entry = log_for(nginx, since, {rid})[rid]
    assert entry["status"] == 200
    assert entry["uri"] == "/api/healthz"
    assert entry["upstream_addr"].endswith(":8000")
    wsgi_ips = {backend_ip(c) for c in containers("wsgi")}
    assert entry["upstream_addr"].rsplit(":", 1)[0] in wsgi_ips
    assert float(entry["upstream_response_time"]) >= 0
    assert entry["limit_req"] == "PASSED"
    # The header from the open internet did not change who we are.
    assert entry["remote_addr"] != "203.0.113.66"


@pytest.mark.parametrize("path", ["/api/openapi.json", "/rt/openapi.json"])
def test_app_text_responses_are_gzipped(client, path):
    r = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers.get("content-encoding") == "gzip"
    assert "accept-encoding" in r.headers.get("vary", "").lower()
    assert len(r.content) > 256  # httpx decoded it


# ---- static and media ------------------------------------------------------------------


def test_static_files_are_cached_forever_and_served_precompressed(client, nginx):
    code, out = nginx.exec_run(
        ["sh", "-c", "find /srv/static -name '*.css.gz' -o -name '*.js.gz' | head -n 50"]
    )
    assert code == 0
    gz_files = [p for p in out.decode().split() if re.search(r"\.[0-9a-f]{12}\.(css|js)\.gz$", p)]
    assert gz_files, "no hashed .css/.js with a precompressed .gz in /srv/static"
    gz_path = gz_files[0]
    url = "/static/" + gz_path.removeprefix("/srv/static/").removesuffix(".gz")
    expected_gz = nginx.exec_run(["cat", gz_path]).output
    expected_plain = gzip.decompress(expected_gz)

    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert raw == expected_gz  # the file from disk, byte for byte: gzip_static, not on-the-fly
    assert r.headers.get_list("cache-control") == ["public, max-age=31536000, immutable"]
    assert "vary" in r.headers

    r = client.get(url, headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert r.content == expected_plain
    assert r.headers.get_list("cache-control") == ["public, max-age=31536000, immutable"]
    for name in ("x-content-type-options", "content-security-policy", "x-request-id"):
        assert len(r.headers.get_list(name)) == 1, name

    # A missing file is a plain 404 and is not cached for a year.
    r = client.get("/static/e2e-does-not-exist.0123456789ab.css")
    assert r.status_code == 404
    assert "cache-control" not in r.headers
    # Static files accept no writes.
    assert client.post(url, content=b"x").status_code in (403, 405)


def test_media_files_are_served_as_inert_files(client, containers):
    wsgi = containers("wsgi")[0]
    name = f"e2e-edge-{secrets.token_hex(4)}.html"
    path = f"/srv/media/{name}"
    # As the app's own user (it owns the media volume), the way an upload is written.
    code, out = wsgi.exec_run(
        ["sh", "-c", f"printf '<script>alert(1)</script>' > {path} && chmod 0644 {path}"]
    )
    assert code == 0, out
    try:
        r = client.get(f"/media/{name}")
        assert r.status_code == 200
        assert r.text == "<script>alert(1)</script>"  # the bytes, not run by any server
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        assert "sandbox" in csp  # a browser will not run its script either
        assert "script-src" not in csp
        assert "default-src 'none'" in csp
        assert client.post(f"/media/{name}", content=b"x").status_code == 403
    finally:
        wsgi.exec_run(["rm", "-f", path])


# ---- request filtering -----------------------------------------------------------------


def test_large_bodies_are_refused_with_413(client, nginx):
    limit = env_of(nginx).get("NGINX_API_MAX_BODY", "10m")
    size = int(limit.rstrip("mM")) * 1024 * 1024 + 1024
    r = client.post(
        "/api/auth/logout", content=b"x" * size, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    # Pages take at most 1 MB, the real-time API 64 KB.
    assert client.post("/", content=b"x" * (1024 * 1024 + 1)).status_code == 413
    assert client.post("/rt/healthz", content=b"x" * (64 * 1024 + 1)).status_code == 413


@pytest.mark.timeout(60)
def test_slow_clients_are_cut_off(https_url):
    """A client that never finishes its headers (slowloris) loses its connection in ~10 s."""
    u = urlsplit(https_url)
    ctx = insecure_tls()
    with (
        socket.create_connection((u.hostname, u.port), timeout=30) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        started = time.monotonic()
        try:
            data = s.recv(1024)
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        waited = time.monotonic() - started
    assert data == b""  # closed without an answer
    assert 8 < waited < 20, waited


@pytest.mark.parametrize(
    "path",
    [
        "/.env",
        "/.git/config",
        "/wp-login.php",
        "/index.php",
        "/static/.htaccess",
        "/api/backup.sql",
    ],
)
def test_hidden_files_and_probe_paths_are_denied(client, nginx, path):
    since = time.time()
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    entry = log_for(nginx, since, {r.headers["x-request-id"]})[r.headers["x-request-id"]]
    assert entry["upstream_addr"] == ""  # answered by nginx, never reached an app


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT"])
def test_unusual_methods_are_refused(client, method):
    r = client.request(method, "/api/healthz")
    assert r.status_code in (400, 405)


def test_status_endpoints_are_internal_only(client, nginx):
    out = curl_inside(nginx, "http://127.0.0.1:8081/stub_status")
    assert "Active connections" in out
    assert (
        curl_inside(nginx, "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8081/healthz")
        == "200"
    )
    r = client.get("/stub_status")
    assert "Active connections" not in r.text


# ---- rate and connection limits --------------------------------------------------------


def test_api_burst_gets_429_with_retry_after_while_others_pass(client, nginx):
    env = env_of(nginx)
    if env.get("NGINX_LIMIT_DRY_RUN") == "on":
        pytest.skip("rate limits are in dry-run mode")
    burst = int(env.get("NGINX_BURST_API", "40"))
    rate = int(re.match(r"\d+", env.get("NGINX_RATE_API", "20r/s")).group())
    noisy = fresh_client_ip()
    results = burst_inside(nginx, noisy, "/api/healthz", 3 * (burst + rate) + 20)
    codes = Counter(code for code, _, _ in results)
    assert set(codes) == {200, 429}, codes
    assert codes[200] >= burst, codes  # the burst itself passes
    # Refused requests are told how long to wait, in the kit's JSON error shape.
    for code, retry_after, body in results:
        if code == 429:
            assert retry_after == env.get("NGINX_RETRY_AFTER", "1")
            assert json.loads(body)["error"]["code"] == "rate_limited"
        else:
            assert retry_after == ""

    # Meanwhile another client, and the test runner itself, are not affected.
    other = curl_inside(
        nginx,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        f"X-Forwarded-For: {fresh_client_ip()}",
        "https://127.0.0.1:8443/api/healthz",
    )
    assert other == "200"
    assert client.get("/api/healthz").status_code == 200


def test_login_is_limited_more_strictly(nginx):
    env = env_of(nginx)
    if env.get("NGINX_LIMIT_DRY_RUN") == "on":
        pytest.skip("rate limits are in dry-run mode")
    burst = int(env.get("NGINX_BURST_LOGIN", "10"))
    ip = fresh_client_ip()
    # Loading the admin login form is not a login attempt: it does not use up the budget.
    assert 429 not in {code for code, _, _ in burst_inside(nginx, ip, "/admin/login/", burst + 5)}
    body = '{"username": "nobody-e2e", "password": "wrong"}'
    results = burst_inside(
        nginx,
        ip,
        "/api/auth/login",
        burst + 10,
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
    )
    refused = [retry for code, retry, _ in results if code == 429]
    # At most burst + 1 attempts get through to Django; the rest wait NGINX_LOGIN_RETRY_AFTER.
    assert len(refused) >= 9, results
    assert set(refused) == {env.get("NGINX_LOGIN_RETRY_AFTER", "6")}


@pytest.fixture
def second_nginx(nginx, docker_client):
    """start(**env) -> another nginx from the stack's image, on the backend network, with
    some settings changed: for behaviours the running stack is not configured for."""
    started = []

    def start(**changes: str):
        env = env_of(nginx) | changes
        net = next(k for k in nginx.attrs["NetworkSettings"]["Networks"] if k.endswith("_backend"))
        c = docker_client.containers.run(
            nginx.image.id,
            detach=True,
            environment=env,
            network=net,
            name=f"{nginx.name}-e2e-{secrets.token_hex(3)}",
        )
        started.append(c)
        for _ in range(40):
            c.reload()
            if c.exec_run(["curl", "-fsS", "http://127.0.0.1:8081/healthz"]).exit_code == 0:
                return c
            time.sleep(0.25)
        raise AssertionError(c.logs().decode())

    yield start
    for c in started:
        c.remove(force=True)


def test_dry_run_and_allowlist_let_bursts_through(second_nginx):
    edge = second_nginx(NGINX_LIMIT_DRY_RUN="on", NGINX_RATE_ALLOWLIST="203.0.113.0/24")
    since = time.time()
    env = env_of(edge)
    count = 3 * (int(env["NGINX_BURST_API"]) + 20) + 20
    # Dry run: every request passes, the would-be rejections are logged as such.
    codes = Counter(
        code for code, _, _ in burst_inside(edge, fresh_client_ip(), "/api/healthz", count)
    )
    assert codes == Counter({200: count}), codes
    # Allowlisted: not even counted.
    listed = Counter(
        code for code, _, _ in burst_inside(edge, "203.0.113.7", "/api/healthz", count)
    )
    assert listed == Counter({200: count}), listed

    def both_bursts(entries):
        dry_run = sum(e["remote_addr"].startswith("198.51.100.") for e in entries)
        return dry_run >= count and sum(e["remote_addr"] == "203.0.113.7" for e in entries) >= count

    by_client = {}
    for e in access_log_when(edge, since, both_bursts):
        by_client.setdefault(e["remote_addr"], Counter())[e["limit_req"]] += 1
    assert by_client["203.0.113.7"] == Counter({"": count}), by_client
    dry = next(v for k, v in by_client.items() if k.startswith("198.51.100."))
    assert dry["REJECTED_DRY_RUN"] > 0, dry


def test_hsts_can_be_switched_off(second_nginx):
    edge = second_nginx(NGINX_HSTS="off")
    head = curl_inside(edge, "-D", "-", "-o", "/dev/null", "https://127.0.0.1:8443/healthz")
    assert head.startswith("HTTP/2 200"), head
    assert "strict-transport-security" not in head.lower()
    assert "content-security-policy" in head.lower()


def test_a_wrong_setting_stops_nginx_with_a_clear_message(nginx, docker_client):
    with pytest.raises(docker.errors.ContainerError) as failed:
        docker_client.containers.run(
            nginx.image.id,
            ["nginx", "-t"],
            environment={"NGINX_RATE_API": "fast"},
            network_mode="none",
            remove=True,
        )
    assert "NGINX_RATE_API must look like 20r/s" in failed.value.stderr.decode()


def test_client_ip_cannot_be_spoofed_from_outside(client, nginx):
    since = time.time()
    rids = set()
    for i in range(3):
        r = client.get(
            "/api/healthz",
            headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": "203.0.113.9"},
        )
        rids.add(r.headers["x-request-id"])
    entries = log_for(nginx, since, rids)
    addrs = {e["remote_addr"] for e in entries.values()}
    assert len(addrs) == 1, entries
    assert not addrs.pop().startswith("203.0.113."), entries


# ---- routing and balancing -------------------------------------------------------------


def test_requests_spread_over_all_wsgi_replicas(client, nginx, containers):
    replicas = containers("wsgi")
    if len(replicas) < 2:
        pytest.skip("start the stack with --scale wsgi=3")
    ips = {backend_ip(c) for c in replicas}
    since = time.time()
    rids = set()
    # 10 per replica stays within the API zone's burst (this runner is one client IP).
    for _ in range(10 * len(replicas)):
        r = client.get("/api/healthz")
        assert r.status_code == 200
        rids.add(r.headers["x-request-id"])
    entries = log_for(nginx, since, rids)
    served = Counter(e["upstream_addr"].rsplit(":", 1)[0] for e in entries.values())
    assert set(served) == ips, served


def test_recreated_backend_gets_traffic_without_502(client, nginx, containers, docker_client):
    replicas = containers("wsgi")
    if len(replicas) < 2:
        pytest.skip("start the stack with --scale wsgi=3")
    victim = replicas[0]
    old_ip = backend_ip(victim)
    placeholder = None
    try:
        with steady_gets() as statuses:
            victim.stop(timeout=35)
            # A stand-in takes the old address, so the replica comes back on a new one and nginx
            # must learn it from DNS (Docker would otherwise often hand out the same address).
            net = next(
                k for k in victim.attrs["NetworkSettings"]["Networks"] if k.endswith("_backend")
            )
            placeholder = docker_client.containers.create(
                victim.image.id, ["sleep", "300"], name=f"{victim.name}-e2e-placeholder"
            )
            docker_client.networks.get(net).connect(placeholder, ipv4_address=old_ip)
            placeholder.start()
            victim.start()
            assert wait_until_healthy(victim) == "healthy"
            new_ip = backend_ip(victim)
            assert new_ip != old_ip
            healthy_at = time.time()
            # Within a few seconds (the DNS answer's lifetime), it is served again.
            seen = False
            while time.time() < healthy_at + 20 and not seen:
                since = time.time()
                rids = {client.get("/api/healthz").headers["x-request-id"] for _ in range(6)}
                time.sleep(1)
                seen = any(
                    e["upstream_addr"].startswith(new_ip + ":")
                    for e in log_for(nginx, since, rids).values()
                )
            assert seen, f"restarted replica {new_ip} (was {old_ip}) got no traffic"
    finally:
        if placeholder is not None:
            placeholder.remove(force=True)
    assert statuses[200] > 30, statuses
    assert set(statuses) == {200}, statuses  # no 502, no reset, while a replica went away and back


# ---- WebSocket and SSE through nginx ---------------------------------------------------


async def test_websocket_through_nginx(https_url, own_topic, publish):
    _, topic, token = own_topic
    ctx, url = insecure_tls(), WS_URL
    async with websockets.connect(
        url, ssl=ctx, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "subscribed", msg
        [sent] = await asyncio.to_thread(publish, topic)
        while (msg := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] == "event":
            if msg["event"]["type"] == "e2e.ping":
                break
        assert msg["type"] == "event", msg
        assert msg["event"]["topic"] == topic, msg
        assert msg["event"]["id"] == sent, msg


@pytest.mark.idle
@pytest.mark.timeout(150)
async def test_idle_websocket_outlives_the_default_proxy_timeout(https_url, own_topic):
    """nginx's default proxy_read_timeout (60 s) would cut an idle socket; ours does not."""
    _, topic, token = own_topic
    ctx, url = insecure_tls(), WS_URL
    # No client pings: only the server's pings keep the connection alive.
    async with websockets.connect(
        url, ssl=ctx, additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None
    ) as ws:
        await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "subscribed"
        await asyncio.sleep(70)
        # Still open: a request gets its answer (events that arrived meanwhile come first).
        await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
        while (msg := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] == "event":
            pass
        assert msg["type"] == "subscribed", msg


def test_sse_events_arrive_unbuffered(https_url, own_topic, publish):
    _, topic, token = own_topic
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept-Encoding": "gzip",
        "Accept": "text/event-stream",
    }
    # A read timeout below the app's 15 s heartbeat: a buffered event fails the test quickly.
    with (
        httpx.Client(base_url=https_url, verify=False, timeout=10) as c,  # noqa: S501
        c.stream("GET", f"/rt/sse?topics={topic}", headers=headers) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in r.headers  # gzip would hold events back
        sent_at = None
        for line in r.iter_lines():
            if sent_at is None and line.startswith("data:"):
                # The first event (our own presence) shows the subscription is live: now write.
                publish(topic)
                sent_at = time.monotonic()
            elif line.startswith("data:") and '"e2e.ping"' in line:
                break
        # The stream is still open (it never ends by itself): the event was not buffered.
        assert sent_at is not None
        assert time.monotonic() - sent_at < 5
        assert not r.is_closed
