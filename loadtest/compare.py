"""Same request, rising concurrency, several servers: CSV + Markdown table + PNG chart.

The load generator is wrk (C, event loop per thread), not Locust: at 500 connections and
thousands of requests per second one Locust process would be the bottleneck on this box, and
wrk's own CPU use is measured and reported for every point, so saturation is visible.

    python compare.py --out DIR --duration 15 --concurrency 10,50,100,250,500 \
        --target "io: Gunicorn/Django=http://wsgi:8000/api/io-wait?ms=100" ...
"""

from __future__ import annotations

import argparse
import csv
import http.cookiejar
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

LUA = Path(__file__).with_name("wrk-report.lua")
FIELDS = [
    "scenario",
    "server",
    "concurrency",
    "rps_ok",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "requests",
    "non_2xx",
    "socket_errors",
    "timeouts",
    "wrk_cpu_percent",
]


def parse_target(text: str) -> tuple[str, str, str]:
    """'scenario: server=url' -> (scenario, server, url); 'POST url' sends --body instead."""
    label, sep, url = text.partition("=")
    scenario, sep2, server = label.partition(":")
    if not (sep and sep2 and url.removeprefix("POST ").startswith("http")):
        raise argparse.ArgumentTypeError(f"expected 'scenario: server=http://...', got {text!r}")
    return scenario.strip(), server.strip(), url.strip()


class BehindProxyPolicy(http.cookiejar.DefaultCookiePolicy):
    """Send Secure cookies over plain HTTP: here we talk to the app behind the TLS proxy."""

    def return_ok_secure(self, cookie, request) -> bool:
        return True


def login(url: str, host: str, args: argparse.Namespace) -> list[str]:
    """Log in as COMPARE_USER straight at the app (as nginx would forward it: Host and
    X-Forwarded-Proto), give the account the data the targets list, return the headers a
    browser would send: the cookies (session, CSRF and real-time token), the CSRF token and
    the Origin."""
    jar = http.cookiejar.CookieJar(BehindProxyPolicy())
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    origin = f"https://{host}"

    def call(method: str, path: str, body: dict | None = None) -> dict:
        token = next((c.value for c in jar if c.name == "csrftoken"), "")
        req = urllib.request.Request(  # noqa: S310 - our own app on the backend network
            base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Host": host,
                "X-Forwarded-Proto": "https",
                "Content-Type": "application/json",
                "Origin": origin,
                "Referer": origin + "/",
                "X-CSRFToken": token,
            },
        )
        with opener.open(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    call(
        "POST",
        "/api/auth/login",
        {"username": os.environ["COMPARE_USER"], "password": os.environ["COMPARE_PASSWORD"]},
    )
    # The real-time token (an rt_token cookie in the jar): /rt/io-wait needs one, as
    # /api/io-wait needs the session. compare.sh makes it outlive the run.
    call("POST", "/api/realtime/token")
    # example-begin
    listed = call("GET", "/api/boards/")
    have = listed.get("count", len(listed.get("results", [])))
    for i in range(have, args.boards):
        call("POST", "/api/boards/", {"name": f"compare board {i}"})
    if args.cards:
        # A board of its own with that many cards: {board} in a target URL is its id.
        args.board = call("POST", "/api/boards/", {"name": "bench cards"})["id"]
        for i in range(args.cards):
            card = {"title": f"card {i}", "position": i, "description": "some text " * 10}
            call("POST", f"/api/boards/{args.board}/cards/", card)
    # example-end
    cookies = "; ".join(f"{c.name}={c.value}" for c in jar)
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    return [
        f"Cookie: {cookies}",
        f"X-CSRFToken: {csrf}",
        f"Origin: {origin}",
        f"Referer: {origin}/",
    ]


def run_wrk(
    url: str, connections: int, seconds: int, headers: list[str], threads: int, body: str = ""
) -> dict:
    cmd = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s"]
    env = dict(os.environ)
    if url.startswith("POST "):  # wrk-report.lua sends WRK_BODY as a POST
        url, env["WRK_BODY"] = url.removeprefix("POST "), body
        headers = [*headers, "Content-Type: application/json"]
    # Long timeout: a queued request is slow, not lost; wrk would otherwise drop it from the stats.
    cmd += ["--timeout", "30s", "-s", str(LUA)]
    for header in headers:
        cmd += ["-H", header]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    # The command is built here from numbers and the operator's own target URLs.
    out = subprocess.run(  # noqa: S603
        [*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 60, env=env
    ).stdout
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("WRK-JSON "))
    result = json.loads(line.removeprefix("WRK-JSON "))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["wrk_cpu_percent"] = round(100 * cpu / wall, 1)
    return result


def row(scenario: str, server: str, connections: int, r: dict) -> dict:
    seconds = r["duration_us"] / 1e6
    ok = r["requests"] - r["status_errors"]
    return {
        "scenario": scenario,
        "server": server,
        "concurrency": connections,
        "rps_ok": round(ok / seconds, 1),
        "p50_ms": r["p50_ms"],
        "p95_ms": r["p95_ms"],
        "p99_ms": r["p99_ms"],
        "max_ms": r["max_ms"],
        "requests": r["requests"],
        "non_2xx": r["status_errors"],
        "socket_errors": r["connect_errors"] + r["read_errors"] + r["write_errors"],
        "timeouts": r["timeouts"],
        "wrk_cpu_percent": r["wrk_cpu_percent"],
    }


def markdown(rows: list[dict]) -> str:
    out = []
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        out += [
            f"### {scenario}",
            "",
            "| server | concurrency | ok req/s | p50 ms | p95 ms | p99 ms | errors | wrk CPU % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in rows if r["scenario"] == scenario):
            errors = r["non_2xx"] + r["socket_errors"] + r["timeouts"]
            out.append(
                f"| {r['server']} | {r['concurrency']} | {r['rps_ok']:.0f} | {r['p50_ms']:.0f} "
                f"| {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {errors} | {r['wrk_cpu_percent']:.0f} |"
            )
        out.append("")
    return "\n".join(out)


def chart(rows: list[dict], path: Path, title: str) -> None:
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    fig, axes = plt.subplots(2, len(scenarios), figsize=(6 * len(scenarios), 8), squeeze=False)
    for col, scenario in enumerate(scenarios):
        mine = [r for r in rows if r["scenario"] == scenario]
        for server in dict.fromkeys(r["server"] for r in mine):
            pts = [r for r in mine if r["server"] == server]
            xs = [r["concurrency"] for r in pts]
            axes[0][col].plot(xs, [r["rps_ok"] for r in pts], marker="o", label=server)
            axes[1][col].plot(xs, [r["p95_ms"] for r in pts], marker="o", label=server)
        axes[0][col].set_title(scenario)
        axes[0][col].set_ylabel("successful requests/s")
        axes[1][col].set_ylabel("p95 latency, ms (log)")
        axes[1][col].set_yscale("log")
        for ax in axes[:, col]:
            ax.set_xlabel("concurrent connections")
            ax.grid(True, alpha=0.3)
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--target", type=parse_target, action="append", required=True)
    p.add_argument("--concurrency", default="10,50,100,250,500")
    p.add_argument("--duration", type=int, default=15, help="seconds per point")
    p.add_argument("--warmup", type=int, default=3, help="seconds before each server's sweep")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--header", action="append", default=[], help="added to every request")
    p.add_argument("--body", default="{}", help="the JSON body of 'POST url' targets")
    p.add_argument("--title", default="WSGI vs ASGI")
    p.add_argument(
        "--login",
        metavar="URL",
        help="log in here first (COMPARE_USER, COMPARE_PASSWORD); send the session cookie",
    )
    p.add_argument("--host-header", default="localhost", help="Host: an allowed Django host")
    p.add_argument("--boards", type=int, default=20, help="boards to list")  # example
    p.add_argument("--cards", type=int, default=0, help="cards on a board {board}")  # example
    args = p.parse_args(argv)
    # What nginx adds in front of the apps: an allowed Host, and "this came in over HTTPS".
    args.header += [f"Host: {args.host_header}", "X-Forwarded-Proto: https"]
    if args.login:
        args.header += login(args.login, args.host_header, args)

    levels = [int(c) for c in args.concurrency.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for scenario, server, url in args.target:
        url = url.replace("{board}", str(getattr(args, "board", "")))  # example
        wrk = (args.header, args.threads, args.body)
        run_wrk(url, 10, args.warmup, *wrk)  # warm connections and caches
        for connections in levels:
            r = row(scenario, server, connections, run_wrk(url, connections, args.duration, *wrk))
            rows.append(r)
            print(json.dumps(r), flush=True)

    with open(args.out / "compare.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "compare.md").write_text(markdown(rows))
    chart(rows, args.out / "compare.png", args.title)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
