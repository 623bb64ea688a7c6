"""aiogram FSM storage in our own database, so form drafts survive a restart with no Redis.

Inside an update, FSM reads and writes join the update's unit of work (the session the
DB-session middleware opened, published through `current_session`): one connection per
update, and a draft changes atomically with what the handler did. What an update reads or
writes is cached in `session.info`; its writes are collected there and stored once, as one
statement, just before the update commits (`flush_pending`) — a step that sets both data and
state costs one write, and a failed update writes nothing, like the rest of its transaction.
The user middleware may prime the cache with the state it read together with the user row
(`prime`), which saves the separate read. Outside an update (tools, tests) every call is a
short transaction of its own.

The writes are plain SQL text: SQLAlchemy never caches the compiled form of a dialect's
`INSERT … ON CONFLICT`, and compiling it on every write was a quarter of a form step's CPU.
`ON CONFLICT (key) DO UPDATE` is the same on PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import JSON, TextClause, bindparam, delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import utcnow
from models.base import UtcDateTime
from models.fsm import FsmRecord

current_session: ContextVar[AsyncSession | None] = ContextVar("hromada_current_session", default=None)

_CACHE = "fsm_cache"  # key -> (state, data) as this update sees it
_PENDING = "fsm_pending"  # keys this update changed, written by flush_pending
Record = tuple[str | None, dict[str, Any]]


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data (FSM data is stored as JSON anyway); the C JSON codec is many
    times faster than copy.deepcopy, which showed up in the intake profile."""
    return json.loads(json.dumps(data))


@cache
def _upsert(columns: tuple[str, ...]) -> TextClause:
    """`INSERT … ON CONFLICT` writing `columns` (a first write inserts the whole row; later
    ones update only those columns, so concurrent writers of state and of data don't clobber
    each other)."""
    assignments = ", ".join(f"{name} = excluded.{name}" for name in (*columns, "updated_at"))
    # Column names come from this module, the values are bound parameters.
    return text(
        "INSERT INTO fsm_records (key, state, data, updated_at) "  # noqa: S608
        "VALUES (:key, :state, :data, :updated_at) "
        f"ON CONFLICT (key) DO UPDATE SET {assignments}"
    ).bindparams(
        bindparam("key"),
        bindparam("state"),
        bindparam("data", type_=JSON()),
        bindparam("updated_at", type_=UtcDateTime()),
    )


_DELETE = delete(FsmRecord).where(FsmRecord.key == bindparam("fsm_key"))
_SELECT = select(FsmRecord.state, FsmRecord.data).where(FsmRecord.key == bindparam("fsm_key"))


def _cache(session: AsyncSession) -> dict[str, Record]:
    return session.info.setdefault(_CACHE, {})


async def _write(session: AsyncSession, key: str, record: Record, columns: Iterable[str]) -> None:
    state, data = record
    if state is None and not data:
        # An empty state is no state: keep the table small.
        await session.execute(_DELETE, {"fsm_key": key})
        return
    await session.execute(
        _upsert(tuple(columns)), {"key": key, "state": state, "data": data, "updated_at": utcnow()}
    )


def prime(session: AsyncSession, key: str, state: str | None, data: Mapping[str, Any] | None) -> None:
    """Tell this update's cache what the record holds (read by someone else in the same
    transaction), so the FSM middleware and filters need no query of their own."""
    _cache(session).setdefault(key, (state, dict(data or {})))


async def flush_pending(session: AsyncSession) -> None:
    """Store what this update changed, one statement per record; called right before commit."""
    pending: set[str] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    cache = _cache(session)
    for key in sorted(pending):
        await _write(session, key, cache[key], ("state", "data"))


class SqlStorage(BaseStorage):
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    def key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    @asynccontextmanager
    async def _session(self, write: bool) -> AsyncIterator[tuple[AsyncSession, bool]]:
        """(session, shared): the update's own session, or a short transaction of our own."""
        shared = current_session.get()
        if shared is not None:
            yield shared, True
            return
        if write:
            async with self.sessionmaker.begin() as session:
                yield session, False
        else:
            async with self.sessionmaker() as session:
                yield session, False

    async def _load(self, session: AsyncSession, key: str) -> Record:
        cache = _cache(session)
        cached = cache.get(key)
        if cached is not None:
            return cached
        row = (await session.execute(_SELECT, {"fsm_key": key})).first()
        value = (row.state, dict(row.data or {})) if row else (None, {})
        cache[key] = value
        return value

    async def _store(self, key: StorageKey, **values: Any) -> None:
        async with self._session(write=True) as (session, shared):
            name = self.key(key)
            state, data = await self._load(session, name)
            record = (values.get("state", state), values.get("data", data))
            _cache(session)[name] = record
            if shared:
                session.info.setdefault(_PENDING, set()).add(name)
            else:
                await _write(session, name, record, tuple(values))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        await self._store(key, state=state.state if isinstance(state, State) else state)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session(write=False) as (session, _shared):
            state, _ = await self._load(session, self.key(key))
            return state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        # A copy: the caller may go on mutating its dict.
        await self._store(key, data=_copy(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session(write=False) as (session, _shared):
            _, data = await self._load(session, self.key(key))
            # A deep copy: callers must not mutate the cached value in place.
            return _copy(data)

    async def close(self) -> None:
        return None
