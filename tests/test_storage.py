"""FSM storage: drafts survive a restart in the database (default) and in Redis (REDIS_URL)."""

from __future__ import annotations

import os
import uuid

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from sqlalchemy import func, select

from bot.factory import build_app
from bot.settings import RedisSettings, load_settings
from bot.storage import SqlStorage
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
