"""Factories: nothing is created at import time; tests build the same objects."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.middlewares import AnswerPressOnce, DbSessionMiddleware, UserLockMiddleware, UserMiddleware
from bot.observability import UpdateMetricsMiddleware
from handlers import build_root_router
from handlers.kit.jobs import Jobs
from infra.db import DbTimeouts, create_engine, create_sessionmaker, dedicated_sessionmaker, is_sqlite
from infra.i18n import UserLanguageMiddleware, create_i18n
from infra.isolation import PgAdvisoryIsolation
from infra.metrics import Metrics
from infra.settings import Settings
from infra.storage import SqlStorage
from infra.telegram_session import HromadaAiohttpSession
from services.clock import Clock
from services.reminders import ReminderRules

# The dispatcher's per-person lock, kept in its workflow data so the app can close it.
ISOLATION = "event_isolation"

# Used where no real token is needed (console, tests): the right shape, never valid on Telegram.
OFFLINE_TOKEN = "42:OFFLINE-console-token-not-for-telegram"  # noqa: S105 - a placeholder, not a secret


@dataclass
class App:
    """What a running bot is made of; built by `build_app`, closed by `App.close`."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    i18n: I18n
    clock: Clock
    storage: BaseStorage
    dispatcher: Dispatcher
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> Metrics:
        metrics: Metrics = self.dispatcher["metrics"]
        return metrics

    async def close(self) -> None:
        await self.close_dispatcher()
        await self.engine.dispose()

    async def close_dispatcher(self) -> None:
        """What the dispatcher holds: the FSM storage and the per-person lock (its connection)."""
        await self.dispatcher.storage.close()
        isolation: BaseEventIsolation | None = self.dispatcher.workflow_data.get(ISOLATION)
        if isolation is not None:
            await isolation.close()


# Collect the youngest generation after this many new container objects (default 700).
GC_YOUNG_THRESHOLD = 10_000


def settle_for_serving() -> None:
    """Call once the app is built, before serving updates (run, webhook, benchmarks).

    Everything made at start-up (routers, pydantic and SQLAlchemy structures, translations)
    lives as long as the process, yet the cyclic collector kept re-scanning it, and the young
    generation filled every few updates: together about 15 % of a form step's CPU. Freezing
    moves those objects out of the collector's sight; a larger young generation (a few MB at
    most) makes collections rarer. Reference counting still frees almost everything at once."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def create_bot(settings: Settings, session: BaseSession | None = None, token: str | None = None) -> Bot:
    if session is None:
        api = settings.telegram.api_base
        session = (
            HromadaAiohttpSession(api=TelegramAPIServer.from_base(api)) if api else HromadaAiohttpSession()
        )
    if token is None:
        secret = settings.telegram.bot_token
        token = secret.get_secret_value() if secret else OFFLINE_TOKEN
    return Bot(token=token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def create_storage(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> BaseStorage:
    if settings.redis.url:
        from aiogram.fsm.storage.base import DefaultKeyBuilder
        from aiogram.fsm.storage.redis import RedisStorage

        return RedisStorage.from_url(settings.redis.url, key_builder=DefaultKeyBuilder(with_destiny=True))
    return SqlStorage(sessionmaker)


def isolation_for(storage: BaseStorage, database_url: str | None = None) -> BaseEventIsolation:
    """Per-person update lock: in Redis when the FSM lives there (shared by all instances);
    else, on PostgreSQL, an advisory lock per person (shared by all instances on that database);
    else (SQLite: one file, one process) in this process."""
    from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

    if isinstance(storage, RedisStorage):
        return RedisEventIsolation(redis=storage.redis)
    if database_url is not None and not is_sqlite(database_url):
        return PgAdvisoryIsolation(database_url)
    return SimpleEventIsolation()


def create_dispatcher(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    i18n: I18n,
    clock: Clock,
    storage: BaseStorage,
    **workflow_data: Any,
) -> Dispatcher:
    # aiogram's FSM middleware is put in by hand below, inside our session, so the state is
    # read through the update's own connection instead of a second one.
    # Background jobs (status imports) outlive their update: one runner per dispatcher.
    workflow_data.setdefault("jobs", Jobs())
    # A status import talks to the database over a connection of its own, never the updates' pool.
    workflow_data.setdefault("import_sessions", partial(dedicated_sessionmaker, settings.database.url))
    # This app's metrics (a registry of its own); the scheduler counts the bot's calls into it.
    metrics = workflow_data.setdefault("metrics", Metrics())
    dp = Dispatcher(
        storage=storage,
        disable_fsm=True,
        settings=settings,
        sessionmaker=sessionmaker,
        i18n=i18n,
        clock=clock,
        **workflow_data,
    )
    # Outer middlewares on the update itself, so every update type gets them, in this order:
    # counted and timed → one person at a time → one DB unit of work → our user row → FSM state
    # → language.
    dp.update.outer_middleware(UpdateMetricsMiddleware(metrics))
    isolation = isolation_for(storage, settings.database.url)
    dp[ISOLATION] = isolation  # closed by App.close
    dp.update.outer_middleware(UserLockMiddleware(isolation))
    dp.update.outer_middleware(
        DbSessionMiddleware(sessionmaker, clock, ReminderRules.from_settings(settings))
    )
    dp.update.outer_middleware(UserMiddleware(dp.fsm))
    dp.update.outer_middleware(dp.fsm)
    UserLanguageMiddleware(i18n).setup(dp)
    # Every button press is answered once: after its handler (handlers set the text through
    # `callback_answer`), or by the error router when the handler raised.
    dp.callback_query.middleware(AnswerPressOnce())
    dp.include_router(build_root_router())
    dp.shutdown.register(dp["jobs"].close)
    return dp


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    storage: BaseStorage | None = None,
    **workflow_data: Any,
) -> App:
    engine = engine or create_engine(
        settings.database.url,
        echo=settings.database.echo,
        timeouts=DbTimeouts.from_settings(settings.database),
    )
    sessionmaker = create_sessionmaker(engine)
    i18n = create_i18n(settings.locale.default_language)
    clock = clock or Clock()
    storage = storage or create_storage(settings, sessionmaker)
    dispatcher = create_dispatcher(
        settings=settings,
        sessionmaker=sessionmaker,
        i18n=i18n,
        clock=clock,
        storage=storage,
        **workflow_data,
    )
    return App(settings, engine, sessionmaker, i18n, clock, storage, dispatcher)
