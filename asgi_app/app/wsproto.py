"""Uvicorn's websockets-sansio protocol, changed for close frames, flow, fan-out and memory.

Selected in compose/start with `--ws app.wsproto:WebSocketProtocol`. The changes:

Failing without a reset. When a client breaks the protocol (a frame over --ws-max-size, a bad
frame), Uvicorn writes the close frame (1009, 1002, ...) and closes the socket at once. The
client is usually still sending (the rest of a 4 MiB frame): closing a socket with unread data
sends a TCP reset, which throws away the close frame on its way, and nginx passes the reset on;
the client sees 1006. Here the socket stays open after the close frame and what the client
still sends is read and dropped until it has been quiet for a moment (it has sent everything
and read our close) or a time limit passes; then the socket closes with nothing unread.

Bounded data in flight. Between this process and a client sit socket buffers, nginx's and the
kernel's (several MB once autotuned), so a client that reads too slowly is not seen here until
they are full, and the app's 1013 close frame then waits behind all of it (a minute and more
at a slow reader's pace). So every FLOW_WINDOW bytes of messages carry a ping, and once
FLOW_PINGS of them are unanswered, sends wait: a pong comes back only when the client has
read up to its ping, so no more than FLOW_WINDOW x FLOW_PINGS is ever on its way. A slow
client's events then wait in the app's bounded queue, which closes it with 1013; that close
frame is written at once, behind at most that much.

Writing at once. A live event goes to every subscriber of a topic in one sweep. Through ASGI,
each delivery wakes that connection's send task and passes Starlette, Uvicorn and a timeout
(about half of the process' CPU at 1,000 subscribers, measured with py-spy). `send_now`, offered
to the app as the scope extension `kit.send_now`, writes a text message to the socket in the
sweep itself when nothing stands in the way (socket writable, flow window open, nothing queued
before it), and the frame's bytes are built once per message, not once per subscriber.
Otherwise it declines and the app queues the message for its send task, as before.

Forgetting the handshake. Uvicorn and websockets keep the handshake's request and response
for the connection's life; at tens of thousands of idle connections that is memory for
nothing (`forget_handshake`, docs/benchmarks.md).
"""

from asyncio import TimerHandle
from itertools import count

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from .waits import Flag, Inbox

DRAIN_QUIET = 1.0  # seconds without data: the client is done sending
DRAIN_LIMIT = 10.0  # seconds at most, however long the client keeps sending
CLOSE_TIMEOUT = 30.0  # seconds for the client to read up to our close frame and answer it
FLOW_WINDOW = 32 * 1024  # message bytes (text: characters) between two flow pings
FLOW_PINGS = 4  # unanswered flow pings before sends wait: at most ~128 KiB in flight

# The last text frame built by send_now: one event's frame goes to every subscriber in one
# sweep, as the same str object, so one entry is enough.
_last_frame: tuple[str | None, bytes] = (None, b"")


def text_frame(text: str) -> bytes:
    """A server's (unmasked) text frame without extensions, built once per message."""
    global _last_frame
    if _last_frame[0] is not text:
        _last_frame = (text, Frame(Opcode.TEXT, text.encode()).serialize(mask=False))
    return _last_frame[1]


class WebSocketProtocol(WebSocketsSansIOProtocol):
    draining: TimerHandle | None = None  # the quiet timer, while draining

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.close_timeout = CLOSE_TIMEOUT  # uvicorn: 10 s
        # Uvicorn's asyncio Queue and Event, swapped for lighter ones (app/waits.py) before
        # anything is queued or awaited: ~4 KiB less per connection.
        self.queue = Inbox()
        self.writable = Flag(True)
        self.flow_ids = count()
        self.flow_pings: list[bytes] = []  # sent, not answered yet, oldest first
        self.flow_sent = 0  # message bytes since the last flow ping
        self.flow_open = Flag(True)

    def handle_connect(self, event) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # the handshake goes on: the app gets the scope
            self.scope["extensions"]["kit.send_now"] = self.send_now

    def send_now(self, text: str) -> bool:
        """Write a text message now, if nothing stands in the way; False: queue it instead."""
        if (
            self.close_sent
            or not self.handshake_complete
            or not self.writable.is_set()  # the socket's buffer is full (pause_writing)
            or not self.flow_open.is_set()
            or self.conn.state is not State.OPEN
            or self.conn.expect_continuation_frame
            or self.conn.extensions  # per-message deflate: each connection's own bytes
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(b"".join((*self.conn.data_to_send(), text_frame(text))))
        self.flow_sent += len(text)
        if self.flow_sent >= FLOW_WINDOW:
            self.send_flow_ping()
        return True

    # ---- bounded data in flight --------------------------------------------------------

    async def send(self, message) -> None:
        if message["type"] == "websocket.close" and self.handshake_complete:
            # A few bytes: queue them now, even if the client reads nothing (a stalled client
            # is what this closes). No message follows a close, so flow control is not lost.
            self.writable.set()
        elif message["type"] == "websocket.send":
            await self.flow_open.wait()
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self.forget_handshake()
        if message["type"] == "websocket.send" and not self.close_sent:
            self.flow_sent += len(message.get("text") or message.get("bytes") or "")
            if self.flow_sent >= FLOW_WINDOW:
                self.send_flow_ping()

    def forget_handshake(self) -> None:
        """Drop the handshake's request and response (headers the scope already has), which
        would otherwise be held for the connection's life: ~4 KiB of each one's memory."""
        self.request = self.response = None
        # websockets' parser, a generator that goes on to parse frames, keeps the request in
        # a local of its first part; cleared through its frame (written through since 3.13).
        frame = getattr(self.conn.parser, "gi_frame", None)
        if frame is not None and "request" in frame.f_locals:
            frame.f_locals["request"] = None

    def send_flow_ping(self) -> None:
        self.flow_sent = 0
        payload = b"flow%d" % next(self.flow_ids)
        self.flow_pings.append(payload)
        self.conn.send_ping(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if len(self.flow_pings) >= FLOW_PINGS:
            self.flow_open.clear()

    def handle_pong(self, event) -> None:
        payload = bytes(event.data)
        if payload not in self.flow_pings:
            super().handle_pong(event)  # Uvicorn's keepalive
            return
        while self.flow_pings.pop(0) != payload:
            pass  # a pong answers every ping before it too
        self.flow_open.set()

    # ---- failing without a reset -----------------------------------------------------------

    def handle_parser_exception(self) -> None:
        assert self.conn.close_sent is not None
        close = self.conn.close_sent
        event = {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
        self.queue.put_nowait(event)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.stop_keepalive()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # close_timer set: run_asgi leaves the socket open when the app returns.
        self.close_timer = self.loop.call_later(DRAIN_LIMIT, self.transport.close)
        self.draining = self.loop.call_later(DRAIN_QUIET, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self.draining is None:
            super().data_received(data)
            return
        # websockets would discard it too after failing; only the silence after it matters.
        self.draining.cancel()
        self.draining = self.loop.call_later(DRAIN_QUIET, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.draining is not None:
            self.draining.cancel()
        self.flow_open.set()  # a waiting send finds the connection gone
        super().connection_lost(exc)
