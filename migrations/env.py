"""Alembic environment: async engines for SQLite and PostgreSQL alike.

The URL comes from the Alembic config (set by `infra.migrate`), else from DATABASE_URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import models
from infra.db import DbTimeouts, create_engine, is_sqlite

config = context.config
target_metadata = models.Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from infra.settings import load_settings

    return load_settings().database.url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    if url:
        sqlite = is_sqlite(url)
    elif connection is not None:
        sqlite = connection.dialect.name == "sqlite"
    else:
        raise ValueError("migrations need a connection or a database URL")
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table.
        render_as_batch=sqlite,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    # A migration may rewrite a big table in one statement: no statement timeout here.
    engine = create_engine(_url(), timeouts=DbTimeouts(command=None))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_sync)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed in by infra.migrate.upgrade_engine
        _run_sync(connection)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_run_async())
        return
    raise RuntimeError("call infra.migrate.upgrade() (async) from inside an event loop")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
