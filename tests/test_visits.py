"""Home visits: the worker's calendar flow, the resident's answers, reminders, the agenda."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from handlers.kit.callbacks import VisitAnswerCb, VisitCalCb, VisitNewCb, VisitWorkerCb
from models import Case, CaseEvent, OutboxMessage, Visit, Worker
from models.outbox import CANCELLED, PENDING
from services.clock import FrozenClock
from services.reminders import ReminderRules
from services.text import tidy
from services.visits import VisitError, VisitService, parse_proposed_time, plan_due_agendas
from tests.factories import add_resident, add_worker
from tests.seeded_cases import make_case

KYIV = ReminderRules().tz
# Monday 23.11.2026, 10:00 in Kyiv.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=KYIV).astimezone(UTC)
RESIDENT, WORKER, STRANGER = 501, 601, 701


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _setup(sessionmaker):
    await add_resident(sessionmaker, RESIDENT)
    worker = await add_worker(sessionmaker, WORKER, "ves-csp", display_name="Олена")
    case_id = await make_case(sessionmaker, RESIDENT, service_code="home_care")
    return worker, case_id


async def _schedule_via_bot(worker_client, case_id: int, day: str = "25", hour: str = "14:00–15:00"):
    replies = await worker_client.click_data(VisitNewCb(case_id=case_id).pack())
    assert "11.2026" in replies[-1].text
    assert "·" in replies[-1].buttons()  # past days are not clickable
    await worker_client.click(day)
    await worker_client.click(hour)
    await worker_client.send("Соціальна працівниця Олена <терцентр>")
    return await worker_client.send("Паспорт і довідку від лікаря")


async def test_worker_schedules_resident_confirms(make_client, sessionmaker, reference, deliverer, clock):
    _worker, case_id = await _setup(sessionmaker)
    worker_client = make_client(user_id=WORKER)
    replies = await _schedule_via_bot(worker_client, case_id)
    assert "25.11.2026, 14:00–15:00" in replies[-1].text

    resident = make_client(user_id=RESIDENT)
    assert await deliverer.deliver_due() >= 1
    received = resident.read()
    invite = [r for r in received if "Домашній візит" in r.text][-1]
    assert "25.11.2026, 14:00–15:00" in invite.text
    # One message about the visit: no generic "status changed" notice is queued on top.
    async with sessionmaker() as session:
        status_notices = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "case_status_changed")
        )
    assert status_notices == 0
    assert "&lt;терцентр&gt;" in invite.method.text  # typed text escaped
    assert invite.buttons() == ["✅ Підтверджую", "🔁 Інший час", "❌ Скасувати"]

    await resident.click("Підтверджую")
    async with sessionmaker() as session:
        visit = await session.scalar(select(Visit))
        case = await session.get(Case, case_id)
        kinds = (await session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id))).all()
        reminders = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind.in_(("visit_day_before", "visit_soon")))
            )
        ).all()
    assert visit.status == "confirmed" and case.status == "visit_planned"
    assert {"visit_planned", "visit_confirmed", "status"} <= set(kinds)
    due = {r.kind: r.due_at.astimezone(KYIV) for r in reminders}
    assert due == {
        "visit_day_before": datetime(2026, 11, 24, 18, 0, tzinfo=KYIV),
        "visit_soon": datetime(2026, 11, 25, 12, 0, tzinfo=KYIV),
    }
    await deliverer.deliver_due()
    (notice,) = [r for r in worker_client.read() if "підтвердив" in r.text]
    assert "25.11.2026" in notice.text and notice.buttons() == ["🗓 Перенести візит", "❌ Скасувати візит"]

    # The reminders go out on time, in order.
    clock.set(datetime(2026, 11, 24, 18, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 1
    assert "завтра" in resident.read()[-1].text
    clock.set(datetime(2026, 11, 25, 12, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 1
    assert "Сьогодні о 14:00" in resident.read()[-1].text


async def test_resident_asks_another_time_and_worker_moves_it(
    make_client, sessionmaker, reference, deliverer
):
    _worker, case_id = await _setup(sessionmaker)
    worker_client = make_client(user_id=WORKER)
    await _schedule_via_bot(worker_client, case_id)
    resident = make_client(user_id=RESIDENT)
    await deliverer.deliver_due()
    resident.read()
    await resident.click("Інший час")
    await resident.send_sticker()  # not text: asked again, nothing lost
    assert "текстом" in resident.read()[-1].text if resident.unread_count() else True
    replies = await resident.send("Краще 27.11 о 10:00, бо 25-го я в лікарні")
    assert "передали" in replies[-1].text
    async with sessionmaker() as session:
        visit = await session.scalar(select(Visit))
    assert visit.status == "reschedule_requested"
    assert visit.proposed_starts_at.astimezone(KYIV) == datetime(2026, 11, 27, 10, 0, tzinfo=KYIV)
    await deliverer.deliver_due()
    (notice,) = [r for r in worker_client.read() if "перенести" in r.text]
    assert "27.11.2026 10:00" in notice.text and "лікарні" in notice.text

    await worker_client.click("Перенести візит")
    await worker_client.click("27")
    replies = await worker_client.click("10:00–11:00")
    assert "27.11.2026, 10:00–11:00" in replies[-1].text
    async with sessionmaker() as session:
        visit = await session.scalar(select(Visit))
        rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.visit_id == visit.id))).all()
    assert visit.status == "planned"
    old = [r for r in rows if r.kind in ("visit_day_before", "visit_soon") and r.state == CANCELLED]
    new = [r for r in rows if r.kind in ("visit_day_before", "visit_soon") and r.state == PENDING]
    assert len(old) == 2 and len(new) == 2
    assert min(r.due_at for r in new).astimezone(KYIV) == datetime(2026, 11, 26, 18, 0, tzinfo=KYIV)
    await deliverer.deliver_due()
    assert any("Візит перенесено" in r.text for r in resident.read())


async def test_cancel_stops_reminders_and_tells_worker(
    make_client, sessionmaker, reference, deliverer, clock
):
    _worker, case_id = await _setup(sessionmaker)
    worker_client = make_client(user_id=WORKER)
    await _schedule_via_bot(worker_client, case_id)
    resident = make_client(user_id=RESIDENT)
    await deliverer.deliver_due()
    resident.read()
    await resident.click("Скасувати")
    await resident.click("Ні, залишити")
    await resident.click("Скасувати")
    await resident.click("Так, скасувати візит")
    async with sessionmaker() as session:
        visit = await session.scalar(select(Visit))
        states = (
            await session.scalars(
                select(OutboxMessage.state).where(OutboxMessage.kind.in_(("visit_day_before", "visit_soon")))
            )
        ).all()
    assert visit.status == "cancelled" and set(states) == {CANCELLED}
    await deliverer.deliver_due()
    assert any("скасував" in r.text for r in worker_client.read())
    clock.advance(days=3)
    assert await deliverer.deliver_due() == 0


async def test_reminder_dropped_at_send_time_when_case_closed(
    sessionmaker, reference, deliverer, clock, make_client
):
    worker, case_id = await _setup(sessionmaker)
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        w = await session.get(Worker, worker.id)
        starts = datetime(2026, 11, 26, 11, 0, tzinfo=KYIV)
        await VisitService(session, clock).schedule(case, w, starts, starts + timedelta(hours=1), "", "")
    await deliverer.deliver_due()
    async with sessionmaker.begin() as session:
        (await session.get(Case, case_id)).status = "resolved"  # closed some other way
    clock.set(datetime(2026, 11, 25, 18, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 0
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "visit_day_before"))
    assert row.state == CANCELLED


async def test_forged_and_foreign_buttons_change_nothing(make_client, sessionmaker, reference, deliverer):
    _worker, case_id = await _setup(sessionmaker)
    worker_client = make_client(user_id=WORKER)
    await _schedule_via_bot(worker_client, case_id)
    async with sessionmaker() as session:
        visit_id = await session.scalar(select(Visit.id))
    await add_resident(sessionmaker, STRANGER)
    stranger = make_client(user_id=STRANGER)
    for data in (
        VisitAnswerCb(action="confirm", visit_id=visit_id).pack(),
        VisitAnswerCb(action="cancel_yes", visit_id=visit_id).pack(),
        VisitAnswerCb(action="confirm", visit_id=visit_id + 100).pack(),
        VisitWorkerCb(action="cancel", visit_id=visit_id).pack(),
        VisitNewCb(case_id=case_id).pack(),
        VisitCalCb(action="time", case_id=case_id, value="2026112609").pack(),
    ):
        replies = await stranger.click_data(data)
        assert any(r.kind == "alert" for r in replies), data
    # Another team's worker may not touch the case either.
    await add_worker(sessionmaker, 801, "brs-social")
    other = make_client(user_id=801)
    replies = await other.click_data(VisitWorkerCb(action="cancel", visit_id=visit_id).pack())
    assert replies[-1].kind == "alert"
    async with sessionmaker() as session:
        assert (await session.scalar(select(Visit.status))) == "planned"
        assert (await session.scalar(select(Visit.id).where(Visit.id != visit_id))) is None


async def test_visit_validation(sessionmaker, reference, clock):
    worker, case_id = await _setup(sessionmaker)
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        w = await session.get(Worker, worker.id)
        service = VisitService(session, clock)
        start = NOW + timedelta(days=1)
        for starts, ends, who, code in [
            (NOW - timedelta(hours=1), NOW, "", "in_past"),
            (start, start, "", "bad_window"),
            (start, start + timedelta(hours=9), "", "bad_window"),
            (NOW + timedelta(days=400), NOW + timedelta(days=400, hours=1), "", "too_far"),
            (start, start + timedelta(hours=1), "x" * 201, "who_too_long"),
        ]:
            with pytest.raises(VisitError) as err:
                await service.schedule(case, w, starts, ends, who, "")
            assert err.value.code == code


def test_soon_reminder_rules():
    rules = ReminderRules()
    # 14:00 visit: at 12:00, not urgent.
    at, urgent = rules.visit_soon(datetime(2026, 11, 25, 14, 0, tzinfo=KYIV))
    assert at == datetime(2026, 11, 25, 12, 0, tzinfo=KYIV) and not urgent
    # 09:00 visit: 07:00 is quiet, moved to 08:00 (still an hour before), not urgent.
    at, urgent = rules.visit_soon(datetime(2026, 11, 25, 9, 0, tzinfo=KYIV))
    assert at == datetime(2026, 11, 25, 8, 0, tzinfo=KYIV) and not urgent
    # 08:15 visit: 08:00 would be too late, so 06:15 and urgent (the visit itself is at dawn).
    at, urgent = rules.visit_soon(datetime(2026, 11, 25, 8, 15, tzinfo=KYIV))
    assert at == datetime(2026, 11, 25, 6, 15, tzinfo=KYIV) and urgent
    # The day-before reminder is at 18:00, never in quiet hours.
    assert rules.visit_day_before(datetime(2026, 11, 25, 8, 15, tzinfo=KYIV)) == datetime(
        2026, 11, 24, 18, 0, tzinfo=KYIV
    )
    # Across the DST change (29.03.2026, Kyiv UTC+2 → UTC+3) local hours hold.
    assert rules.visit_day_before(datetime(2026, 3, 30, 10, 0, tzinfo=KYIV)).astimezone(UTC).hour == 15


async def test_morning_agenda_ordered_by_settlement(sessionmaker, reference, clock, deliverer, make_client):
    worker, case_a = await _setup(sessionmaker)
    case_b = await make_case(sessionmaker, RESIDENT, service_code="home_care", settlement_code="vesele")
    case_c = await make_case(sessionmaker, RESIDENT, service_code="home_care", settlement_code="novopetrivka")
    tomorrow = date(2026, 11, 24)
    async with sessionmaker.begin() as session:
        w = await session.get(Worker, worker.id)
        service = VisitService(session, clock)
        for case_id, hour in ((case_a, 9), (case_b, 15), (case_c, 11), (case_b, 10)):
            starts = datetime(2026, 11, 24, hour, 0, tzinfo=KYIV)
            await service.schedule(
                await session.get(Case, case_id), w, starts, starts + timedelta(hours=1), "", ""
            )
    await deliverer.deliver_due()
    worker_client = make_client(user_id=WORKER)
    worker_client.read()
    for hhmm, expected in (((0, 30), 0), ((7, 29), 0), ((7, 59), 0), ((8, 0), 1), ((8, 5), 0)):
        clock.set(
            datetime.combine(tomorrow, datetime.min.time(), tzinfo=KYIV).replace(hour=hhmm[0], minute=hhmm[1])
        )
        async with sessionmaker.begin() as session:
            assert await plan_due_agendas(session, clock.now()) == expected, hhmm
    await deliverer.deliver_due()
    (agenda,) = [r for r in worker_client.read() if "Візити на сьогодні" in r.text]
    lines = [line for line in agenda.text.splitlines() if line.startswith("•")]
    # Settlements alphabetically (Веселе, Матвіївка, Новопетрівка), then by time.
    assert [line.split(" · ")[1] for line in lines] == ["Веселе", "Веселе", "Матвіївка", "Новопетрівка"]
    assert lines[0].startswith("• 10:00") and lines[1].startswith("• 15:00")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=0, max_size=80))
def test_proposed_time_parser_never_crashes(text):
    rules = ReminderRules()
    at = parse_proposed_time(text, NOW, rules)
    assert at is None or NOW < at <= NOW + timedelta(days=366)


def test_proposed_time_examples():
    rules = ReminderRules()
    assert parse_proposed_time("25.11 14:00", NOW, rules) == datetime(2026, 11, 25, 14, 0, tzinfo=KYIV)
    assert parse_proposed_time("може 3.1 о 9:30?", NOW, rules) == datetime(2027, 1, 3, 9, 30, tzinfo=KYIV)
    assert parse_proposed_time("31.02 10:00", NOW, rules) is None
    assert parse_proposed_time("будь-коли після обіду", NOW, rules) is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=0, max_size=260))
async def test_who_step_takes_any_text_politely(app, make_client, sessionmaker, reference, text):
    from aiogram.fsm.storage.base import StorageKey

    from handlers.worker.visits import VisitForm

    async with sessionmaker() as session:
        exists = await session.scalar(select(Worker.id))
    if exists is None:
        await _setup(sessionmaker)
    async with sessionmaker() as session:
        case_id = await session.scalar(select(Case.id))
    worker_client = make_client(user_id=WORKER)
    key = StorageKey(bot_id=worker_client.bot.id, chat_id=WORKER, user_id=WORKER)
    await app.dispatcher.storage.set_state(key, VisitForm.who)
    await app.dispatcher.storage.set_data(
        key,
        {
            "visit_case": case_id,
            "visit_starts": "2026-11-25T12:00:00+00:00",
            "visit_ends": "2026-11-25T13:00:00+00:00",
        },
    )
    replies = await worker_client.send(text)
    state = await app.dispatcher.storage.get_state(key)
    assert replies, "every text gets an answer"
    cleaned = tidy(text, multiline=True)  # what the input boundary keeps of it
    if cleaned and len(cleaned) <= 200 and not text.startswith("/") and not cleaned.startswith("/"):
        assert state == VisitForm.prepare.state
    elif not text.startswith("/"):
        assert state == VisitForm.who.state  # kept where it was, asked again
