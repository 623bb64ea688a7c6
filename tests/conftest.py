"""Fixtures every test uses.

Database tests run twice: on a SQLite file and on a throw-away PostgreSQL database
(127.0.0.1:5432, trust auth), both built by the Alembic migrations. Each test starts with empty
tables. With CI=true a PostgreSQL that does not answer is a failure, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiogram import Bot
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import models
from bot.factory import App, build_app, create_bot
from bot.offline import BotClient, RecordingSession
from infra.db import create_engine, create_sessionmaker
from infra.migrate import upgrade
from infra.settings import DatabaseSettings, DeliverySettings, Settings, load_settings
from services.clock import Clock
from tests.pgtools import PG_ADMIN_DSN, create_database, drop_database, pg_problem

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SAMPLE_REFERENCE = Path(__file__).resolve().parent.parent / "data" / "sample_reference.yaml"


async def create_pg_database() -> tuple[str, str]:
    """A new empty database; returns (its SQLAlchemy URL, its name). Skips the test when
    PostgreSQL does not answer, except in CI, where that fails it."""
    problem = await pg_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and does not answer at {PG_ADMIN_DSN}: {problem}")
        pytest.skip(f"PostgreSQL not available: {problem}")
    return await create_database()


drop_pg_database = drop_database


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres_only` (or using the `pg_only` fixture: what SQLite, one file used by
    one process, cannot have — several instances, network failures) run on PostgreSQL only, and
    `sqlite_only` ones (its single writer) on SQLite only: the other variant is deselected, not
    skipped, so a skip in a run always means something is missing."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("db_url") if callspec is not None else None
        postgres_only = item.get_closest_marker("postgres_only") or "pg_only" in getattr(
            item, "fixturenames", ()
        )
        wrong = (backend == "sqlite" and postgres_only) or (
            backend == "postgresql" and item.get_closest_marker("sqlite_only")
        )
        (dropped if wrong else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest_asyncio.fixture(scope="session", params=["sqlite", "postgresql"], loop_scope="session")
async def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database for the whole test session, one per backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        await upgrade(url)
        yield url
        return
    url, name = await create_pg_database()
    try:
        await upgrade(url)
        yield url
    finally:
        await drop_pg_database(name)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    yield engine
    await engine.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    """Every table emptied and every id sequence restarted. On PostgreSQL as DELETEs (children
    first) and setval in one round trip: TRUNCATE of 45 tables took ~95 ms, this ~1.5 ms, twice
    per test."""
    tables = [t.name for t in reversed(models.Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            sequences = (await conn.execute(text("SELECT schemaname, sequencename FROM pg_sequences"))).all()
            statements = [f'DELETE FROM "{table}"' for table in tables] + [
                f'SELECT setval(\'"{schema}"."{name}"\', 1, false)' for schema, name in sequences
            ]
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute("; ".join(statements))  # type: ignore[union-attr]
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest_asyncio.fixture(loop_scope="session")
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine, with empty tables before the test and after it."""
    await truncate_all(engine)
    yield engine
    await truncate_all(engine)


@pytest.fixture
def sessionmaker(db: AsyncEngine):
    return create_sessionmaker(db)


@pytest_asyncio.fixture(loop_scope="session")
async def session(sessionmaker) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def settings(db: AsyncEngine) -> Settings:
    url = db.url.render_as_string(hide_password=False)
    # No quiet hours: tests run at any hour on the real clock and expect notices to go out.
    # Tests about quiet hours pass their own ReminderRules (tests/test_delivery.py).
    no_quiet = DeliverySettings(QUIET_HOURS_START="00:00", QUIET_HOURS_END="00:00")
    return load_settings(database=DatabaseSettings(DATABASE_URL=url), delivery=no_quiet)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture(loop_scope="session")
async def reference(sessionmaker) -> None:
    """The sample reference data (hromadas, services, teams, routing) loaded into the database."""
    from services.reference_data import load_reference_file

    async with sessionmaker.begin() as session:
        await load_reference_file(session, SAMPLE_REFERENCE)


@pytest_asyncio.fixture(loop_scope="session")
async def app(settings: Settings, db: AsyncEngine, clock: Clock) -> AsyncIterator[App]:
    app = build_app(settings, clock=clock, engine=db)
    yield app
    await app.close_dispatcher()


@pytest.fixture
def tg() -> RecordingSession:
    return RecordingSession()


@pytest_asyncio.fixture(loop_scope="session")
async def bot(settings: Settings, tg: RecordingSession) -> AsyncIterator[Bot]:
    bot = create_bot(settings, session=tg)
    yield bot


ClientFactory = Callable[..., BotClient]


@pytest.fixture
def make_client(app: App, bot: Bot, tg: RecordingSession) -> ClientFactory:
    """`make_client(user_id=..., language_code=...)`: a person talking to the same bot."""
    counter = iter(range(10_001, 20_000))

    def factory(user_id: int | None = None, **kwargs) -> BotClient:
        return BotClient(app.dispatcher, bot, tg, user_id=user_id or next(counter), **kwargs)

    return factory


@pytest_asyncio.fixture(loop_scope="session")
async def resident(make_client: ClientFactory, reference: None) -> BotClient:
    """A resident who chose Ukrainian and gave consent."""
    client = make_client()
    await client.send("/start")
    await client.click("Українська")
    await client.click("Погоджуюсь")
    return client


Step = Callable[[], Awaitable[object]]


@pytest.fixture
def deliverer(app: App, bot: Bot):
    """Delivers due outbox rows (notifications, pushes, reminders) through the recording bot."""
    from bot.delivery import OutboxDeliverer

    return OutboxDeliverer(bot, app.sessionmaker, app.i18n, app.clock, app.settings)
