"""aiogram FSM storage in our own database, so form drafts survive a restart with no Redis.

Inside an update, FSM reads and writes join the update's unit of work (the session the
DB-session middleware opened, published through `current_session`): one connection per
update, and a draft changes atomically with what the handler did. Each write is a single
UPSERT; what an update has read or written is cached for the rest of it in `session.info`,
so filters and the handler reading the state again cost no query. Outside an update (tools,
tests) it uses short transactions of its own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import utcnow
from models.fsm import FsmRecord

current_session: ContextVar[AsyncSession | None] = ContextVar("hromada_current_session", default=None)

_CACHE = "fsm_cache"
_MISSING = object()


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of JSON data (FSM data is stored as JSON anyway); the C JSON codec is many
    times faster than copy.deepcopy, which showed up in the intake profile."""
    return json.loads(json.dumps(data))


class SqlStorage(BaseStorage):
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    @asynccontextmanager
    async def _session(self, write: bool) -> AsyncIterator[AsyncSession]:
        shared = current_session.get()
        if shared is not None:
            yield shared
            return
        if write:
            async with self.sessionmaker.begin() as session:
                yield session
        else:
            async with self.sessionmaker() as session:
                yield session

    @staticmethod
    def _cache(session: AsyncSession) -> dict[str, tuple[str | None, dict[str, Any]]]:
        return session.info.setdefault(_CACHE, {})

    async def _load(self, session: AsyncSession, key: str) -> tuple[str | None, dict[str, Any]]:
        cache = self._cache(session)
        cached = cache.get(key, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        row = (
            await session.execute(select(FsmRecord.state, FsmRecord.data).where(FsmRecord.key == key))
        ).first()
        value = (row.state, dict(row.data or {})) if row else (None, {})
        cache[key] = value
        return value

    async def _store(self, session: AsyncSession, key: str, **values: Any) -> None:
        cache = self._cache(session)
        clearing = values.get("state", "") is None or values.get("data") == {}
        if clearing and key not in cache:
            await self._load(session, key)  # rare path: know whether the record becomes empty
        state, data = cache.get(key, (None, {}))  # type: ignore[misc]
        state = values.get("state", state)
        data = values.get("data", data)
        known = key in cache
        cache[key] = (state, data)
        if known and state is None and not data:
            # An empty state is no state: keep the table small.
            await session.execute(delete(FsmRecord).where(FsmRecord.key == key))
            return
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        statement = insert(FsmRecord).values(key=key, state=state, data=data, updated_at=utcnow())
        # One statement, race-free: the first write inserts, later ones update only what changed.
        changed = {name: statement.excluded[name] for name in values}
        changed["updated_at"] = statement.excluded.updated_at
        await session.execute(statement.on_conflict_do_update(index_elements=[FsmRecord.key], set_=changed))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        async with self._session(write=True) as session:
            await self._store(session, self._key(key), state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._session(write=False) as session:
            state, _ = await self._load(session, self._key(key))
            return state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async with self._session(write=True) as session:
            # A copy: the caller may go on mutating its dict.
            await self._store(session, self._key(key), data=_copy(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._session(write=False) as session:
            _, data = await self._load(session, self._key(key))
            # A deep copy: callers must not mutate the cached value in place.
            return _copy(data)

    async def close(self) -> None:
        return None
