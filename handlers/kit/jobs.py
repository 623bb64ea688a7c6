"""Background jobs a handler starts and does not wait for (a long file import). A job runs
with its own transactions, after and apart from the update's unit of work; the runner keeps
its tasks so that shutdown — and a test — can wait for them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from infra.logsafe import describe_exception

log = logging.getLogger(__name__)


class Jobs:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._lanes: dict[str, asyncio.Semaphore] = {}

    def start(
        self, job: Coroutine[Any, Any, None], *, name: str, lane: str | None = None
    ) -> asyncio.Task[None]:
        """Jobs of one `lane` run one at a time, in the order started (the others wait): a lane
        of heavy jobs (imports) costs one connection and one thread however many are sent."""
        gate = self._lanes.setdefault(lane, asyncio.Semaphore(1)) if lane is not None else None
        task = asyncio.create_task(self._run(job, name, gate), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def waiting(self, lane: str) -> bool:
        """Whether a job started now in `lane` would wait for another."""
        gate = self._lanes.get(lane)
        return gate is not None and gate.locked()

    @staticmethod
    async def _run(job: Coroutine[Any, Any, None], name: str, gate: asyncio.Semaphore | None) -> None:
        try:
            if gate is None:
                await job
            else:
                async with gate:
                    await job
        except asyncio.CancelledError:
            log.warning("job %s cancelled", name)
            raise
        except Exception as exc:  # a job has no caller to raise to: log it, keep the bot running
            log.error("job %s failed:\n%s", name, describe_exception(exc))
        finally:
            job.close()  # a job cancelled while waiting in its lane never started

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        """Until every job (including ones started meanwhile) is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, timeout: float = 30.0) -> None:
        """At shutdown: let running jobs finish for `timeout` seconds, then cancel them."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
