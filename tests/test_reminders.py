"""Planning rules (quiet hours, local hours), re-verification reminders, the scheduler runtime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

import pytest
from sqlalchemy import select

import bot.scheduler as scheduler_module
from bot.scheduler import setup_scheduler
from infra.ratelimit import installed
from models import Case, OutboxMessage, User
from models.outbox import CANCELLED, SENT
from services.clock import FrozenClock
from services.outbox import enqueue
from services.reminders import ReminderRules, plan_due_renewals
from tests.factories import add_resident
from tests.seeded_cases import make_case

KYIV = ReminderRules().tz
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=KYIV).astimezone(UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=KYIV)


def test_quiet_hours():
    rules = ReminderRules()
    assert rules.in_quiet_hours(local(2026, 11, 23, 21, 0))
    assert rules.in_quiet_hours(local(2026, 11, 23, 7, 59))
    assert not rules.in_quiet_hours(local(2026, 11, 23, 8, 0))
    assert not rules.in_quiet_hours(local(2026, 11, 23, 20, 59))
    assert rules.quiet_over(local(2026, 11, 23, 22, 30)) == local(2026, 11, 24, 8, 0)
    assert rules.quiet_over(local(2026, 11, 24, 3, 0)) == local(2026, 11, 24, 8, 0)
    assert rules.quiet_over(local(2026, 11, 24, 12, 0)) == local(2026, 11, 24, 12, 0)
    # A daytime quiet period and none at all.
    nap = ReminderRules(quiet_start=time(13), quiet_end=time(15))
    assert nap.in_quiet_hours(local(2026, 11, 23, 14, 0)) and not nap.in_quiet_hours(
        local(2026, 11, 23, 16, 0)
    )
    assert not ReminderRules(quiet_start=time(0), quiet_end=time(0)).in_quiet_hours(local(2026, 11, 23, 3, 0))
    # Agenda: 07:30 is quiet, so 08:00.
    assert rules.agenda_time(local(2026, 11, 24, 0, 0).date()) == local(2026, 11, 24, 8, 0)


def test_document_reminder_plans():
    rules = ReminderRules()
    requested = local(2026, 11, 23, 22, 0)
    assert [(tag, at) for tag, at in rules.docs_reminders(requested, None)] == [
        ("d+3", local(2026, 11, 26, 10, 0)),
        ("d+7", local(2026, 11, 30, 10, 0)),
        ("d+14", local(2026, 12, 7, 10, 0)),
    ]
    # Deadline the day after tomorrow: 3 days before is already past; overdue ones follow.
    assert rules.docs_reminders(requested, local(2026, 11, 25, 17, 0)) == [
        ("d-1", local(2026, 11, 24, 10, 0)),
        ("o+1", local(2026, 11, 26, 10, 0)),
        ("o+7", local(2026, 12, 2, 10, 0)),
    ]


async def test_renewal_reminders_planned_from_resolution(
    sessionmaker, reference, clock, deliverer, make_client
):
    await add_resident(sessionmaker, 501, language="en")
    case_id = await make_case(sessionmaker, 501, service_code="idp_support", status="resolved")
    other = await make_case(sessionmaker, 501, service_code="home_care", status="resolved")  # not renewable
    async with sessionmaker.begin() as session:
        for cid in (case_id, other):
            (await session.get(Case, cid)).closed_at = local(2026, 10, 1, 12, 0)
    async with sessionmaker.begin() as session:
        assert await plan_due_renewals(session, clock.now()) == 2
    async with sessionmaker.begin() as session:
        assert await plan_due_renewals(session, clock.now()) == 0  # idempotent
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.due_at))).all()
    # idp_support renews every 180 days: due 30.03.2027; reminders 30 and 7 days before, 10:00.
    assert [r.due_at.astimezone(KYIV) for r in rows] == [local(2027, 2, 28, 10, 0), local(2027, 3, 23, 10, 0)]
    assert {r.case_id for r in rows} == {case_id}
    clock.set(local(2027, 2, 28, 10, 0).astimezone(UTC))
    assert await deliverer.deliver_due() == 1
    (msg,) = make_client(user_id=501).read()
    assert "IDP support" in msg.text and "30.03.2027" in msg.text
    # Reopened as a new case? The old one is no longer resolved → the last reminder is dropped.
    async with sessionmaker.begin() as session:
        (await session.get(Case, case_id)).status = "in_progress"
    clock.set(local(2027, 3, 23, 10, 0).astimezone(UTC))
    assert await deliverer.deliver_due() == 0
    async with sessionmaker() as session:
        states = (await session.scalars(select(OutboxMessage.state).order_by(OutboxMessage.due_at))).all()
    assert states == [SENT, CANCELLED]


async def test_scheduler_starts_kicks_and_stops(app, bot, tg, sessionmaker, reference, monkeypatch):
    monkeypatch.setattr(scheduler_module, "KICK_DELAY", 0)
    runtime = setup_scheduler(
        app.dispatcher,
        bot=bot,
        sessionmaker=app.sessionmaker,
        i18n=app.i18n,
        clock=app.clock,
        settings=app.settings,
    )
    assert app.dispatcher["delivery"] is runtime
    assert installed(bot) is runtime.deliverer.limiter  # handler replies share the budget
    await app.dispatcher.emit_startup(bot=bot)
    try:
        assert runtime.scheduler.running
        assert {job.id for job in runtime.scheduler.get_jobs()} == {
            "deliver",
            "agendas",
            "mobile_office",
            "renewals",
            "retention",
            "sla",
            "sla_digest",
            "referrals",
            "weekly_reports",
        }
        await add_resident(sessionmaker, 555)
        async with sessionmaker.begin() as session:
            user = await session.scalar(select(User).where(User.telegram_id == 555))
            await enqueue(
                session,
                user=user,
                kind="renewal_due",
                payload={"number": "X", "service": "S", "due": "2027-01-01"},
                due_at=app.clock.now(),
            )
        runtime.kick()
        for _ in range(100):  # the kicked run is a task on this loop; let it finish
            await asyncio.sleep(0)
            if runtime._tasks:
                await asyncio.gather(*runtime._tasks)
            if tg.sent_to(555):
                break
        assert len(tg.sent_to(555)) == 1
        # A kick during a run makes it go round once more instead of overlapping.
        runtime._running = True
        await runtime.deliver()
        assert runtime._again is True
        runtime._running = False
    finally:
        await app.dispatcher.emit_shutdown(bot=bot)
    assert not runtime.scheduler.running
    async with sessionmaker() as session:
        assert (await session.scalar(select(OutboxMessage.state))) == SENT
