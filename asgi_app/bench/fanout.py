"""Fan-out benchmark, through nginx over TLS, against a running stack.

Opens N WebSockets subscribed to one board, measures the asgi replicas' memory before and
after (memory per idle connection), then creates cards through Django's API and measures,
for every (event, subscriber) pair, the time from Django's commit (the envelope's `ts`, set
right after the commit) to receipt by the client. Clients run in several processes so that
one Python process parsing 1,000 frames per event does not dominate the figure.

    python asgi_app/bench/fanout.py --url https://127.0.0.1:38443 --user alice \
        --password "$E2E_PASSWORD" --project ka --subscribers 1000 --events 30

Needs: httpx, websockets, docker (the e2e image has them). nginx limits handshakes and
connections per IP: run it from an address in NGINX_RATE_ALLOWLIST.
"""

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import ssl
import statistics
import time
from datetime import datetime

import docker
import httpx
import websockets


def tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the stack's self-signed certificate
    return ctx


def ts_seconds(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


async def client_group(url, token, topic, n, ready, go, out, hold, connect_ip, connect_port):
    """n subscribers in this process; report (opened, latencies)."""
    ws_url = url.replace("https://", "wss://") + "/rt/ws"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    conns = []
    sem = asyncio.Semaphore(50)
    ctx = tls()

    async def open_one():
        async with sem:
            # connect_ip: nginx's own address, to bypass Docker's userland port proxy, which
            # is not what is measured and gave out at a few thousand connections.
            extra = {"host": connect_ip, "port": connect_port} if connect_ip else {}
            ws = await websockets.connect(
                ws_url,
                ssl=ctx,
                additional_headers=headers,
                open_timeout=60,
                max_queue=None,
                **extra,
            )
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
            while json.loads(await ws.recv())["type"] != "subscribed":
                pass
            conns.append(ws)

    results = await asyncio.gather(*(open_one() for _ in range(n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    ready.put((len(conns), [repr(e) for e in errors[:3]]))

    async def reader(ws):
        async for raw in ws:
            now = time.time()
            m = json.loads(raw)
            if m["type"] == "event" and m["event"]["type"] == "card.created":
                latencies.append(now - ts_seconds(m["event"]["ts"]))

    tasks = [asyncio.create_task(reader(ws)) for ws in conns]
    await asyncio.to_thread(go.wait)
    await asyncio.sleep(hold)
    for t in tasks:
        t.cancel()
    out.put(latencies)
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


def run_group(*args):
    asyncio.run(client_group(*args))


def asgi_memory(project: str) -> dict[str, int]:
    """Resident memory (bytes) of the Uvicorn process in each asgi container."""
    d = docker.from_env()
    found = d.containers.list(
        filters={
            "label": [f"com.docker.compose.project={project}", "com.docker.compose.service=asgi"]
        }
    )
    out = {}
    for c in found:
        _rc, text = c.exec_run(["python", "-c", "print(open('/proc/1/status').read())"])
        kb = next(int(x.split()[1]) for x in text.decode().splitlines() if x.startswith("VmRSS"))
        out[c.name] = kb * 1024
    return out


def asgi_cpu_seconds(project: str) -> float:
    """CPU time used so far by the Uvicorn process of each asgi container (/proc/1/stat):
    what a sweep costs the server, which a busy machine's wall-clock latency hides."""
    d = docker.from_env()
    found = d.containers.list(
        filters={
            "label": [f"com.docker.compose.project={project}", "com.docker.compose.service=asgi"]
        }
    )
    ticks = 0
    for c in found:
        _rc, text = c.exec_run(["cat", "/proc/1/stat"])
        fields = text.decode().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return ticks / 100  # USER_HZ


def pct(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=1000)[int(p * 10) - 1] if len(xs) > 1 else xs[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="https://127.0.0.1:443")
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", required=True)
    ap.add_argument("--project", default="pykit")
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--events", type=int, default=30)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--connect-ip", help="nginx's container IP (Host stays the --url host)")
    ap.add_argument("--connect-port", type=int, default=8443, help="nginx's port in its container")
    a = ap.parse_args()

    api = httpx.Client(base_url=a.url, verify=False, timeout=30)  # noqa: S501
    if a.connect_ip:
        api = httpx.Client(
            base_url=f"https://{a.connect_ip}:{a.connect_port}",
            headers={"Host": a.url.split("://", 1)[1]},
            verify=False,  # noqa: S501
            timeout=30,
        )
    r = api.post("/api/auth/login", json={"username": a.user, "password": a.password})
    r.raise_for_status()
    api.headers.update({"X-CSRFToken": api.cookies["csrftoken"], "Referer": a.url + "/"})
    board = api.post("/api/boards/", json={"name": f"bench-{time.time_ns()}"}).json()["id"]
    token = api.post("/api/realtime/token").json()["token"]
    topic = f"board.{board}"

    before = asgi_memory(a.project)
    ready, out, go = mp.Queue(), mp.Queue(), mp.Event()
    per = a.subscribers // a.procs
    hold = a.events * a.interval + 15  # late deliveries still count on a loaded box
    procs = [
        mp.Process(
            target=run_group,
            args=(a.url, token, topic, per, ready, go, out, hold, a.connect_ip, a.connect_port),
        )
        for _ in range(a.procs)
    ]
    t0 = time.time()
    for p in procs:
        p.start()
    opened, errors = 0, []
    for _ in procs:
        n, errs = ready.get(timeout=600)
        opened += n
        errors += errs
    print(f"opened {opened}/{a.subscribers} WebSockets in {time.time() - t0:.1f}s {errors}")
    time.sleep(5)  # settle: idle connections only
    after = asgi_memory(a.project)
    delta = sum(after.values()) - sum(before.values())
    print(
        f"asgi RSS before {sum(before.values()) / 2**20:.1f} MiB, with {opened} idle "
        f"connections {sum(after.values()) / 2**20:.1f} MiB: {delta / max(opened, 1) / 1024:.1f} "
        f"KiB per connection ({ {k: round(v / 2**20, 1) for k, v in after.items()} })"
    )

    go.set()
    time.sleep(1)
    cpu_before = asgi_cpu_seconds(a.project)
    for i in range(a.events):
        api.post(f"/api/boards/{board}/cards/", json={"title": f"bench {i}"}).raise_for_status()
        time.sleep(a.interval)
    time.sleep(2)  # the last sweep done
    cpu_used = asgi_cpu_seconds(a.project) - cpu_before
    print(
        f"asgi CPU while {a.events} events went to {opened} subscribers: {cpu_used:.2f} s, "
        f"{1000 * cpu_used / a.events:.1f} ms per event (idle keepalive included)"
    )
    lat = []
    for _ in procs:
        lat += out.get(timeout=hold + 60)
    for p in procs:
        p.join()
    # The load generator must not be the bottleneck: its client processes' CPU over the run.
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.time() - t0
    print(
        f"client processes: {cpu.ru_utime + cpu.ru_stime:.1f} CPU s in {wall:.0f} s "
        f"({100 * (cpu.ru_utime + cpu.ru_stime) / wall:.0f} % of one core)"
    )
    expected = opened * a.events
    ms = sorted(x * 1000 for x in lat)
    print(f"delivered {len(ms)}/{expected} (event, subscriber) pairs")
    print(
        f"commit -> client latency at {opened} subscribers: p50 {pct(ms, 50):.1f} ms, "
        f"p99 {pct(ms, 99):.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
