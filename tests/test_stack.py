"""The first vertical slice: every service answers through nginx over HTTPS, on a fresh stack."""

import re
import ssl
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from conftest import WS_URL, insecure_tls

pytestmark = pytest.mark.timeout(60)


def test_django_home_page(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()


@pytest.mark.parametrize("path", ["/api/healthz", "/api/readyz", "/rt/healthz", "/rt/readyz"])
def test_health_endpoints(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")


def test_nginx_answers_its_own_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200


def test_static_file_from_the_home_page_is_served_by_nginx(client):
    page = client.get("/").text
    paths = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert paths, "the home page links no static file"
    r = client.get(paths[0], headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200
    # Hashed names are cached for a year: nginx's static location, not Django's.
    assert "immutable" in r.headers["cache-control"]


def test_http_redirects_to_https_with_308(http_url, https_url):
    r = httpx.get(f"{http_url}/api/items/?page=2", follow_redirects=False, timeout=10)
    assert r.status_code == 308
    u = urlsplit(https_url)
    netloc = u.hostname if u.port == 443 else f"{u.hostname}:{u.port}"
    assert r.headers["location"] == f"https://{netloc}/api/items/?page=2"


def test_self_signed_certificate_names_localhost_and_loopback(https_url):
    u = urlsplit(https_url)
    pem = ssl.get_server_certificate((u.hostname, u.port))
    cert = x509.load_pem_x509_certificate(pem.encode())
    san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def test_secrets_are_generated_per_stack_and_distinct(containers):
    wsgi = containers("wsgi")[0]
    values = {}
    for name in ("django_secret_key", "postgres_password", "realtime_token_key"):
        out = wsgi.exec_run(["cat", f"/run/kit-secrets/{name}"])
        assert out.exit_code == 0, out.output
        values[name] = out.output.decode()
        assert re.fullmatch(r"[A-Za-z0-9]{50}", values[name]), name
    assert len(set(values.values())) == 3


async def test_websocket_without_token_is_refused_by_the_app(https_url):
    # The upgrade crosses nginx and reaches FastAPI, which refuses it: not an nginx 4xx/5xx.
    with pytest.raises((websockets.InvalidStatus, websockets.ConnectionClosed)) as err:
        async with websockets.connect(WS_URL, ssl=insecure_tls()) as ws:
            await ws.recv()
    if isinstance(err.value, websockets.InvalidStatus):
        assert err.value.response.status_code in (401, 403)
    else:
        assert err.value.rcvd.code in (1008, 4401, 4403)


def test_sse_without_token_is_refused_with_json(client):
    r = client.get("/rt/sse", params={"topics": "user.1"})
    assert r.status_code == 401
    assert r.json()["error"]["code"]
