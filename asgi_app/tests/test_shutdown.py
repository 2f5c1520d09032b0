"""Graceful shutdown: on SIGTERM WebSockets close with 1012 and SSE streams end."""

import asyncio
import signal
import time

import httpx

from .conftest import Server, bearer, member_token, run
from .helpers import closed_code, connect, subscribe


def test_sigterm_closes_websockets_with_1012_and_ends_sse(room):
    server = Server()
    token = member_token(1, room)
    topic = f"room.{room}"

    async def go():
        ws = await connect(server, token)
        await subscribe(ws, topic)
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as c,
            c.stream("GET", "/rt/sse", params={"topics": topic}, headers=bearer(token)) as s,
        ):
            lines = s.aiter_lines()
            assert await anext(lines) == "retry: 2000"
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            code = await closed_code(ws, wait=10)
            async with asyncio.timeout(10):
                async for _ in lines:
                    pass  # the stream ends, rather than being cut at the graceful timeout
            ended = time.monotonic() - started
        return code, ended

    try:
        code, ended = run(go())
        exit_code = server.proc.wait(15)
    finally:
        server.stop()
    assert code[0] == 1012  # from the app ("service restart") or Uvicorn, whichever is first
    assert ended < 5  # well before --timeout-graceful-shutdown (10 s here)
    # Uvicorn re-raises the signal it handled once shut down: killed by SIGTERM, on time.
    assert exit_code == -signal.SIGTERM
