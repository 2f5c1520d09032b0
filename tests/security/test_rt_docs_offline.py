"""/rt/docs renders from the site itself: every asset its page names loads through nginx
from this origin, under the site's strict CSP (no CDN, no inline script), so it works
offline (issue 9, item 7)."""

import re

import pytest


@pytest.fixture
def page(client):
    r = client.get("/rt/docs")
    assert r.status_code == 200
    return r


def test_the_docs_page_gets_the_sites_strict_csp(page):
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "http" not in csp.replace("wss://", "")  # no CDN host anywhere


def test_every_asset_of_the_docs_page_loads_from_this_site(client, page):
    urls = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', page.text)
    kinds = {"js": "javascript", "css": "text/css", "png": "image/png"}
    assert {u.rsplit(".", 1)[-1] for u in urls} == set(kinds)
    for url in urls:
        assert url.startswith("/rt/"), url
        r = client.get(url)
        assert r.status_code == 200, url
        assert kinds[url.rsplit(".", 1)[-1]] in r.headers["content-type"], url
        assert len(r.content) > 50, url
    init = next(u for u in urls if u.endswith("init.js"))
    assert "/rt/openapi.json" in client.get(init).text
    bundle = next(u for u in urls if u.endswith("swagger-ui-bundle.js"))
    assert "SwaggerUIBundle" in client.get(bundle).text
