"""Engine and session factory. Nothing connects at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infra.logsafe import hide_values_in_driver_logs


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, max_overflow: int = 10
) -> AsyncEngine:
    # The parameters of a statement are phones, names and descriptions: SQLAlchemy must not
    # print them, neither in its errors (which end up in logged tracebacks) nor with `echo`.
    hide_values_in_driver_logs()
    if is_sqlite(url):
        # One file, one writer: a generous busy timeout instead of "database is locked".
        engine = create_async_engine(url, echo=echo, hide_parameters=True, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):  # pragma: no cover - trivial
            # pysqlite's own transaction handling begins only before INSERT/UPDATE/DELETE, so a
            # SAVEPOINT issued first runs outside any transaction and its RELEASE commits on its
            # own: an update that then fails would keep half its writes. The driver is told to
            # stay out of it (SQLAlchemy's documented workaround) and `_sqlite_begin` emits BEGIN.
            # The PRAGMAs run here, in autocommit, where journal_mode may be changed.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection):  # pragma: no cover - trivial
            # IMMEDIATE takes the write lock at the start. Nearly every transaction here reads
            # and then writes (an update's FSM state is written at its end); a deferred one would
            # start as a reader, and in WAL mode its upgrade to a writer fails at once with
            # "database is locked" when another connection wrote meanwhile — the busy timeout
            # does not apply to that upgrade. Taken up front, the lock is waited for (busy
            # timeout) instead. The price: transactions on the one file run one at a time, even
            # ones that end up only reading.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it costs a round trip on every checkout (every update). Connections are
    # recycled instead, and one dropped by a database restart fails one update politely and is
    # discarded by the pool.
    return create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def dedicated_sessionmaker(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on an engine of their own with a single connection, closed on exit: a long job
    (a file import) then never holds a connection the updates' pool could hand out."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
