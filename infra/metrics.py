"""Prometheus metrics of one bot process, exposed by the webhook server's `/metrics`.

Built on `prometheus_client`. Each `Metrics` has a registry of its own instead of the library's
global default one: tests build several apps in one process, and two apps registering the same
metric names in one registry would collide (and count into each other). The one exception is
the limiter's wait histogram (`observe_limiter_wait`): the send limiter is a plain callback
receiver with no app at hand, so its histogram lives in this module's `PROCESS_REGISTRY`
(still not the global default), which every app's `/metrics` includes.

What is counted never carries personal data: labels are update kinds, outcomes, Bot API method
names, result classes, outbox kinds and states, limiter lanes — fixed vocabularies, never a user
or chat id, never a text.

What comes from the database (outbox backlog, readiness) is read when scraped, in one short
query bounded by a timeout, so a slow or absent database makes the scrape report it instead
of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from infra.telegram_session import MalformedAnswer
from models.outbox import PENDING, SENDING

# From a quick callback answer (tens of ms) to an update stuck behind a lock or a full pool.
UPDATE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A free slot costs nothing; a per-chat spacing is ~1 s; a 429's pause may last a minute.
LIMITER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# Scrape-time database reads give up after this long: a scrape must answer (Prometheus' own
# default scrape timeout is 10 s; Docker's health check here allows 5 s).
DB_TIMEOUT = 2.0

# Outcomes of an update (label `outcome` of hromada_updates_total).
HANDLED = "handled"
NOT_HANDLED = "not_handled"
ERROR = "error"

PROCESS_REGISTRY = CollectorRegistry()
LIMITER_WAIT = Histogram(
    "hromada_limiter_wait_seconds",
    "Time a send waited for the rate limiter, by lane",
    ["lane"],
    buckets=LIMITER_BUCKETS,
    registry=PROCESS_REGISTRY,
)


def observe_limiter_wait(lane: str, seconds: float) -> None:
    """The limiter's `on_wait` observer: one send waited `seconds` in `lane` (a fixed lane name,
    such as "interactive" or "bulk", never anything about the recipient)."""
    LIMITER_WAIT.labels(lane=lane).observe(max(0.0, seconds))


def send_result(exc: BaseException | None) -> str:
    """The result class of one Bot API call: ok, retry_after, bad_request, forbidden,
    server_error, malformed (an answer that is no Bot API answer), network, other."""
    if exc is None:
        return "ok"
    if isinstance(exc, TelegramRetryAfter):
        return "retry_after"
    if isinstance(exc, (TelegramBadRequest, TelegramMigrateToChat, TelegramEntityTooLarge)):
        return "bad_request"
    if isinstance(exc, TelegramForbiddenError):
        return "forbidden"
    if isinstance(exc, TelegramServerError):
        return "server_error"
    if isinstance(exc, MalformedAnswer):
        return "malformed"
    if isinstance(exc, TelegramNetworkError):
        return "network"
    return "other"


class SendMetricsMiddleware(BaseRequestMiddleware):
    """Counts every Bot API call of a bot by method and result (a session middleware, like the
    rate limiter's). A call cancelled half-way (shutdown) is not counted: it has no result."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = getattr(method, "__api_method__", type(method).__name__)
        try:
            response = await make_request(bot, method)
        except Exception as exc:
            self.metrics.sends.labels(method=name, result=send_result(exc)).inc()
            raise
        self.metrics.sends.labels(method=name, result="ok").inc()
        return response


async def fetch_rows(engine: AsyncEngine, sql: str, timeout: float = DB_TIMEOUT) -> list[tuple[object, ...]]:
    """Run one read-only statement (fixed SQL, no parameters) within `timeout` seconds.

    On SQLite the engine opens every transaction with BEGIN IMMEDIATE, SQLite's write lock
    (infra/db.py); a probe that only reads must not queue behind the writers for it, so there it
    runs on the driver connection outside any transaction: a plain WAL read."""
    async with asyncio.timeout(timeout), engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            cursor = await driver.execute(sql)
            try:
                return [tuple(row) for row in await cursor.fetchall()]
            finally:
                await cursor.close()
        return [tuple(row) for row in (await conn.exec_driver_sql(sql)).all()]


def probe_engine(url: URL | str) -> AsyncEngine:
    """An engine for the readiness probe: a new connection per probe, none kept.

    Not the updates' pool: when every pooled connection is busy (a burst of updates), the probe
    would wait for one and report a database that answers fine as unavailable, and a load
    balancer would take a loaded instance out, loading the others more. A connection of its own
    also proves what readiness asks: that a new connection to the database can be made now."""
    return create_async_engine(url, poolclass=NullPool, hide_parameters=True)


async def probe_database(engine: AsyncEngine, timeout: float = DB_TIMEOUT) -> str | None:
    """None when the database answers `SELECT 1` within `timeout`, else the failure's type name
    (never its message: a driver's message may quote a connection string)."""
    try:
        await fetch_rows(engine, "SELECT 1", timeout)
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return type(exc).__name__
    return None


# Built from our own state constants, nothing from outside.
_BACKLOG_SQL = (
    "SELECT kind, state, COUNT(*) FROM outbox "  # noqa: S608
    f"WHERE state IN ('{PENDING}', '{SENDING}') GROUP BY kind, state"
)


@dataclass
class _Snapshot:
    """What the last scrape read from the database and the pool."""

    backlog: dict[tuple[str, str], int] = field(default_factory=dict)
    backlog_ok: bool = False
    pool_checked_out: int | None = None


class _ScrapeTimeCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        snapshot = self.metrics.snapshot
        backlog = GaugeMetricFamily(
            "hromada_outbox_backlog",
            "Outbox rows waiting (pending) or being sent (sending), by kind and state",
            labels=["kind", "state"],
        )
        for (kind, state), count in sorted(snapshot.backlog.items()):
            backlog.add_metric([kind, state], count)
        yield backlog
        yield GaugeMetricFamily(
            "hromada_outbox_backlog_query_ok",
            "1 when the outbox backlog query of this scrape answered in time, else 0",
            value=1 if snapshot.backlog_ok else 0,
        )
        if snapshot.pool_checked_out is not None:
            yield GaugeMetricFamily(
                "hromada_db_pool_in_use",
                "Database connections checked out of the pool at scrape time",
                value=snapshot.pool_checked_out,
            )


class _ProcessWide(Collector):
    """Hands the process-wide metrics (the limiter's waits) to an app's registry."""

    def collect(self) -> Iterable[Metric]:
        return PROCESS_REGISTRY.collect()


class Metrics:
    """The metrics of one app (one dispatcher and its bot), in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        self.updates = Counter(
            "hromada_updates_total",
            "Updates by kind (message, callback_query, ...) and outcome (handled, not_handled, error)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "hromada_update_handling_seconds",
            "Time from an update entering the dispatcher to its handler's end, by kind",
            ["kind"],
            buckets=UPDATE_BUCKETS,
            registry=self.registry,
        )
        self.sends = Counter(
            "hromada_telegram_requests_total",
            "Bot API calls by method and result "
            "(ok, retry_after, bad_request, forbidden, server_error, malformed, network, other)",
            ["method", "result"],
            registry=self.registry,
        )
        self._update_counters: dict[tuple[str, str], Counter] = {}
        self._update_timers: dict[str, Histogram] = {}
        self.snapshot = _Snapshot()
        self.registry.register(_ScrapeTimeCollector(self))
        self.registry.register(_ProcessWide())
        if process:
            ProcessCollector(registry=self.registry)  # RSS, CPU seconds, open files

    def observe_update(self, kind: str, outcome: str, seconds: float) -> None:
        # The labelled children are looked up once per label set: `labels()` takes a lock and
        # builds a key on every call, and this runs for every update.
        counter = self._update_counters.get((kind, outcome))
        if counter is None:
            counter = self._update_counters[(kind, outcome)] = self.updates.labels(kind=kind, outcome=outcome)
        timer = self._update_timers.get(kind)
        if timer is None:
            timer = self._update_timers[kind] = self.update_seconds.labels(kind=kind)
        counter.inc()
        timer.observe(seconds)

    def install(self, bot: Bot) -> None:
        """Count the calls of this bot (once per bot)."""
        if not any(isinstance(m, SendMetricsMiddleware) for m in bot.session.middleware):
            bot.session.middleware(SendMetricsMiddleware(self))

    async def refresh(self, engine: AsyncEngine, timeout: float = DB_TIMEOUT) -> None:
        """Read what is measured at scrape time: the pool's use and the outbox backlog."""
        checkedout = getattr(engine.pool, "checkedout", None)
        pool_in_use = checkedout() if callable(checkedout) else None
        backlog: dict[tuple[str, str], int] = {}
        ok = True
        try:
            for kind, state, count in await fetch_rows(engine, _BACKLOG_SQL, timeout):
                backlog[(str(kind), str(state))] = int(count)  # type: ignore[call-overload]
        except Exception:  # reported as hromada_outbox_backlog_query_ok 0, the scrape still answers
            ok, backlog = False, {}
        self.snapshot = _Snapshot(backlog, ok, pool_in_use)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for; returns (body, content type)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
