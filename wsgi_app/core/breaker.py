"""A per-process circuit breaker for Redis.

When Redis is gone, every attempt can cost seconds (a stopped container's name takes Docker's
DNS 10 s to fail). After one failure the breaker opens: requests skip Redis at once (a cache
miss; an event counted as failed) and a background thread, not a user's request, probes Redis
until it answers again, then closes the breaker.
"""

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 2.0


class Breaker:
    def __init__(self, probe_interval: float = PROBE_INTERVAL_SECONDS):
        self.probe_interval = probe_interval
        self._open = False
        self._lock = threading.Lock()
        self._prober_pid = 0

    def allows(self) -> bool:
        return not self._open

    def trip(self, probe: Callable[[], object]) -> None:
        """Open the breaker; `probe` raises while Redis is away."""
        with self._lock:
            self._open = True
            if self._prober_pid == os.getpid():
                return  # this process already has a prober running
            self._prober_pid = os.getpid()
        threading.Thread(target=self._probe, args=(probe,), name="redis-probe", daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self._open = False

    def _probe(self, probe: Callable[[], object]) -> None:
        while True:
            time.sleep(self.probe_interval)
            try:
                probe()
            except Exception as exc:
                log.debug("redis probe failed: %s", exc)
                continue
            with self._lock:
                self._open = False
                self._prober_pid = 0
            log.warning("redis answers again: breaker closed")
            return


# One Redis server serves the cache and the events here: one failure protects both.
redis_breaker = Breaker()


def ping_redis() -> None:
    from core.events import redis_client

    redis_client().ping()
