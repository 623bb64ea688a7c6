"""Engine and session factory, and what counts as "the database is unavailable". Nothing
connects at import time.

Fast recovery from an outage (PostgreSQL; the numbers are `DatabaseSettings`):
- every wait has a bound: connecting (`DATABASE_CONNECT_TIMEOUT`), each statement
  (`DATABASE_COMMAND_TIMEOUT`, asyncpg's command_timeout) and waiting for a pooled connection
  (`DATABASE_POOL_TIMEOUT`). Without them a silent outage (packets dropped) hangs an update until
  the kernel gives the connection up, and the pool fills with such updates.
- a connection found dead (reset, closed, or a statement that timed out) counts as a disconnect:
  SQLAlchemy then invalidates it *and every pooled connection opened before it*, so the next
  update gets a fresh one instead of tripping over its dead siblings one timeout at a time.
- a connection that sat idle longer than `DATABASE_IDLE_CHECK` is pinged (with a short bound)
  before it is handed out: after a quiet outage the first update does not pay a statement
  timeout to find the connection dead. Busy connections are not pinged (no round trip per update
  under load, which is why this is not SQLAlchemy's pool_pre_ping).
- TCP keepalives (`DATABASE_TCP_KEEPALIVE`) and TCP_USER_TIMEOUT on the socket, so the kernel
  notices a peer that went silent, also for idle connections, where the OS allows it.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

from infra.logsafe import hide_values_in_driver_logs
from infra.settings import DatabaseSettings

log = logging.getLogger(__name__)

# PostgreSQL SQLSTATEs that mean "the server is not there for us right now", not "your query is
# wrong": class 08 (connection exception), shutdown/starting up, and no connection slots left.
_PG_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# SQLite primary result codes of the same kind: busy past the busy timeout, I/O error, the file
# cannot be opened, disk full. "no such table" and friends (also OperationalError) are bugs.
_SQLITE_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_FULL,
    }
)
# Set on an exception the driver raised while talking to the server (see `_on_error`): a bare
# TimeoutError or ConnectionResetError is an outage only when it came from the database.
_FROM_DATABASE = "_hromada_database_unavailable"


@dataclass(frozen=True)
class DbTimeouts:
    """Bounds for talking to PostgreSQL, in seconds (None or 0: no bound / off)."""

    connect: float = 5.0
    command: float | None = 10.0
    pool: float = 5.0
    idle_check: float = 2.0
    keepalive: int = 10

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> DbTimeouts:
        return cls(
            connect=database.connect_timeout,
            command=database.command_timeout or None,
            pool=database.pool_timeout,
            idle_check=database.idle_check,
            keepalive=database.tcp_keepalive,
        )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database could not be reached or used right now (refused or
    reset connection, a timeout talking to it, no pooled connection in time, server shutting
    down, SQLite busy/I-O), so the same work is expected to succeed once it is back. False for
    everything else — a bug in a handler, a constraint violation, a missing table — even when
    those are database errors: retrying them later would fail the same way."""
    for error in _chain(exc):
        if getattr(error, _FROM_DATABASE, False):
            return True
        if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True  # no pooled connection in time; a connection that could not be renewed
        if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
            return True
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(state, str) and (state.startswith("08") or state in _PG_UNAVAILABLE_STATES):
            return True
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_UNAVAILABLE_CODES:
            return True
    return False


def _is_transport_failure(error: BaseException) -> bool:
    return isinstance(error, TimeoutError | ConnectionError | OSError) and not isinstance(
        error, sa_exc.SQLAlchemyError
    )


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    max_overflow: int = 10,
    timeouts: DbTimeouts | None = None,
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
    bounds = timeouts or DbTimeouts()
    connect_args: dict[str, Any] = {"timeout": bounds.connect}
    if bounds.command:
        connect_args["command_timeout"] = bounds.command
    # No pool_pre_ping: it costs a round trip on every checkout (every update). Only connections
    # that sat idle are pinged (`_watch_connections`); dead ones found in use are invalidated
    # with all their older siblings (`_on_error`). Connections are also recycled.
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        pool_timeout=bounds.pool,
        # The most recently returned connection is handed out next: under load a few hot
        # connections serve everything and are never idle long enough to be pinged.
        pool_use_lifo=True,
        connect_args=connect_args,
    )
    _watch_connections(engine, bounds)
    return engine


def _watch_connections(engine: AsyncEngine, bounds: DbTimeouts) -> None:
    sync_engine = engine.sync_engine
    # Connections opened before this moment (time.time(), like the pool's own clock) are
    # presumed dead: one was found dead, and they all went through the same outage.
    dead_before = [0.0]

    def mark(error: BaseException) -> None:
        try:
            setattr(error, _FROM_DATABASE, True)
        except AttributeError:  # pragma: no cover - exceptions without a __dict__
            pass

    @event.listens_for(sync_engine, "handle_error")
    def _on_error(context: Any) -> None:
        original = context.original_exception
        if _is_transport_failure(original) or database_unavailable(original):
            # asyncpg raises timeouts and socket errors bare (not as DBAPI errors), so
            # SQLAlchemy would neither call them a disconnect nor let a caller tell them from
            # any other TimeoutError: mark the exception, and have the connection and its
            # older siblings thrown away (the pool's invalidation on disconnect).
            mark(original)
            context.is_disconnect = True
            dead_before[0] = time.time()

    @event.listens_for(sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.loaded_dbapi.connect(*cargs, **cparams)
        except Exception as exc:  # refused, reset, timed out: marked, raised unchanged
            if _is_transport_failure(exc) or database_unavailable(exc):
                mark(exc)
            raise

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()
        if bounds.keepalive:
            _keepalive(dbapi_connection, bounds.keepalive, bounds.command or bounds.connect)

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "close")
    def _on_close(dbapi_connection: Any, record: Any) -> None:
        # SQLAlchemy closes even an invalidated asyncpg connection politely, waiting up to 2 s
        # for an answer that never comes from a dead peer — per connection, in the way of the
        # update that asked for a fresh one. A connection from before the outage is cut instead.
        if record.starttime <= dead_before[0]:
            driver = getattr(dbapi_connection, "driver_connection", None)
            if driver is not None and not driver.is_closed():
                driver.terminate()

    if not bounds.idle_check:
        return

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.starttime <= dead_before[0]:
            raise sa_exc.DisconnectionError("connection from before an outage")
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < bounds.idle_check:
            return
        record.info["idle_since"] = time.monotonic()
        driver = dbapi_connection.driver_connection
        try:
            await_only(driver.execute("SELECT 1", timeout=min(2.0, bounds.connect)))
        except Exception as exc:
            if not (_is_transport_failure(exc) or database_unavailable(exc) or driver.is_closed()):
                raise
            # The pool discards it (and every older one, see `_on_close`) and opens another.
            dead_before[0] = time.time()
            raise sa_exc.DisconnectionError(f"idle connection is dead ({type(exc).__name__})") from exc


def _keepalive(dbapi_connection: Any, idle: int, user_timeout: float) -> None:
    """TCP keepalives and TCP_USER_TIMEOUT on the asyncpg socket, where the OS offers them.
    asyncpg has no option for this; its transport is reached through the driver connection."""
    transport = getattr(getattr(dbapi_connection, "driver_connection", None), "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (
        ("TCP_KEEPIDLE", idle),
        ("TCP_KEEPINTVL", max(1, idle // 2)),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", int(user_timeout * 1000)),
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError:  # pragma: no cover - an OS without it
            log.debug("socket option %s not available", option)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def dedicated_sessionmaker(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on an engine of their own with a single connection, closed on exit: a long job
    (a file import) then never holds a connection the updates' pool could hand out. Its
    statements may run long (bulk writes), so they get no statement timeout."""
    engine = create_engine(url, pool_size=1, max_overflow=0, timeouts=DbTimeouts(command=None))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
