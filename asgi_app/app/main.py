"""The FastAPI application: health, io-wait, export, and the real-time endpoints."""

import asyncio
import logging
import secrets
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import realtime
from .events import ZERO, format_id, read_after, stream_info
from .hub import Hub
from .settings import get_settings
from .web import STATUS_CODES, current_user, error, fail

log = logging.getLogger("asgi")


class Shutdown:
    """Set on SIGTERM/SIGINT, before Uvicorn stops, so long-lived streams end on their own.

    Uvicorn closes WebSockets with 1012 itself, but an SSE response runs until the app ends
    it; without this it would hold shutdown up to --timeout-graceful-shutdown and be cut.
    """

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            self._previous[sig] = previous

            def handler(signum, frame, previous=previous):
                loop.call_soon_threadsafe(self.event.set)
                if callable(previous):
                    previous(signum, frame)  # Uvicorn's own handler: it still shuts down

            signal.signal(sig, handler)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    # A bounded pool: under a connection storm requests wait for a connection (then 503)
    # instead of opening thousands of sockets to Redis.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        decode_responses=True,
        max_connections=settings.redis_max_connections,
        timeout=10,
        health_check_interval=30,
    )
    redis = Redis(connection_pool=pool)
    hub = Hub(redis, settings)
    shutdown = Shutdown()
    shutdown.install()
    await hub.start()

    async def close_on_shutdown() -> None:
        await shutdown.event.wait()
        # WebSockets get 1012 (service restart), SSE streams end: clients reconnect elsewhere.
        hub.close_all(1012, "service restart")

    closer = asyncio.create_task(close_on_shutdown())
    app.state.settings, app.state.redis, app.state.hub = settings, redis, hub
    app.state.shutdown = shutdown.event
    try:
        yield
    finally:
        closer.cancel()
        await hub.stop()
        await redis.aclose()


app = FastAPI(
    title="Pykit real-time service",
    version="1.0",
    description="WebSockets, Server-Sent Events and streaming for the boards. "
    "Auth: the `rt_token` cookie or `Authorization: Bearer` (from `POST /api/realtime/token`).",
    lifespan=lifespan,
    openapi_url="/rt/openapi.json",
    docs_url="/rt/docs",
    redoc_url=None,
)
app.include_router(realtime.router)


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if isinstance(exc.detail, dict):
        resp = error(exc.status_code, exc.detail["code"], exc.detail["message"])
    else:
        resp = error(exc.status_code, STATUS_CODES.get(exc.status_code, "error"), str(exc.detail))
    if exc.headers:
        resp.headers.update(exc.headers)
    return resp


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    fields = {".".join(str(p) for p in e["loc"][1:]) or "request": e["msg"] for e in exc.errors()}
    return error(422, "invalid", "the request is not valid", fields)


@app.exception_handler(RedisError)
async def redis_error(request: Request, exc: RedisError) -> JSONResponse:
    log.warning("redis error: %r", exc)
    return error(503, "unavailable", "the event store is not reachable; retry shortly")


# ---- health ---------------------------------------------------------------------------


@app.get("/rt/healthz", tags=["health"])
async def healthz() -> dict:
    """Liveness: the process serves requests."""
    return {"status": "ok"}


@app.get("/rt/readyz", tags=["health"])
async def readyz(request: Request) -> JSONResponse:
    """Readiness: Redis answers, and the process is not shutting down."""
    if request.app.state.shutdown.is_set():
        return error(503, "shutting_down", "this process is stopping")
    try:
        async with asyncio.timeout(2):
            await request.app.state.redis.ping()
    except (RedisError, OSError, TimeoutError):
        return error(503, "unavailable", "redis does not answer")
    return JSONResponse({"status": "ok"})


# ---- io-wait ------------------------------------------------------------------------------


@app.get("/rt/io-wait", tags=["demo"])
async def io_wait(request: Request, ms: int = Query(100, ge=0, le=10_000)) -> dict:
    """Wait `ms` milliseconds on a Redis blocking pop (the same wait as Django's
    /api/io-wait), without holding a thread: the async side of the comparison."""
    start = time.perf_counter()
    if ms:
        key = f"iowait:{secrets.token_hex(8)}"
        await request.app.state.redis.blpop([key], timeout=ms / 1000)
    return {"waited_ms": round((time.perf_counter() - start) * 1000, 1)}


# ---- export ---------------------------------------------------------------------------------


@app.get("/rt/stream/boards/{board_id}/export", tags=["streaming"])
async def export(request: Request, board_id: int = Path(ge=1, le=2**63 - 1)) -> StreamingResponse:
    """The board's whole event history as NDJSON, one envelope per line, oldest first.

    Read from the stream in batches as the client consumes it: memory stays flat
    however long the history is. Ends at the last event that existed when it started."""
    user = current_user(request)
    topic = f"board.{board_id}"
    if not user.may_read(topic):
        raise fail(403, "forbidden", f"you are not a member of board {board_id}")
    redis = request.app.state.redis
    info = await stream_info(redis, topic)
    end = info[0] if info else ZERO

    async def lines() -> AsyncIterator[str]:
        after = ZERO
        while after < end:
            events, after, n = await read_after(redis, topic, after, 500, until=format_id(end))
            if events:
                yield "".join(ev.envelope_json + "\n" for ev in events)
            if n == 0:
                break

    filename = f"board-{board_id}-events.ndjson"
    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Accel-Buffering": "no",
            "Cache-Control": "no-store",
        },
    )
