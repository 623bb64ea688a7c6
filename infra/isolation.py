"""One update at a time per person across processes, through PostgreSQL advisory locks; and
the once-across-instances guard for scheduled jobs.

Several bot instances on one PostgreSQL without Redis still must not handle two updates of one
person at the same time (an album's photos arrive as separate updates, possibly at different
instances; both would read the draft and the last write would drop the other file).
`PgAdvisoryIsolation` is aiogram's event isolation backed by session-level advisory locks:

- The key of a person (bot, chat, user, ...) is hashed to a signed 64-bit number (blake2b,
  stable across processes and Python versions, unlike `hash()`).
- First an in-process lock per key: only one local waiter per person talks to PostgreSQL, and
  a session-level lock is re-entrant for its session, so two local holders on our one
  connection would otherwise both "get" it.
- Then `pg_try_advisory_lock` on one dedicated connection (its own engine of one connection,
  in autocommit), polled with a short backoff while another instance holds the person. Not a
  blocking `pg_advisory_lock`: that would park a connection per waiting update, so the
  connections would grow with the load; polling keeps it to one connection per process, and
  contention (one person's updates at two instances at once) is rare and short.
- Session-level, not transaction-scoped: the lock must outlive the update's own transaction,
  which may commit before the update is done (e.g. before waiting for a send slot).
- Released with `pg_advisory_unlock` when the update is done. If the connection dies, PostgreSQL
  releases its locks itself; the next call reconnects and carries on (a holder at that moment
  has lost its lock: logged).
- Waiting is bounded (`wait_timeout`): past it `PersonLockTimeout`, an error that says so.

SQLite keeps aiogram's in-process isolation: the database is one file used by one process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncGenerator, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from infra.db import create_engine

log = logging.getLogger(__name__)

WAIT_TIMEOUT = 30.0  # seconds an update may wait for its person's lock
POLL_FIRST = 0.005
POLL_MAX = 0.05
CALL_TIMEOUT = 5.0  # one lock statement; a silent connection is given up after this

# Run on the driver's connection (asyncpg), not through SQLAlchemy: a third of the time per
# statement, and every update pays two of them.
_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
_UNLOCK = "SELECT pg_advisory_unlock($1)"


def advisory_key(*parts: object) -> int:
    """A stable signed 64-bit advisory lock key for these parts (the first names the kind of
    lock, so a person's lock and a job's lock never share a key)."""
    raw = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


def person_key(key: StorageKey) -> int:
    return advisory_key(
        "person",
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id,
        key.business_connection_id,
        key.destiny,
    )


class PersonLockTimeout(TimeoutError):
    """Waited too long for a person's lock: another update of theirs (here or at another
    instance) did not finish in time."""


@dataclass
class _Local:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holders and waiters; the entry goes when it drops to zero


class PgAdvisoryIsolation(BaseEventIsolation):
    """Per-person update lock shared by all processes on one PostgreSQL database (see module doc)."""

    def __init__(
        self,
        url: str,
        *,
        wait_timeout: float = WAIT_TIMEOUT,
        poll_first: float = POLL_FIRST,
        poll_max: float = POLL_MAX,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        # Nothing connects here: the engine opens its one connection at the first lock.
        self.engine: AsyncEngine = create_engine(url, pool_size=1, max_overflow=0)
        self.wait_timeout = wait_timeout
        self.poll_first = poll_first
        self.poll_max = poll_max
        self.call_timeout = call_timeout
        self._conn: AsyncConnection | None = None  # checked out of the engine for good
        self._driver: Any = None  # its asyncpg connection
        self._generation = 0  # changes with the connection: locks die with theirs
        self._io = asyncio.Lock()  # one statement at a time on the connection
        self._local: dict[int, _Local] = {}
        self._cleanup: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        k = person_key(key)
        deadline = asyncio.get_running_loop().time() + self.wait_timeout
        local = self._local.setdefault(k, _Local())
        local.users += 1
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await local.lock.acquire()
            except TimeoutError:
                raise PersonLockTimeout(
                    f"an update waited {self.wait_timeout:.0f} s for its person's lock in this process"
                ) from None
            try:
                generation = await self._acquire(k, deadline)
                try:
                    yield
                finally:
                    # Shielded: an update cancelled now must still give the lock back.
                    await self._shielded(self._release(k, generation))
            finally:
                local.lock.release()
        finally:
            local.users -= 1
            if local.users == 0:
                self._local.pop(k, None)

    async def close(self) -> None:
        """Close the lock connection (PostgreSQL releases whatever it held) and its engine. Safe
        to call twice; a later lock reconnects."""
        async with self._io:
            await self._drop()
        await self.engine.dispose()

    # -- locking ---------------------------------------------------------------------------------
    async def _acquire(self, k: int, deadline: float) -> int:
        """Poll until this process holds `k`; returns the generation of the connection holding it."""
        loop = asyncio.get_running_loop()
        delay = self.poll_first
        while True:
            attempt = asyncio.ensure_future(self._try_lock(k))
            try:
                got, generation = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The statement runs on: if it takes the lock after all, give it back.
                attempt.add_done_callback(lambda done: self._undo(k, done))
                raise
            if got:
                return generation
            if loop.time() + delay > deadline:
                raise PersonLockTimeout(
                    f"an update waited {self.wait_timeout:.0f} s for its person's lock, held by "
                    "another instance"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.poll_max)

    async def _try_lock(self, k: int) -> tuple[bool, int]:
        """One `pg_try_advisory_lock`; a dead connection is replaced and the statement tried once
        more on the new one."""
        async with self._io:
            for attempt in (1, 2):
                try:
                    driver = await self._connection()
                    got = await driver.fetchval(_TRY_LOCK, k, timeout=self.call_timeout)
                    return bool(got), self._generation
                # Whatever a statement this simple fails with, the connection is not usable
                # (closed, cut, timed out, the server gone or restarting).
                except Exception:
                    await self._drop()
                    if attempt == 2:
                        raise
                    log.warning("the person-lock database connection failed; reconnecting")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _release(self, k: int, generation: int) -> None:
        async with self._io:
            if generation != self._generation or self._driver is None:
                # The connection that held it is gone, and the lock with it.
                log.warning("a person's lock was lost with its database connection before the update ended")
                return
            try:
                released = await self._driver.fetchval(_UNLOCK, k, timeout=self.call_timeout)
            except Exception:
                # PostgreSQL released the locks of the connection that is gone, maybe before the
                # update ended.
                await self._drop()
                log.warning("a person's lock was lost with its database connection")
                return
        if not released:
            log.warning("a person's lock was no longer held at release")

    def _undo(self, k: int, attempt: asyncio.Future[tuple[bool, int]]) -> None:
        if attempt.cancelled() or attempt.exception() is not None:
            return
        got, generation = attempt.result()
        if got:
            # Session locks stack: this unlock takes back exactly the one taken for nobody.
            self._spawn(self._release(k, generation))

    async def _shielded(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._spawn(work)
        await asyncio.shield(task)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._cleanup.add(task)
        task.add_done_callback(self._cleanup.discard)
        return task

    # -- the connection --------------------------------------------------------------------------
    async def _connection(self) -> Any:
        """The asyncpg connection the locks live on (connecting when there is none). Only our two
        statements run on it, outside any transaction: it never sits "idle in transaction"."""
        if self._driver is None or self._driver.is_closed():
            await self._drop()
            async with asyncio.timeout(self.call_timeout):
                conn = await self.engine.connect()
                raw = await conn.get_raw_connection()
            self._conn, self._driver = conn, raw.driver_connection
            self._generation += 1
        return self._driver

    async def _drop(self) -> None:
        conn, driver = self._conn, self._driver
        self._conn = self._driver = None
        if conn is None:
            return
        self._generation += 1  # whatever it held is released, by us or by PostgreSQL
        with suppress(Exception):
            driver.terminate()  # at once, without a goodbye to a server that may not answer
        with suppress(Exception):
            await conn.invalidate()
        with suppress(Exception):
            await conn.close()


# -- scheduled jobs -------------------------------------------------------------------------------
async def try_job_lock(session: AsyncSession, job: str) -> bool:
    """Take this job's lock for the session's transaction: False when another instance runs the
    job right now (it does the same work; skip this run). Released at commit or rollback.

    On SQLite there is one process and its transactions take the write lock up front: True."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    got = await session.scalar(select(func.pg_try_advisory_xact_lock(advisory_key("job", job))))
    return bool(got)
