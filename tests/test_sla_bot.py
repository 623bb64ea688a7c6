"""SLA through the real dispatcher and scheduler job on both databases: the card and the queue
say the due time in words; a case breaches overnight on the injected clock and every escalation
step reaches its people exactly once, each in their own language."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.scheduler import KICK_DELAY, DeliveryRuntime
from models import Case, CaseEvent, OutboxMessage
from models.people import ROLE_COORDINATOR, ROLE_OBLAST
from services.clock import FrozenClock
from tests.factories import add_resident, add_worker
from tests.test_sla import _file

KYIV = ZoneInfo("Europe/Kyiv")
# Wednesday 02.12.2026, 15:30 in Kyiv: subsidy's 8 working hours run to Thursday 15:30.
FILED = datetime(2026, 12, 2, 15, 30, tzinfo=KYIV)


async def settle(runtime: DeliveryRuntime) -> None:
    """A job that queued messages kicks the runtime's deliverer: let that run finish."""
    await asyncio.sleep(KICK_DELAY * 2)
    await asyncio.gather(*list(runtime._tasks))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(FILED.astimezone(UTC))


async def test_card_and_queue_show_the_due_time_in_words(make_client, reference, sessionmaker, clock) -> None:
    resident = await add_resident(sessionmaker, 4001)
    await add_worker(sessionmaker, 4101, "ves-csp", display_name="Olha")
    case_id = await _file(sessionmaker, clock, resident)
    worker = make_client(user_id=4101)
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    assert "відповісти до 15:30 завтра" in card.text
    queue = (await worker.click_data("wq:team:open:0:0"))[-1]
    assert any("відповісти до 15:30 завтра" in b for b in queue.buttons())
    # Two working days later, still untouched: overdue in working days, Ukrainian plural.
    clock.set(datetime(2026, 12, 7, 16, 0, tzinfo=KYIV).astimezone(UTC))
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    assert "прострочено на 2 роб. дні" in card.text
    # Taken: the resolution clock (80 working hours from filing) is shown instead.
    await worker.click_data(f"case:take:{case_id}")
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    assert "вирішити до 09:00 17.12.2026" in card.text


async def test_overnight_breach_escalates_once_per_step_in_each_language(
    make_client, reference, sessionmaker, clock, app, deliverer
) -> None:
    resident = await add_resident(sessionmaker, 4002)
    await add_worker(sessionmaker, 4102, "ves-csp", display_name="Olha")
    await add_worker(sessionmaker, 4103, "ves-csp", role=ROLE_COORDINATOR, language="uk")
    await add_worker(sessionmaker, 4104, "zp-oblast", role=ROLE_COORDINATOR, language="en")
    await add_worker(sessionmaker, 4105, "zp-oblast", role=ROLE_OBLAST, language="uk")
    case_id = await _file(sessionmaker, clock, resident)
    overseer = make_client(user_id=4105)
    runtime = DeliveryRuntime(deliverer, sessionmaker, clock, app.settings)
    assignee, coordinator, oblast = (make_client(user_id=u) for u in (4102, 4103, 4104))
    await deliverer.deliver_due()  # the new-case notice
    for client in (assignee, coordinator, oblast):
        client.read()

    # Thursday 14:40: one working hour left — the assignee is reminded, once.
    clock.set(datetime(2026, 12, 3, 14, 40, tzinfo=KYIV).astimezone(UTC))
    await runtime.sweep_sla()
    await runtime.sweep_sla()
    await settle(runtime)
    await deliverer.deliver_due()
    reminders = [r.text for r in assignee.read()]
    assert len(reminders) == 1 and "Наближається строк" in reminders[0] and "03.12.2026 15:30" in reminders[0]
    assert coordinator.read() == [] and oblast.read() == []

    # Overnight to Friday 09:00 nothing is taken: breached (Thursday 15:30). Sweeps every minute
    # see the same case once; the coordinator hears it once.
    clock.set(datetime(2026, 12, 4, 9, 0, tzinfo=KYIV).astimezone(UTC))
    for _ in range(3):
        await runtime.sweep_sla()
    await settle(runtime)
    await deliverer.deliver_due()
    told = [r.text for r in coordinator.read()]
    assert len(told) == 1 and "Порушено строк" in told[0]
    assert oblast.read() == []

    # A working day past due (Friday 15:30 → Monday): the oblast department, in English.
    clock.set(datetime(2026, 12, 7, 10, 0, tzinfo=KYIV).astimezone(UTC))
    for _ in range(3):
        await runtime.sweep_sla()
    await settle(runtime)
    await deliverer.deliver_due()
    escalated = [r.text for r in oblast.read()]
    assert len(escalated) == 1 and "long overdue" in escalated[0] and "oblast department" in escalated[0]
    assert coordinator.read() == [] and assignee.read() == []
    # Who answers for the oblast's figures hears the same last step, and only that one.
    overseen = [r.text for r in overseer.read()]
    assert len(overseen) == 1 and "Тривале порушення строку" in overseen[0], overseen

    async with sessionmaker() as session:
        events = (
            await session.scalars(
                select(CaseEvent.kind).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        ).all()
        assert [e for e in events if e.startswith("sla_")] == [
            "sla_due_soon",
            "sla_breached",
            "sla_escalated",
        ]
        rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.kind.like("sla_%")))).all()
        assert len(rows) == 4  # the assignee, the coordinator, the oblast's coordinator and overseer
        case = await session.get(Case, case_id)
        assert case.sla_next_check_at is None and case.sla_breached


async def test_morning_digest_once_on_working_days(
    make_client, reference, sessionmaker, clock, app, deliverer
) -> None:
    resident = await add_resident(sessionmaker, 4003)
    await add_worker(sessionmaker, 4105, "ves-csp", display_name="Olha", language="en")
    first = await _file(sessionmaker, clock, resident)  # first response due Thursday 15:30
    clock.set(datetime(2026, 11, 30, 10, 0, tzinfo=KYIV).astimezone(UTC))
    resident_two = await add_resident(sessionmaker, 4004)
    late = await _file(sessionmaker, clock, resident_two)  # due Tuesday 10:00: breached by Thursday
    runtime = DeliveryRuntime(deliverer, sessionmaker, clock, app.settings)
    worker = make_client(user_id=4105)
    clock.set(datetime(2026, 12, 3, 7, 59, tzinfo=KYIV).astimezone(UTC))
    await runtime.sweep_sla()
    await settle(runtime)
    await deliverer.deliver_due()
    worker.read()
    await runtime.plan_sla_digests()  # before 08:00: nothing yet
    clock.set(datetime(2026, 12, 3, 8, 0, tzinfo=KYIV).astimezone(UTC))
    await runtime.plan_sla_digests()
    await runtime.plan_sla_digests()
    await settle(runtime)
    await deliverer.deliver_due()
    digests = [r.text for r in worker.read()]
    assert len(digests) == 1
    async with sessionmaker() as session:
        numbers = {c.id: c.number for c in (await session.scalars(select(Case))).all()}
    digest = digests[0]
    assert "Good morning! Your plan for 03.12.2026" in digest
    assert f"Due today: 1\n• {numbers[first]} — 15:30" in digest
    assert f"Overdue: 1\n• {numbers[late]}" in digest
    # Saturday is not a working day of the team: no digest.
    clock.set(datetime(2026, 12, 5, 8, 30, tzinfo=KYIV).astimezone(UTC))
    await runtime.plan_sla_digests()
    await settle(runtime)
    await deliverer.deliver_due()
    assert worker.read() == []
