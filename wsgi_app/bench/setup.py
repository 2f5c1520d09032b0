"""Prepare a wrk run against a running stack: log in, make a board of N cards, write Lua scripts.

Standard library only, so it runs anywhere Python 3.11+ does:
    python bench/setup.py https://127.0.0.1:443 USER PASSWORD [CARDS] [OUTDIR]
"""

import http.cookiejar
import json
import ssl
import sys
import urllib.request
from pathlib import Path

base, user, password = sys.argv[1:4]
cards_wanted = int(sys.argv[4]) if len(sys.argv) > 4 else 50
out = Path(sys.argv[5] if len(sys.argv) > 5 else ".")

context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the stack's self-signed certificate
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=context), urllib.request.HTTPCookieProcessor(jar)
)


def cookie(name: str) -> str:
    return next(c.value for c in jar if c.name == name)


def call(method: str, path: str, body: dict) -> dict:
    headers = {"Content-Type": "application/json", "Origin": base}
    if any(c.name == "csrftoken" for c in jar):
        headers["X-CSRFToken"] = cookie("csrftoken")
    request = urllib.request.Request(  # noqa: S310  (the URL is the operator's)
        base + path, json.dumps(body).encode(), headers, method=method
    )
    with opener.open(request) as response:
        return json.load(response)


call("POST", "/api/auth/login", {"username": user, "password": password})
board = call("POST", "/api/boards/", {"name": "wrk benchmark"})
ids = [
    call(
        "POST",
        f"/api/boards/{board['id']}/cards/",
        {"title": f"card {i}", "position": i, "description": "some text " * 10},
    )["id"]
    for i in range(cards_wanted)
]
host = base.split("://", 1)[1]
session, csrf = cookie("sessionid"), cookie("csrftoken")
common = f"""wrk.headers["Cookie"] = "sessionid={session}; csrftoken={csrf}"
wrk.headers["X-CSRFToken"] = "{csrf}"
wrk.headers["Origin"] = "{base}"
wrk.headers["Host"] = "{host}"
function done(summary, latency, requests)
  io.write(string.format(
    "requests=%d rps=%.1f p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f non2xx=%d socket_errors=%d\\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
(out / "list.lua").write_text(common + f'wrk.path = "/api/boards/{board["id"]}/cards/"\n')
(out / "update.lua").write_text(
    common
    + f"""local cards = {{{",".join(map(str, ids))}}}
local columns = {{"todo", "doing", "done"}}
wrk.method = "PATCH"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local id = cards[math.random(#cards)]
  local body = '{{"column": "' .. columns[math.random(3)] .. '", '
    .. '"title": "updated ' .. math.random(1000) .. '"}}'
  return wrk.format(nil, "/api/cards/" .. id .. "/", nil, body)
end
"""
)
print(f"board {board['id']} with {len(ids)} cards; wrote {out}/list.lua and {out}/update.lua")
