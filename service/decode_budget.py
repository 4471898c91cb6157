"""The memory budget for decoding uploads: concurrent decodes are bounded by the bytes their
pixels take at the decode's peak, not by their count, so a few huge images wait for room while
small ones keep flowing (no decode thread is ever held waiting: the wait is on the event loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class DecodeBudget:
    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.in_use = 0
        self._room = asyncio.Condition()

    @asynccontextmanager
    async def reserve(self, nbytes: int) -> AsyncIterator[None]:
        """Hold `nbytes` of the budget while the block runs; one decode larger than the whole
        budget runs alone."""
        need = min(nbytes, self.limit_bytes)
        async with self._room:
            await self._room.wait_for(lambda: self.in_use + need <= self.limit_bytes)
            self.in_use += need
        try:
            yield
        finally:
            async with self._room:
                self.in_use -= need
                self._room.notify_all()
