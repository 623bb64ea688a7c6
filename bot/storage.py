"""aiogram FSM storage in our own database, so form drafts survive a restart with no Redis.

Inside an update, FSM reads and writes join the update's unit of work (the session the
DB-session middleware opened, published through `current_session`): one connection per
update, so many simultaneous users cannot exhaust the pool by each holding one connection
while waiting for a second, and a draft changes atomically with what the handler did.
Outside an update (aiogram pre-reading the state, tools) it uses short transactions.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.fsm import FsmRecord

current_session: ContextVar[AsyncSession | None] = ContextVar("hromada_current_session", default=None)


class SqlStorage(BaseStorage):
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        shared = current_session.get()
        if shared is not None:
            # A savepoint, so a lost insert race does not spoil the update's transaction.
            async with shared.begin_nested():
                yield shared
            return
        async with self.sessionmaker.begin() as session:
            yield session

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        shared = current_session.get()
        if shared is not None:
            yield shared
            return
        async with self.sessionmaker() as session:
            yield session

    async def _upsert(self, key: StorageKey, **values: Any) -> None:
        # Two first writes for one key can race to INSERT; the loser simply retries as an UPDATE.
        for attempt in range(2):
            try:
                await self._write(self._key(key), values)
                return
            except IntegrityError:
                if attempt:
                    raise

    async def _write(self, key: str, values: dict[str, Any]) -> None:
        async with self._writing() as session:
            record = await session.get(FsmRecord, key, with_for_update=True, populate_existing=True)
            if record is None:
                record = FsmRecord(key=key, state=None, data={})
                session.add(record)
            for name, value in values.items():
                setattr(record, name, value)
            if record.state is None and not record.data:
                # An empty state is no state: keep the table small.
                if record in session.new:
                    session.expunge(record)
                else:
                    await session.delete(record)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._upsert(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self._reading() as session:
            record = await self._get(session, self._key(key))
            return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self._reading() as session:
            record = await self._get(session, self._key(key))
            # A deep copy: callers must not mutate the loaded (committed) value in place.
            return copy.deepcopy(record.data) if record else {}

    @staticmethod
    async def _get(session: AsyncSession, key: str) -> FsmRecord | None:
        record = await session.get(FsmRecord, key)
        if record is not None:
            # The identity map holds objects weakly: keep the record for the rest of the update
            # so that repeated reads (filters, handler) are not one SELECT each.
            session.info.setdefault("fsm_records", {})[key] = record
        return record

    async def close(self) -> None:
        return None
