"""Long streaming, the "AI streaming responses" case: N clients at once, each receiving a
token-by-token stream (Server-Sent Events) through nginx, from Django under Gunicorn
(/api/stream-demo) and from FastAPI under Uvicorn (/rt/stream-demo).

Each client is a raw asyncio TLS connection (no client library between the socket and the
clock) that records when it connected, when its first token came (time to first token) and
when its stream ended. A level ends when every stream ended or at --deadline: a client that
got no token by then was still waiting for the server.

    python stream_bench.py --out DIR --base https://nginx:8443 --clients 8,32,200 \\
        --target "Gunicorn + Django=/api/stream-demo" --target "Uvicorn + FastAPI=/rt/stream-demo"
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import ssl
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from compare import login

FIELDS = [
    "server",
    "clients",
    "completed",
    "max_concurrent",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "ttft_max_ms",
    "waiting_at_deadline",
    "errors",
    "wall_s",
]


async def one_stream(base: str, path: str, headers: list[str], ctx, t0: float) -> dict:
    """One client: connect, ask, read events. Times are seconds since the level began."""
    url = urlsplit(base)
    result = {"first": None, "end": None, "tokens": 0, "error": ""}
    writer = None
    try:
        reader, writer = await asyncio.open_connection(
            url.hostname, url.port or 443, ssl=ctx, server_hostname="localhost"
        )
        head = [f"GET {path} HTTP/1.1", "Host: localhost", "Accept: text/event-stream"]
        head += [*headers, "Connection: close", "", ""]
        writer.write("\r\n".join(head).encode())
        status = await reader.readline()
        if b" 200 " not in status:
            result["error"] = status.decode(errors="replace").strip() or "no answer"
            return result
        async for line in reader:
            if line.startswith(b'data: {"'):
                result["tokens"] += 1
                if result["first"] is None:
                    result["first"] = time.monotonic() - t0
            elif line.startswith(b"event: end"):
                result["end"] = time.monotonic() - t0
                break
        if result["end"] is None:
            result["error"] = "stream cut"
    except (OSError, asyncio.IncompleteReadError) as e:
        result["error"] = type(e).__name__
    finally:
        if writer is not None:
            writer.close()
    return result


def percentile(values: list[float], q: float) -> int | None:
    """None when no client got a first token."""
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))])


def max_concurrent(results: list[dict]) -> int:
    """Most streams delivering tokens at the same moment (first token → end)."""
    marks = []
    for r in results:
        if r["first"] is not None:
            marks += [(r["first"], 1), (r["end"] if r["end"] is not None else float("inf"), -1)]
    now = best = 0
    for _, step in sorted(marks):
        now += step
        best = max(best, now)
    return best


async def level(base, path, headers, clients, deadline, ctx) -> tuple[dict, list[dict]]:
    t0 = time.monotonic()
    tasks = [asyncio.create_task(one_stream(base, path, headers, ctx, t0)) for _ in range(clients)]
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    results = [t.result() for t in done]
    # Cancelled at the deadline: still streaming, or still waiting for a first token.
    waiting = sum(1 for _ in pending)
    ttft = [r["first"] * 1000 for r in results if r["first"] is not None]
    summary = {
        "clients": clients,
        "completed": sum(1 for r in results if r["end"] is not None),
        "max_concurrent": max_concurrent(results),
        "ttft_p50_ms": percentile(ttft, 0.5),
        "ttft_p95_ms": percentile(ttft, 0.95),
        "ttft_max_ms": percentile(ttft, 1.0),
        "waiting_at_deadline": waiting,
        "errors": sum(1 for r in results if r["error"]),
        "wall_s": round(time.monotonic() - t0, 1),
    }
    return summary, results


def markdown(rows: list[dict], tokens: int, ms: int) -> str:
    out = [
        f"### Long streaming: {tokens} tokens {ms} ms apart per client, through nginx",
        "",
        "| server | clients | completed | streaming at once | first token p50 ms | p95 ms "
        "| max ms | still waiting at the deadline | errors | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        r = {k: "none" if v is None else v for k, v in r.items()}
        out.append(
            f"| {r['server']} | {r['clients']} | {r['completed']} | {r['max_concurrent']} "
            f"| {r['ttft_p50_ms']} | {r['ttft_p95_ms']} | {r['ttft_max_ms']} "
            f"| {r['waiting_at_deadline']} | {r['errors']} | {r['wall_s']} |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--base", default="https://nginx:8443", help="nginx, as clients reach it")
    p.add_argument("--login", default="http://wsgi:8000", help="where to log in first")
    p.add_argument("--target", action="append", required=True, help="'server name=/path'")
    p.add_argument("--clients", default="8,32,200")
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--ms", type=int, default=100, help="between two tokens")
    p.add_argument("--deadline", type=float, default=45, help="seconds per level at most")
    args = p.parse_args(argv)
    args.boards = args.cards = 0  # compare.login's example data: none needed here  # example
    headers = login(args.login, "localhost", args)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the stack's self-signed certificate
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for target in args.target:
        server, _, path = target.partition("=")
        path += f"?tokens={args.tokens}&ms={args.ms}"
        for clients in (int(c) for c in args.clients.split(",")):
            summary, results = asyncio.run(
                level(args.base, path, headers, clients, args.deadline, ctx)
            )
            rows.append({"server": server, **summary})
            print(json.dumps(rows[-1]), flush=True)
            name = f"stream-{server.split()[0].lower()}-{clients}.json"
            (args.out / name).write_text(json.dumps(results))
    with open(args.out / "stream.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "compare.md").write_text(markdown(rows, args.tokens, args.ms))
    print(markdown(rows, args.tokens, args.ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
