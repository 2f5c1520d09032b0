"""The FastAPI application: health, io-wait, the streaming demo, the real-time endpoints and the
domain routers."""

import asyncio
import json
import logging
import secrets
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import docs, metrics, realtime
from .hub import Hub
from .logs import RequestLog, request_id
from .routes import board_export  # example
from .settings import get_settings
from .web import STATUS_CODES, current_user, error, errors

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
    gauges = asyncio.create_task(metrics.track(hub))

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
        gauges.cancel()
        await hub.stop()
        await redis.aclose()


app = FastAPI(
    title="Pykit real-time service",
    version="1.0",
    description="WebSockets, Server-Sent Events and streaming exports. "
    "Auth: the `rt_token` cookie or `Authorization: Bearer` (from `POST /api/realtime/token`).",
    lifespan=lifespan,
    openapi_url="/rt/openapi.json",
    docs_url=None,  # docs.install: self-hosted assets, no CDN
    redoc_url=None,
)
app.add_middleware(RequestLog)
app.include_router(realtime.router)
app.include_router(board_export.router)  # example
docs.install(app)


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
    return error(422, "validation_failed", "the request is not valid", fields)


@app.exception_handler(RedisError)
async def redis_error(request: Request, exc: RedisError) -> JSONResponse:
    log.warning("redis error: %r", exc)
    return error(503, "unavailable", "the event store is not reachable; retry shortly")


# ---- health ---------------------------------------------------------------------------


@app.get("/rt/healthz", tags=["health"])
async def healthz() -> dict:
    """Liveness: the process serves requests."""
    return {"status": "ok"}


@app.get("/rt/readyz", tags=["health"], responses=errors(503))
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


# The Redis client gives up on a reply after 5 s (redis-py's default socket timeout), so a
# longer BLPOP would end in 503: the cap keeps the schema and the behaviour the same.
IO_WAIT_MAX_MS = 4_000


@app.get(
    "/rt/io-wait",
    tags=["demo"],
    responses=errors(401, 422, 503),
)
async def io_wait(
    request: Request,
    ms: int = Query(100, ge=0, le=IO_WAIT_MAX_MS),
    _: object = Depends(current_user),  # a dependency: 401 comes before any 422
) -> dict:
    """Wait `ms` milliseconds on a Redis blocking pop (the same wait as Django's
    /api/io-wait), without holding a thread: the async side of the comparison.
    Needs a real-time token, like every /rt/ endpoint that waits."""
    start = time.perf_counter()
    if ms:
        key = f"iowait:{secrets.token_hex(8)}"
        await request.app.state.redis.blpop([key], timeout=ms / 1000)
    return {"waited_ms": round((time.perf_counter() - start) * 1000, 1)}


# ---- streaming demo -----------------------------------------------------------------------


def stream_frame(i: int) -> bytes:
    """One token as a Server-Sent Event, the shape Django's /api/stream-demo sends too."""
    return f"data: {json.dumps({'i': i, 'text': f'token{i} '})}\n\n".encode()


async def token_stream(count: int, interval: float, rid: str) -> AsyncIterator[bytes]:
    produced, complete = 0, False
    try:
        for i in range(count):
            if i:
                await asyncio.sleep(interval)  # the work between two tokens (a model's next step)
            produced += 1
            yield stream_frame(i)
        complete = True
        yield b"event: end\ndata: {}\n\n"
    finally:
        # A client gone mid-stream: Starlette stops the generator (it sees the disconnect, or
        # the next send fails), so no token is made for nobody; this runs when it is closed.
        log.info(
            "stream ended",
            extra={"request_id": rid, "fields": {"tokens": produced, "complete": complete}},
        )


@app.get(
    "/rt/stream-demo",
    tags=["demo"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "One event per token"},
        **errors(401, 422),
    },
)
async def stream_demo(
    tokens: int = Query(100, ge=1, le=200),
    ms: int = Query(100, ge=0, le=100),
    _: object = Depends(current_user),  # a dependency: 401 comes before any 422
) -> StreamingResponse:
    """`tokens` Server-Sent Events `ms` apart, like a model's answer streamed token by token
    (the async side of the streaming comparison; Django's /api/stream-demo is the sync one).
    A stream waits on the event loop, not in a thread. Needs a real-time token."""
    return StreamingResponse(
        token_stream(tokens, ms / 1000, request_id.get()),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )
