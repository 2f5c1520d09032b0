"""Many WebSockets through nginx, then fan-out to all of them (make bench, step ws).

Opens --connections WebSockets (TLS, through nginx, as a browser would: the session's
real-time cookie, one board's topic), spread over --procs asyncio processes so that the
generator is not what limits; holds them (the bench reads the containers' memory meanwhile,
once --ready-file exists), then writes --events cards through the API, one every --interval
seconds, and measures each event from its commit (the envelope's `ts`) to every client.

    python ws_bench.py --out /reports/ws --base https://nginx:8443 --login http://wsgi:8000 \\
        --connections 20000 --procs 2

Writes result.json and compare.md: connected, failed (by reason), closed early, fan-out
latency p50/p95/p99/max, events delivered of expected, and each generator process's CPU (in
all, and from the first event to the last delivery). With --phase-dir, files there mark the
events' start and end and, 10 s later, the end of an idle hold, for the bench to read the
servers' CPU at each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import ssl
import sys
import time
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import uvloop

from compare import login


def tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the stack's self-signed certificate
    return ctx


class Started(asyncio.Event):
    """Set once a connection subscribed or failed; frees its handshake slot then."""

    def __init__(self, slots: asyncio.Semaphore):
        super().__init__()
        self.slots = slots

    def set(self) -> None:
        if not self.is_set():
            super().set()
            self.slots.release()


class Client:
    """One process's share of the connections.

    aiohttp (its frame reader in C) on uvloop (TLS in C): of the Python clients tried, the one
    that spends least CPU per frame received, which matters as the generator shares the
    stack's 2 cores (measured: ~28 against ~45 us per frame for websockets on asyncio)."""

    def __init__(self, base: str, headers: dict, topic: str, event_type: str):
        # The name the site answers to (Host, TLS SNI); the TCP connection goes to the
        # nginx container's address, as production traffic arrives (no docker-proxy).
        target = urlsplit(base)
        port = target.port or 443
        self.url = f"https://{target.hostname}:{port}/rt/ws"
        self.headers = {**headers, "Host": f"localhost:{port}"}
        self.topic, self.event_type = topic, event_type
        self.connected = 0
        self.failed: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.ctx = tls()
        self.session: aiohttp.ClientSession | None = None

    async def one(self, started: Started) -> None:
        assert self.session is not None
        subscribed = False
        try:
            async with self.session.ws_connect(
                self.url,
                headers=self.headers,
                server_hostname="localhost",
                autoping=True,  # answers the server's pings; sends none of its own
                compress=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10),
            ) as ws:
                await ws.send_str(json.dumps({"type": "subscribe", "topics": [self.topic]}))
                # One answer that never comes must not hold the whole run: it counts as failed.
                async with asyncio.timeout(120):
                    while True:
                        msg = await ws.receive()
                        if msg.type is not aiohttp.WSMsgType.TEXT:  # closed instead
                            self.failed[f"closed {ws.close_code or 'without a close frame'}"] += 1
                            return
                        if json.loads(msg.data).get("type") == "subscribed":
                            break
                self.connected += 1
                subscribed = True
                started.set()
                async for msg in ws:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(msg.data)
                    event = data.get("event") or {}
                    if data.get("type") == "event" and event.get("type") == self.event_type:
                        ts = datetime.fromisoformat(event["ts"]).timestamp()
                        self.latencies.append(time.time() - ts)
                # The server ended it (a stopped run cancels this task instead).
                self.closed[f"closed {ws.close_code or 'without a close frame'}"] += 1
        except aiohttp.WSServerHandshakeError as e:
            self.failed[f"HTTP {e.status}"] += 1
        except (OSError, TimeoutError, aiohttp.ClientError) as e:
            (self.closed if subscribed else self.failed)[type(e).__name__] += 1
        except Exception as e:  # counted, and shown once: the run goes on
            if not self.failed[type(e).__name__]:
                print(f"ws: {type(e).__name__}: {e}", file=sys.stderr)
            self.failed[type(e).__name__] += 1
        finally:
            started.set()

    async def run(self, count: int, rate: float, inflight: int, conn) -> None:
        tasks, started = [], []
        # At most `inflight` handshakes at once: the ramp goes as fast as the stack completes
        # them (a ramp faster than that only queues handshakes until nginx gives up: 504).
        slots = asyncio.Semaphore(inflight)
        # One session, no pool limit (aiohttp's default is 100 connections per session).
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=self.ctx, force_close=True)
        )
        for _ in range(count):
            await slots.acquire()
            started.append(Started(slots))
            tasks.append(asyncio.create_task(self.one(started[-1])))
            await asyncio.sleep(1 / rate)
        # Every connection either subscribed or failed: report, then hold until told to stop.
        await asyncio.gather(*(event.wait() for event in started))
        conn.send({"connected": self.connected, "failed": dict(self.failed)})
        # CPU seconds when the events start and once they are delivered: the generator's
        # share of the fan-out's CPU.
        while await asyncio.get_running_loop().run_in_executor(None, conn.recv) != "stop":
            conn.send(cpu_seconds())
        conn.send(
            {"latencies": self.latencies, "closed": dict(self.closed), "cpu_s": cpu_seconds()}
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.session.close()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(base, headers, topic, event_type, count, rate, inflight, conn) -> None:
    uvloop.run(Client(base, headers, topic, event_type).run(count, rate, inflight, conn))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--base", default="https://nginx:8443")
    p.add_argument("--login", default="http://wsgi:8000", help="Django, for the session")
    p.add_argument("--connections", type=int, default=20000)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--rate", type=float, default=400, help="new connections per second, in all")
    p.add_argument("--inflight", type=int, default=256, help="handshakes at once, in all")
    p.add_argument("--events", type=int, default=20)
    p.add_argument("--interval", type=float, default=2, help="seconds between events")
    p.add_argument("--hold", type=float, default=20, help="seconds held before the events")
    p.add_argument("--ready-file", default="", help="created once every connection is up")
    p.add_argument("--phase-dir", default="", help="where events-start, events-done, idle-done go")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    args.boards, args.cards = 0, 0
    browser = dict(h.split(": ", 1) for h in login(args.login, "localhost", args))
    board = api(args.login, browser, "POST", "/api/boards/", {"name": "ws bench"})["id"]
    topic, event_type = f"board.{board}", "card.created"
    # The session's cookies (the real-time token among them); no Origin: a program, not a page.
    headers = {"Cookie": browser["Cookie"]}

    shares = [args.connections // args.procs] * args.procs
    shares[0] += args.connections - sum(shares)
    pipes, procs = [], []
    t0 = time.monotonic()
    ctx = mp.get_context("spawn")
    for share in shares:
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=worker,
            args=(
                args.base,
                headers,
                topic,
                event_type,
                share,
                args.rate / args.procs,
                max(1, args.inflight // args.procs),
                theirs,
            ),
            daemon=True,  # ended with this process, whatever ends it
        )
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    ready = [conn.recv() for conn in pipes]
    ramp_s = time.monotonic() - t0
    connected = sum(r["connected"] for r in ready)
    failed = sum((Counter(r["failed"]) for r in ready), Counter())
    print(f"ws: {connected} of {args.connections} up in {ramp_s:.0f} s; failed {dict(failed)}")
    if args.ready_file:
        Path(args.ready_file).write_text(str(connected))
    time.sleep(args.hold)

    def generator_cpu() -> float:
        for conn in pipes:
            conn.send("cpu")
        return sum(conn.recv() for conn in pipes)

    # The phase files tell the bench when to read the containers' CPU (it polls): a moment
    # after each, before anything else happens.
    phase(args.phase_dir, "events-start")
    cpu_start = generator_cpu()
    sent = 0
    wrote = time.monotonic()
    for i in range(args.events):
        api(args.login, browser, "POST", f"/api/boards/{board}/cards/", {"title": f"ws {i}"})
        sent += 1
        time.sleep(args.interval)
    time.sleep(5)  # the last event's deliveries
    publish_s = time.monotonic() - wrote
    events_cpu = generator_cpu() - cpu_start
    phase(args.phase_dir, "events-done")
    if args.phase_dir:  # the same connections held idle: what the servers use without events
        time.sleep(10)
        phase(args.phase_dir, "idle-done")
    for conn in pipes:
        conn.send("stop")
    done = [conn.recv() for conn in pipes]
    for proc in procs:
        proc.join(30)
    latencies = [x for d in done for x in d["latencies"]]
    closed = sum((Counter(d["closed"]) for d in done), Counter())
    wall = time.monotonic() - t0
    cpu = [round(d["cpu_s"] / wall * 100) for d in done]
    ms = {q: percentile(latencies, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
    result = {
        "connections": args.connections,
        "connected": connected,
        "failed": dict(failed),
        "closed_early": dict(closed),
        "ramp_s": round(ramp_s, 1),
        "events": sent,
        "delivered": len(latencies),
        "expected": sent * connected,
        "latency_ms": {k: v and round(v * 1000) for k, v in ms.items()}
        | {"max": latencies and round(max(latencies) * 1000)},
        "publish_s": round(publish_s, 1),
        "generator_procs": args.procs,
        "generator_cpu_percent_per_proc": cpu,
        # CPU seconds the generator's processes used from the first event to publish_s later.
        "generator_events_cpu_s": round(events_cpu, 2),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2))
    lat = result["latency_ms"]
    table = [
        f"### {args.connections:,} WebSockets through nginx (TLS), fan-out to all of them",
        "",
        "| connected | failed | closed early | events delivered / expected | fan-out p50 | p95 "
        "| p99 | max | generator CPU per process |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
        f"| {connected:,} of {args.connections:,} (ramp {ramp_s:.0f} s) | {dict(failed) or 0} "
        f"| {dict(closed) or 0} | {len(latencies):,} / {sent * connected:,} | {lat['p50']} ms "
        f"| {lat['p95']} ms | {lat['p99']} ms | {lat['max']} ms "
        f"| {', '.join(f'{c}%' for c in cpu)} of a core |",
        "",
    ]
    (out / "compare.md").write_text("\n".join(table))
    print("\n".join(table))


def phase(folder: str, name: str) -> None:
    if folder:
        Path(folder, name).write_text(str(time.time()))
        time.sleep(2)


def api(base: str, browser: dict, method: str, path: str, body: dict) -> dict:
    """A write straight at Django, as nginx forwards it (the bench's login, compare.login)."""
    req = urllib.request.Request(  # noqa: S310 - our own app on the backend network
        base + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={
            **browser,
            "Host": "localhost",
            "X-Forwarded-Proto": "https",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        return json.loads(resp.read() or b"{}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
