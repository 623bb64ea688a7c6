"""The scheduler: APScheduler 3 (AsyncIOScheduler) started with the dispatcher, stopped with it.

It holds no state of its own: every job reads the database (the source of truth) and writes
outbox rows, and the deliverer sends whatever is due. Jobs are plain async functions taking
what they need; each runs in its own transaction. Several instances may run the scheduler:
each planning run takes a PostgreSQL advisory lock for its job in that transaction and skips
when another instance holds it; the deliverer's claims share the rows safely (SKIP LOCKED). On
SQLite (one process) there is nothing to share.

- deliver  every `settings.delivery.poll_seconds`: `OutboxDeliverer.deliver_due()`.
- agendas  every minute: today's agenda for each worker with visits, once the agenda hour passed.
- mobile office reminders  every 10 minutes: the day-before reminder to subscribers.
- renewals  hourly: re-verification reminders for resolved renewable cases.
- referrals  every 10 minutes: unanswered referrals reminded to the partner, then escalated
  to the referring team's coordinators (services/referrals.py), each step once.
- weekly reports  hourly: on Monday from 08:00 local, last week's summary to each coordinator and
  oblast-level member (services/report_weekly.py; one per person and week).
- sla  every minute: due-soon reminders and escalations of cases whose next SLA check has come
  (services/sla_sweep.py; an idle run is one empty index scan).
- sla digest  every 5 minutes: each worker's morning digest at 08:00 on their working days.
- retention  daily: personal data of cases closed more than `settings.delivery.retention_days`
  ago is erased (services/privacy.py), the anonymous record and the audit trail stay.

Wiring (bot/factory.py or bot/cli.py, after the dispatcher and bot exist):

    from bot.scheduler import setup_scheduler
    runtime = setup_scheduler(dispatcher, bot=bot, sessionmaker=..., i18n=..., clock=..., settings=...)

`setup_scheduler` registers startup/shutdown hooks and puts `delivery` (this runtime) into the
dispatcher's workflow data, so a handler can call `delivery.kick()` after queueing a message
to have it sent without waiting for the next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery import OutboxDeliverer
from infra import ratelimit
from infra.isolation import try_job_lock
from infra.logsafe import describe_exception
from infra.metrics import Metrics
from infra.settings import Settings
from services.clock import Clock
from services.mobile_office import plan_day_before_reminders
from services.privacy import PrivacyService
from services.referrals import plan_referral_steps
from services.reminders import ReminderRules, plan_due_renewals
from services.report_weekly import plan_weekly_reports
from services.sla_digest import plan_morning_digests
from services.sla_sweep import sweep_sla
from services.visits import plan_due_agendas

log = logging.getLogger(__name__)

KICK_DELAY = 0.2  # let the handler's transaction commit first
RETENTION_FIRST_RUN = timedelta(minutes=2)


class DeliveryRuntime:
    """The running scheduler and deliverer of one bot process."""

    def __init__(
        self,
        deliverer: OutboxDeliverer,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.deliverer = deliverer
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings
        self.rules = ReminderRules.from_settings(settings)
        self.scheduler = AsyncIOScheduler(timezone=settings.locale.timezone)
        self._running = False
        self._again = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- jobs -----------------------------------------------------------------------------------
    async def deliver(self) -> None:
        """One delivery run; a kick during a run makes it go round once more."""
        if self._running:
            self._again = True
            return
        self._running = True
        try:
            while True:
                self._again = False
                try:
                    await self.deliverer.deliver_due()
                except Exception as exc:  # the next poll tries again; never kill the job
                    log.error("outbox delivery run failed:\n%s", describe_exception(exc))
                if not self._again:
                    break
        finally:
            self._running = False

    async def _in_transaction(self, name: str, job: Callable[[AsyncSession], Awaitable[int]]) -> None:
        """Run a planning job in its own transaction, at one instance at a time: one that finds
        the job running elsewhere skips this run (the other plans the same rows). The planning
        is idempotent anyway (dedupe keys), so a run after another adds nothing twice."""
        try:
            async with self.sessionmaker.begin() as session:
                if not await try_job_lock(session, name):
                    log.debug("%s: running at another instance, skipped here", name)
                    return
                added = await job(session)
            if added:
                log.info("%s: %d message(s) planned", name, added)
                self.kick()
        except Exception as exc:
            log.error("%s failed:\n%s", name, describe_exception(exc))

    async def plan_agendas(self) -> None:
        await self._in_transaction("agendas", lambda s: plan_due_agendas(s, self.clock.now(), self.rules))

    async def plan_mobile_office(self) -> None:
        await self._in_transaction(
            "mobile office reminders", lambda s: plan_day_before_reminders(s, self.clock.now(), self.rules)
        )

    async def plan_renewals(self) -> None:
        await self._in_transaction("renewals", lambda s: plan_due_renewals(s, self.clock.now(), self.rules))

    async def plan_referrals(self) -> None:
        await self._in_transaction(
            "referrals", lambda s: plan_referral_steps(s, self.clock.now(), self.clock)
        )

    async def plan_weekly_reports(self) -> None:
        await self._in_transaction(
            "weekly reports", lambda s: plan_weekly_reports(s, self.clock.now(), self.rules.tz)
        )

    async def sweep_sla(self) -> None:
        async def job(session: AsyncSession) -> int:
            return (await sweep_sla(session, self.clock, self.rules.tz))[1]

        await self._in_transaction("sla", job)

    async def plan_sla_digests(self) -> None:
        await self._in_transaction(
            "sla digest", lambda s: plan_morning_digests(s, self.clock.now(), self.rules)
        )

    async def apply_retention(self) -> None:
        days = self.settings.delivery.retention_days
        try:
            async with self.sessionmaker.begin() as session:
                if not await try_job_lock(session, "retention"):
                    log.debug("retention: running at another instance, skipped here")
                    return
                await PrivacyService(session, self.clock).apply_retention(self.clock.now(), days)
        except Exception:
            log.exception("retention failed")

    # -- control --------------------------------------------------------------------------------
    def kick(self) -> None:
        """Send fresh messages soon instead of at the next poll (safe to call from handlers)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(KICK_DELAY, self._spawn)

    def _spawn(self) -> None:
        task = asyncio.get_running_loop().create_task(self.deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        poll = self.settings.delivery.poll_seconds
        common = {"max_instances": 1, "coalesce": True}
        self.scheduler.add_job(
            self.deliver,
            "interval",
            seconds=poll,
            id="deliver",
            misfire_grace_time=max(1, int(poll * 2)),
            **common,
        )
        self.scheduler.add_job(
            self.plan_agendas, "interval", minutes=1, id="agendas", misfire_grace_time=60, **common
        )
        self.scheduler.add_job(
            self.plan_mobile_office,
            "interval",
            minutes=10,
            id="mobile_office",
            misfire_grace_time=600,
            **common,
        )
        self.scheduler.add_job(
            self.sweep_sla, "interval", minutes=1, id="sla", misfire_grace_time=60, **common
        )
        self.scheduler.add_job(
            self.plan_sla_digests, "interval", minutes=5, id="sla_digest", misfire_grace_time=300, **common
        )
        self.scheduler.add_job(
            self.plan_renewals, "interval", hours=1, id="renewals", misfire_grace_time=3600, **common
        )
        self.scheduler.add_job(
            self.plan_referrals, "interval", minutes=10, id="referrals", misfire_grace_time=600, **common
        )
        self.scheduler.add_job(
            self.plan_weekly_reports,
            "interval",
            hours=1,
            id="weekly_reports",
            misfire_grace_time=3600,
            **common,
        )
        self.scheduler.add_job(
            self.apply_retention,
            "interval",
            hours=24,
            id="retention",
            misfire_grace_time=3600,
            # Also soon after each start, so a bot restarted more often than daily still runs it.
            next_run_time=datetime.now(UTC) + RETENTION_FIRST_RUN,
            **common,
        )
        self.scheduler.start()
        self.kick()  # whatever became due while we were down
        log.info("scheduler started (poll every %.1f s)", poll)

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler.shutdown runs via call_soon on this loop
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("scheduler stopped")


def kick(delivery: DeliveryRuntime | None) -> None:
    """For handlers: `delivery` is the workflow-data runtime, None when no scheduler runs
    (tests, console); then the next deliverer run picks the message up."""
    if delivery is not None:
        delivery.kick()


def make_limiter(
    bot: Bot, settings: Settings, on_wait: ratelimit.WaitObserver | None = None
) -> ratelimit.BaseRateLimiter:
    """The send budget: in Redis, shared by every instance of this bot, when REDIS_URL is set;
    otherwise this process's own. `on_wait(lane, seconds)` hears every wait (metrics)."""
    rate, per_chat = settings.delivery.global_rate, settings.delivery.per_chat_interval
    if settings.redis.url:
        from infra.shared_ratelimit import SharedRateLimiter

        return SharedRateLimiter.from_url(
            settings.redis.url, rate, per_chat, prefix=f"hromada:ratelimit:{bot.id}", on_wait=on_wait
        )
    return ratelimit.RateLimiter(rate, per_chat, on_wait=on_wait)


def setup_scheduler(
    dispatcher: Dispatcher,
    *,
    bot: Bot,
    sessionmaker: async_sessionmaker[AsyncSession],
    i18n: I18n,
    clock: Clock,
    settings: Settings,
    deliverer: OutboxDeliverer | None = None,
    share_limits: bool = True,
    on_limiter_wait: ratelimit.WaitObserver | None = None,
) -> DeliveryRuntime:
    """Create the runtime, hook it to the dispatcher's startup/shutdown, expose it to handlers
    as `delivery`. With `share_limits`, the rate limiter is put on the bot's session so handler
    replies and outbox messages share one budget (with REDIS_URL, shared by all instances)."""
    limiter: ratelimit.BaseRateLimiter | None = None  # ours to close
    if share_limits and ratelimit.installed(bot) is None:
        limiter = ratelimit.install(bot, make_limiter(bot, settings, on_limiter_wait))
    metrics = dispatcher.get("metrics")
    if isinstance(metrics, Metrics):
        metrics.install(bot)  # every Bot API call of this bot, by method and result
    deliverer = deliverer or OutboxDeliverer(bot, sessionmaker, i18n, clock, settings)
    runtime = DeliveryRuntime(deliverer, sessionmaker, clock, settings)

    async def on_startup() -> None:
        runtime.start()

    async def on_shutdown() -> None:
        await runtime.stop()
        if limiter is not None:
            await limiter.close()

    dispatcher.startup.register(on_startup)
    dispatcher.shutdown.register(on_shutdown)
    dispatcher["delivery"] = runtime
    return runtime
