"""Migrations: up → down → up on both databases, and the models match the migrations."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import models
from infra.db import create_engine
from infra.migrate import downgrade, upgrade
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    url, name = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(name)


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade_round_trip(fresh_url: str) -> None:
    expected = set(models.Base.metadata.tables)
    await upgrade(fresh_url)
    assert expected <= await _tables(fresh_url)
    await downgrade(fresh_url, "base")
    assert await _tables(fresh_url) <= {"alembic_version"}
    await upgrade(fresh_url)
    assert expected <= await _tables(fresh_url)


async def test_models_and_migrations_agree(fresh_url: str) -> None:
    await upgrade(fresh_url)
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": False}), models.Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == [], f"models differ from migrations: {diff}"
