"""The memory budget for decoding uploads: concurrent decodes are bounded by the bytes their
pixels take at the decode's peak, not by their count, so a few huge images wait for room while
small ones keep flowing (no decode thread is ever held waiting: the wait is on the event loop).

An upload-check thread that has just read a header takes room with `try_take` and decodes at
once when there is room (one hand-off to the thread instead of two, the usual case); when there
is none, the request waits on the event loop in `reserve`. Room is given back from any thread:
waiters are woken on their loop and try again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class DecodeBudget:
    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.in_use = 0
        self._lock = threading.Lock()
        # Requests waiting for room, each with its loop (touched under the lock only).
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def share(self, nbytes: int) -> int:
        """What a decode of `nbytes` holds: one larger than the whole budget runs alone."""
        return min(nbytes, self.limit_bytes)

    def try_take(self, nbytes: int) -> bool:
        """Take `share(nbytes)` of the budget if there is room now; never waits (any thread)."""
        need = self.share(nbytes)
        with self._lock:
            return self._take_locked(need)

    def _take_locked(self, need: int) -> bool:
        if self.in_use + need > self.limit_bytes:
            return False
        self.in_use += need
        return True

    def give_back(self, nbytes: int) -> None:
        """Return what `try_take(nbytes)` or `reserve(nbytes)` took (any thread); every waiter
        is woken to try again."""
        need = self.share(nbytes)
        with self._lock:
            self.in_use -= need
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            try:
                loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # that loop has closed: nobody waits there any more
                pass

    @asynccontextmanager
    async def reserve(self, nbytes: int) -> AsyncIterator[None]:
        """Hold `share(nbytes)` of the budget while the block runs, waiting on the event loop
        for room."""
        await self.wait_and_take(nbytes)
        try:
            yield
        finally:
            self.give_back(nbytes)

    async def wait_and_take(self, nbytes: int) -> None:
        """Take `share(nbytes)` of the budget, waiting on the event loop until there is room;
        the caller gives it back with `give_back(nbytes)`."""
        need = self.share(nbytes)
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._take_locked(need):
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                with self._lock:
                    if (loop, waiter) in self._waiters:
                        self._waiters.remove((loop, waiter))
                raise


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
