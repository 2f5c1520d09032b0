"""The example domain's streaming export: a board's event history as NDJSON.

Part of the example (`.example-paths`): deleting it and its `include_router` line in
app/main.py removes the route.
"""

from collections.abc import AsyncIterator

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from .. import access
from ..events import ZERO, format_id, read_after, stream_info
from ..web import current_user, errors, fail

router = APIRouter(tags=["streaming"])


@router.get(
    "/rt/stream/boards/{board_id}/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "One event per line"},
        **errors(401, 403, 404, 422, 503),  # 404: an id that is not one path segment
    },
)
async def export(request: Request, board_id: int = Path(ge=1, le=2**63 - 1)) -> StreamingResponse:
    """The board's whole event history as NDJSON, one envelope per line, oldest first.

    Read from the stream in batches as the client consumes it: memory stays flat
    however long the history is. Ends at the last event that existed when it started."""
    user = current_user(request)
    topic = f"board.{board_id}"
    redis = request.app.state.redis
    try:
        refused = await access.forbidden(redis, user.id, [topic])
    except access.AccessUnavailable as e:
        raise fail(503, "unavailable", str(e)) from e
    if refused:
        raise fail(403, "forbidden", f"you are not a member of board {board_id}")
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
