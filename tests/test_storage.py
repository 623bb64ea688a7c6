"""FSM storage: drafts survive a restart in the database (default) and in Redis (REDIS_URL)."""

from __future__ import annotations

import os
import uuid

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from sqlalchemy import func, select

from bot.factory import build_app
from infra.settings import RedisSettings, load_settings
from infra.storage import SqlStorage
from models import FsmRecord
from tests.conftest import IN_CI

KEY = StorageKey(bot_id=42, chat_id=5001, user_id=5001)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def test_sql_storage_keeps_state_and_data_across_instances(sessionmaker) -> None:
    first = SqlStorage(sessionmaker)
    await first.set_state(KEY, "Intake:description")
    await first.set_data(KEY, {"hromada_id": 3, "description": "Потрібна допомога з дровами"})
    second = SqlStorage(sessionmaker)  # as after a restart
    assert await second.get_state(KEY) == "Intake:description"
    assert (await second.get_data(KEY))["description"] == "Потрібна допомога з дровами"
    await second.set_state(KEY, None)
    await second.set_data(KEY, {})
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FsmRecord)) == 0


async def test_sql_storage_first_writes_racing_make_one_row(sessionmaker) -> None:
    import asyncio

    storage = SqlStorage(sessionmaker)
    await asyncio.gather(*(storage.set_data(KEY, {"n": n}) for n in range(8)))
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FsmRecord)) == 1


@pytest.fixture
async def redis_url():
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI and does not answer at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not available: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL


async def test_redis_url_switches_storage_and_state_survives_restart(redis_url, settings, db) -> None:
    base = load_settings(database=settings.database, redis=RedisSettings(REDIS_URL=redis_url))
    key = StorageKey(bot_id=42, chat_id=int(uuid.uuid4().int % 10**9), user_id=7)
    app = build_app(base, engine=db)
    try:
        assert isinstance(app.storage, RedisStorage)
        await app.storage.set_state(key, "Intake:settlement")
        await app.storage.set_data(key, {"hromada_id": 1})
    finally:
        await app.storage.close()
    again = build_app(base, engine=db)
    try:
        assert await again.storage.get_state(key) == "Intake:settlement"
        assert await again.storage.get_data(key) == {"hromada_id": 1}
        await again.storage.set_state(key, None)
        await again.storage.set_data(key, {})
    finally:
        await again.storage.close()


class _Statements:
    """Counts the SQL an engine runs on the fsm_records table."""

    def __init__(self, engine) -> None:
        self.seen: list[str] = []
        self.engine = engine

    def __enter__(self) -> _Statements:
        from sqlalchemy import event

        event.listen(self.engine.sync_engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc) -> None:
        from sqlalchemy import event

        event.remove(self.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, params, context, executemany) -> None:
        if "fsm_records" in statement:
            self.seen.append(" ".join(statement.split()))

    def kinds(self) -> list[str]:
        return [statement.split()[0].upper() for statement in self.seen]


async def test_an_update_writes_its_fsm_record_once_and_only_if_it_succeeds(db, sessionmaker) -> None:
    from aiogram.fsm.context import FSMContext

    from bot.middlewares import DbSessionMiddleware

    storage = SqlStorage(sessionmaker)
    middleware = DbSessionMiddleware(sessionmaker)
    context = FSMContext(storage=storage, key=KEY)

    async def step(event, data):
        await context.set_data({"step": "description", "hromada_id": 3})
        await context.set_state("IntakeForm:active")
        await context.set_data({**await context.get_data(), "description": "Дрова на зиму"})

    with _Statements(db) as sql:
        await middleware(step, object(), {})
    # One read (nothing was primed) and one write for three changes.
    assert sql.kinds() == ["SELECT", "INSERT"]
    assert await storage.get_state(KEY) == "IntakeForm:active"
    assert (await storage.get_data(KEY))["description"] == "Дрова на зиму"

    async def fails(event, data):
        await context.set_data({"step": "phone"})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await middleware(fails, object(), {})
    assert (await storage.get_data(KEY))["step"] == "description"  # the failed step left no trace

    async def clears(event, data):
        await context.clear()

    await middleware(clears, object(), {})
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FsmRecord)) == 0


async def test_a_form_step_reads_the_user_and_the_state_in_one_statement(db, resident) -> None:
    await resident.press("Нове звернення")
    with _Statements(db) as sql:
        replies = await resident.send("Весел")
    assert replies[-1].buttons()[0] == "🏛 Веселівська громада"  # the step itself worked
    # The only read of fsm_records is the user row's join; the step wrote nothing to it.
    assert len(sql.seen) == 1 and sql.seen[0].startswith("SELECT users.id")
    assert "LEFT OUTER JOIN fsm_records" in sql.seen[0]
