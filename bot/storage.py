"""aiogram FSM storage in our own database, so form drafts survive a restart with no Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.fsm import FsmRecord


class SqlStorage(BaseStorage):
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], key_builder: KeyBuilder | None = None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    def _key(self, key: StorageKey) -> str:
        return self.key_builder.build(key)

    async def _upsert(self, key: StorageKey, **values: Any) -> None:
        # Its own short transaction: FSM writes must not depend on the handler's unit of work.
        # Two first writes for one key can race to INSERT; the loser simply retries as an UPDATE.
        for attempt in range(2):
            try:
                await self._write(self._key(key), values)
                return
            except IntegrityError:
                if attempt:
                    raise

    async def _write(self, key: str, values: dict[str, Any]) -> None:
        async with self.sessionmaker.begin() as session:
            record = await session.get(FsmRecord, key, with_for_update=True)
            if record is None:
                record = FsmRecord(key=key, state=None, data={})
                session.add(record)
            for name, value in values.items():
                setattr(record, name, value)
            if record.state is None and not record.data:
                # An empty state is no state: keep the table small.
                was_stored = record not in session.new
                session.expunge(record)
                if was_stored:
                    # A Core DELETE: two concurrent clears of one key must not fail on SQLite
                    # (no row lock there), the second simply deletes nothing.
                    await session.execute(delete(FsmRecord).where(FsmRecord.key == key))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._upsert(key, state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        async with self.sessionmaker() as session:
            record = await session.get(FsmRecord, self._key(key))
            return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(key, data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async with self.sessionmaker() as session:
            record = await session.get(FsmRecord, self._key(key))
            return dict(record.data) if record else {}

    async def close(self) -> None:
        return None
