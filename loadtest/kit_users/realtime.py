"""Real-time clients: a WebSocket subscriber and an SSE subscriber of the shared topic.

Both report, as Locust request entries:
- `ws-connect` / `sse-connect`: the time to a usable subscription;
- `ws-fanout` / `sse-fanout`: fan-out latency, the event's `ts` (stamped by the writer after its
  commit) to receipt here. Locust and the stack share the host's clock, so the difference is real.
  Only when a writer fills the shared topic (common.share_topic): core alone has none.
An event that arrives twice or out of order is a failure: the contract is exactly once, in order.
"""

from __future__ import annotations

import json
import random
import ssl
import time

import gevent
import gevent.lock
import websocket
from locust import between, constant, task
from locust.exception import StopUser

from .common import KitUser, event_age_ms, event_id_key, next_account, shared_topic

# Subscribers are browser tabs: many share one logged-in session. One user per process and
# account logs in and fetches a token; the others reuse it while it is fresh (TTL is 300 s).
SHARED_TOKEN_SECONDS = 240.0
_tokens: dict[str, tuple[float, str, str]] = {}  # account -> (fetched at, token, topic)
_token_lock = gevent.lock.Semaphore()


class OrderChecker:
    """Remembers the last event id per topic and says what is wrong with the next one."""

    def __init__(self) -> None:
        self.last: dict[str, str] = {}

    def problem(self, topic: str, event_id: str) -> str | None:
        last = self.last.get(topic)
        if last is not None and event_id_key(event_id) <= event_id_key(last):
            return f"event {event_id} on {topic} after {last}: duplicate or out of order"
        self.last[topic] = event_id
        return None


class RealtimeUser(KitUser):
    abstract = True
    order: OrderChecker

    logged_in = False

    def on_start(self) -> None:
        self.account = next(next_account)
        self.order = OrderChecker()
        _, self.topic = self.token()

    def token(self) -> tuple[str, str]:
        """A fresh real-time token and the shared topic, logging in only when none is cached."""
        with _token_lock:
            fetched, token, topic = _tokens.get(self.account, (0.0, "", ""))
            if time.monotonic() - fetched > SHARED_TOKEN_SECONDS:
                if not self.logged_in:
                    KitUser.on_start(self)  # login, with the account set above
                    self.logged_in = True
                    self.topic = shared_topic(self)
                token, topic = self.realtime_token(), self.topic
                _tokens[self.account] = (time.monotonic(), token, topic)
        return token, topic

    def record(self, kind: str, name: str, ms: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=ms,
            response_length=length,
            exception=error,
            context={},
        )

    def received(self, prefix: str, kind: str, event: dict, length: int) -> None:
        problem = self.order.problem(event.get("topic", "?"), event.get("id", "0-0"))
        self.record(
            kind,
            f"{prefix}-fanout {event.get('type', 'event')}",
            event_age_ms(event["ts"]),
            length,
            AssertionError(problem) if problem else None,
        )


class WebSocketUser(RealtimeUser):
    """One WebSocket subscribed to the shared topic; pings now and then, like a browser tab."""

    weight = 1
    wait_time = constant(20)

    ws: websocket.WebSocket | None = None
    receiver: gevent.Greenlet | None = None
    stopping = False

    def on_start(self) -> None:
        super().on_start()
        self.connect()

    def on_stop(self) -> None:
        self.stopping = True
        if self.receiver is not None:
            self.receiver.kill(block=False)
        if self.ws is not None:
            self.ws.close()

    def connect(self) -> None:
        token, _ = self.token()
        url = self.host.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/rt/ws"
        start = time.perf_counter()
        try:
            ws = websocket.create_connection(
                url,
                header=[f"Authorization: Bearer {token}"],
                # Self-signed certificate of a fresh stack, as for the HTTP users.
                sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False},
                timeout=10,
            )
            subscribe = {"type": "subscribe", "topics": [self.topic]}
            if last := self.order.last.get(self.topic):
                subscribe["last_event_id"] = last  # replay what was missed while away
            ws.send(json.dumps(subscribe))
            while (reply := json.loads(ws.recv())).get("type") != "subscribed":
                if reply.get("type") == "error":
                    raise ConnectionError(f"subscribe refused: {reply}")
        except Exception as error:  # every failure to connect is one failed entry
            self.record("WS", "ws-connect /rt/ws", (time.perf_counter() - start) * 1000, 0, error)
            raise StopUser() from error
        self.record("WS", "ws-connect /rt/ws", (time.perf_counter() - start) * 1000, 0, None)
        # Events come whenever others write: receive in a greenlet of its own.
        ws.settimeout(None)
        self.ws = ws
        self.receiver = gevent.spawn(self.receive, ws)

    def receive(self, ws: websocket.WebSocket) -> None:
        try:
            while True:
                raw = ws.recv()
                message = json.loads(raw)
                if message.get("type") == "event":
                    self.received("ws", "WS", message["event"], len(raw))
                elif message.get("type") == "error":
                    self.record("WS", "ws-fanout error frame", 0, len(raw), RuntimeError(raw))
        except Exception as error:
            if self.stopping:
                return
            code = getattr(ws, "status", None)
            self.record(
                "WS", "ws-connect closed by server", 0, 0, ConnectionError(f"{code} {error}")
            )
            # Like a browser: back off a little, then reconnect with last_event_id.
            gevent.sleep(random.uniform(1, 3))
            if not self.stopping:
                try:
                    self.connect()
                except StopUser:
                    return  # the failed reconnect is already recorded; the user stays idle

    @task
    def ping(self) -> None:
        if self.ws is not None and self.ws.connected:
            self.ws.send(json.dumps({"type": "ping"}))


class SseUser(RealtimeUser):
    """Holds an SSE stream of the shared topic for a while, then reconnects with Last-Event-ID."""

    weight = 1
    wait_time = between(0.5, 2)
    # Heartbeat comments arrive well within this; silence longer than it is a failure.
    network_timeout = 60.0
    hold_seconds = (20.0, 40.0)

    @task
    def stream(self) -> None:
        token, _ = self.token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last := self.order.last.get(self.topic):
            headers["Last-Event-ID"] = last
        # With stream=True, Locust times the request to the response headers: the connect time.
        with self.client.get(
            f"/rt/sse?topics={self.topic}",
            headers=headers,
            stream=True,
            name="sse-connect GET /rt/sse",
            catch_response=True,
        ) as resp:
            ctype = (resp.headers or {}).get("content-type", "")
            if resp.status_code != 200 or not ctype.startswith("text/event-stream"):
                resp.failure(f"SSE: {resp.status_code} {ctype}")
                return
        deadline = time.monotonic() + random.uniform(*self.hold_seconds)
        try:
            self.read_events(resp, deadline)
        except Exception as error:
            self.record("SSE", "sse-connect stream broke", 0, 0, error)
        finally:
            # Closes the socket (the body was not read to its end), never reused half-read.
            resp._response.release()

    def read_events(self, resp, deadline: float) -> None:
        # Line by line from the socket: read(n) would wait for n bytes and delay events.
        data: list[bytes] = []
        while time.monotonic() < deadline:
            line = resp._response.readline(b"\n")
            if not line:
                raise ConnectionError("the server ended the stream")
            line = line.rstrip(b"\r\n")
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip())
            elif not line and data:  # a blank line ends an event
                self.dispatch(b"\n".join(data))
                data = []

    def dispatch(self, payload: bytes) -> None:
        message = json.loads(payload)
        # The data is the envelope; tolerate a {"type": "event", "event": ...} wrapper too.
        event = message.get("event", message) if isinstance(message, dict) else {}
        if "ts" in event and "id" in event:
            self.received("sse", "SSE", event, len(payload))
