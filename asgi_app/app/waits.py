"""asyncio.Event and asyncio.Queue for what every held connection keeps, at a fraction of their
memory.

asyncio's Event allocates a deque for its waiters (~0.8 KiB) and its Queue three (~3.2 KiB),
whether anyone ever waits or not. A WebSocket held here kept four Events and a Queue (Uvicorn's
and the app's): ~6.6 KiB of each connection's ~41 KiB doing nothing (docs/benchmarks.md). These
keep a plain flag or list, and a waiter future only while someone waits.
"""

import asyncio


class Flag:
    """asyncio.Event's set/clear/is_set/wait, plus `waiter()`: a future to hand to
    asyncio.wait without a task around `wait()`."""

    __slots__ = ("_set", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._set = value
        self._waiters: list[asyncio.Future] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(True)

    def clear(self) -> None:
        self._set = False

    def waiter(self) -> asyncio.Future:
        """A future done once the flag is set (at once if it is). Cancel it when no longer
        needed; a cancelled waiter is dropped at the next set or waiter."""
        fut = asyncio.get_running_loop().create_future()
        if self._set:
            fut.set_result(True)
            return fut
        waiters = self._waiters = [w for w in self._waiters or () if not w.done()]
        waiters.append(fut)
        return fut

    async def wait(self) -> bool:
        if self._set:
            return True
        fut = self.waiter()
        try:
            return await fut
        finally:
            fut.cancel()  # cancelled while waiting: dropped at the next set or waiter


class Inbox:
    """asyncio.Queue's put_nowait/get/empty, unbounded (as Uvicorn uses it)."""

    __slots__ = ("_items", "_ready")

    def __init__(self) -> None:
        self._items: list = []
        self._ready = Flag()

    def put_nowait(self, item) -> None:
        self._items.append(item)
        self._ready.set()

    def empty(self) -> bool:
        return not self._items

    async def get(self):
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.pop(0)
