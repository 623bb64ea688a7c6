"""Run Alembic migrations programmatically (CLI `hromada-bot migrate`, tests, console)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _run_in_thread(url: str, action: str, revision: str) -> None:
    # env.py starts its own event loop; keep it off the caller's loop.
    getattr(command, action)(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(_run_in_thread, url, "upgrade", revision)


async def downgrade(url: str, revision: str = "base") -> None:
    await asyncio.to_thread(_run_in_thread, url, "downgrade", revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade through an existing engine (keeps an in-memory SQLite database alive)."""

    def _run(sync_conn) -> None:
        config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        config.attributes["connection"] = sync_conn
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def prepare_embedded_database(url: str) -> None:
    """The embedded SQLite default migrates itself; PostgreSQL is migrated by `migrate` (a
    one-shot job in production), so two instances never race on DDL."""
    from infra.db import is_sqlite

    if is_sqlite(url):
        await upgrade(url)
