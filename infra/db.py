"""Engine and session factory. Nothing connects at import time."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infra.logsafe import hide_values_in_driver_logs


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    # The parameters of a statement are phones, names and descriptions: SQLAlchemy must not
    # print them, neither in its errors (which end up in logged tracebacks) nor with `echo`.
    hide_values_in_driver_logs()
    if is_sqlite(url):
        # One file, one writer: a generous busy timeout instead of "database is locked".
        engine = create_async_engine(url, echo=echo, hide_parameters=True, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # No pre-ping: it costs a round trip on every checkout (every update). Connections are
    # recycled instead, and one dropped by a database restart fails one update politely and is
    # discarded by the pool.
    return create_async_engine(
        url, echo=echo, hide_parameters=True, pool_size=10, max_overflow=10, pool_recycle=1800
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
