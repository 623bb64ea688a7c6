"""A virtual clock for rate-limiter tests: `sleep` parks the caller until virtual time reaches
its deadline; `run` moves time from one deadline to the next whenever every other task is
blocked, so minutes of sending take milliseconds and concurrent sleepers overlap as in real
time (unlike a fake sleep that just adds its delay to the clock). Only for code that waits on
nothing but this clock and other tasks (no sockets, no threads)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), future))
        await future

    async def _quiet(self) -> None:
        """Return once every other task is blocked (the loop has nothing else ready)."""
        loop = asyncio.get_running_loop()
        for _ in range(100_000):
            await asyncio.sleep(0)
            if not loop._ready:  # type: ignore[attr-defined]
                return
        raise RuntimeError("the tasks never settle")

    async def run(self, until: float, *, stop: Callable[[], bool] | None = None) -> None:
        """Advance virtual time up to `until` (absolute), or until `stop()` holds."""
        while True:
            await self._quiet()
            if stop is not None and stop():
                return
            while self._timers and self._timers[0][2].done():
                heapq.heappop(self._timers)
            if not self._timers or self._timers[0][0] > until:
                self.now = max(self.now, until)
                await self._quiet()
                return
            deadline = self._timers[0][0]
            self.now = max(self.now, deadline)
            while self._timers and self._timers[0][0] <= deadline:
                _, _, future = heapq.heappop(self._timers)
                if not future.done():
                    future.set_result(None)

    async def gather(self, *aws: Awaitable[object], limit: float = 3600.0) -> list[object]:
        """Run awaitables to completion on virtual time (at most `limit` virtual seconds)."""
        tasks = [asyncio.ensure_future(a) for a in aws]
        await self.run(self.now + limit, stop=lambda: all(t.done() for t in tasks))
        if not all(t.done() for t in tasks):
            for task in tasks:
                task.cancel()
            raise AssertionError("not done within the virtual time limit")
        return [t.result() for t in tasks]
