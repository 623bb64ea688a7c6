"""Erasure and retention: after /forget_me (or the retention job) none of the person's strings is
left in any text or JSON column of any table; notices queued before are not sent with them; a
notice is sent only while its recipient still has the right to it."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import JSON, String, Text, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.offline import BotClient
from models import (
    Application,
    ApplicationSubscription,
    Base,
    Case,
    CaseEvent,
    DocumentRequest,
    MobileOfficeBooking,
    MobileOfficeSchedule,
    OutboxMessage,
    Resident,
    Settlement,
    Team,
    TeamMember,
    User,
    Visit,
    Worker,
)
from models.outbox import CANCELLED, PENDING, SENT
from services.clock import FrozenClock
from tests.factories import add_worker
from tests.test_intake import _to_description, file_request

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday, 11:00 in Kyiv
WORKER = 5101

STREET = "Квітучаплощ 17"
PHONE = "501234567"  # the intake shares +380501234567
MESSAGE = "Мійсусідзлодій Петренко"
REPLY = "Відповідьпрокоханогоонука"
FILE = "diagnozcukrovyi"
WHO = "Олена Зорепадна"
PREPARE = "Довідкапроінвалідність"
RESIDENT_NOTE = "Ключпідкилимком"
DOC_NOTE = "Свідоцтвопросмертьбатька"
TOPIC = "Борговийкредитжах"
DRAFT = "Чернеткапробідність"
OUTCOME = "Призначенодопомогупсихіатра"
STRINGS = [STREET, PHONE, MESSAGE, REPLY, FILE, WHO, PREPARE, RESIDENT_NOTE, DOC_NOTE, TOPIC, DRAFT]
# The registry's copy of an application (imported by workers, re-imported from the registry)
# keeps its phone: the person's link to it — verified phone, subscriptions — is what goes.
REGISTRY_COLUMNS = {("applications", "phone")}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def leftovers(sessionmaker: async_sessionmaker[AsyncSession], strings: list[str]) -> list[str]:
    """Every (table.column: string) where one of `strings` is still stored, over every text and
    JSON column of every table (JSON serialised)."""
    found: list[str] = []
    async with sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            columns = [
                c
                for c in table.columns
                if isinstance(c.type, String | Text | JSON) and (table.name, c.name) not in REGISTRY_COLUMNS
            ]
            if not columns:
                continue
            for row in (await session.execute(select(*columns))).all():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    found += [f"{table.name}.{column.name}: {s}" for s in strings if s in text]
    return found


async def _case_of(sessionmaker, telegram_id: int) -> Case:
    async with sessionmaker() as session:
        case = await session.scalar(
            select(Case)
            .join(Resident, Resident.id == Case.resident_id)
            .join(User, User.id == Resident.user_id)
            .where(User.telegram_id == telegram_id)
            .order_by(Case.id.desc())
        )
        assert case is not None
        return case


async def _worker_writes(app, bot, worker: BotClient, case_id: int, text: str) -> None:
    from handlers.worker.cases import CaseForm

    fsm = app.dispatcher.fsm.get_context(bot=bot, chat_id=worker.user.id, user_id=worker.user.id)
    await fsm.set_state(CaseForm.write)
    await fsm.set_data({"case_id": case_id})
    replies = await worker.send(text)
    assert "в чергу" in replies[-1].text


async def _fill_everything(app, bot, resident: BotClient, worker: BotClient, sessionmaker, deliverer) -> Case:
    """The person's strings in every table that can hold them, through the bot where it has a
    way in (intake, file, messages both ways, documents, visit), directly where it has none."""
    from handlers.kit.callbacks import VisitNewCb

    await file_request(resident, description=f"Живу на вулиці {STREET}, світла немає")
    case = await _case_of(sessionmaker, resident.user.id)
    await deliverer.deliver_due()
    notice = next(r for r in worker.read() if case.number in r.text)
    replies = await worker.click("Взяти в роботу", message_id=notice.message_id)
    card = next(r for r in replies if r.kind == "message")
    replies = await worker.click("Запитати документи", message_id=card.message_id)
    checklist = next(r for r in replies if r.kind == "message")
    await worker.click("Паспорт", message_id=checklist.message_id)
    await worker.click("Готово", message_id=checklist.message_id)
    await worker.click("7 днів", message_id=checklist.message_id)

    await resident.press("Мої звернення")
    await resident.click(case.number)
    await resident.click("Додати документ")
    replies = await resident.send_document(f"{FILE}.pdf")
    assert all(r.kind != "alert" for r in replies)
    await resident.press("Мої звернення")
    await resident.click(case.number)
    await resident.click("Написати працівнику")
    await resident.send(MESSAGE)
    await _worker_writes(app, bot, worker, case.id, REPLY)

    await worker.click_data(VisitNewCb(case_id=case.id).pack())
    await worker.click("25")
    await worker.click("14:00–15:00")
    await worker.send(WHO)
    await worker.send(PREPARE)
    # Some notices go out (sent rows keep their payload), the reminders stay queued.
    await deliverer.deliver_due()

    async with sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.telegram_id == resident.user.id))
        assert user is not None
        await session.execute(
            update(Visit).where(Visit.case_id == case.id).values(resident_note=RESIDENT_NOTE)
        )
        await session.execute(
            update(DocumentRequest).where(DocumentRequest.case_id == case.id).values(note=DOC_NOTE)
        )
        settlement = await session.scalar(select(Settlement).where(Settlement.code == "matviivka"))
        assert settlement is not None
        schedule = MobileOfficeSchedule(
            settlement_id=settlement.id,
            weekday=1,
            start_time=time(10),
            end_time=time(11),
            place="Клуб",
            valid_from=date(2026, 11, 1),
        )
        session.add(schedule)
        await session.flush()
        session.add(
            MobileOfficeBooking(
                schedule_id=schedule.id,
                trip_date=date(2026, 11, 24),
                slot_start=time(10, 20),
                user_id=user.id,
                topic=TOPIC,
            )
        )
        application = Application(
            number=f"APP-{uuid.uuid4().hex[:8]}",
            kind="subsidy",
            phone=f"+380{PHONE}",
            status_code=None,
            status_changed_at=NOW,
        )
    async with sessionmaker.begin() as session:
        from models import ApplicationStatus

        code = await session.scalar(select(ApplicationStatus.code).limit(1))
        if code is None:
            session.add(ApplicationStatus(code="accepted", label_uk="Прийнято", label_en="Accepted"))
            code = "accepted"
        application.status_code = code
        session.add(application)
        await session.flush()
        session.add(ApplicationSubscription(user_id=user.id, application_id=application.id))

    # An intake draft left open.
    await _to_description(resident)
    await resident.send(DRAFT)
    return case


async def test_forget_me_leaves_no_copy_anywhere(
    app, bot, resident: BotClient, make_client, sessionmaker, deliverer
) -> None:
    worker = make_client(user_id=WORKER)
    await add_worker(sessionmaker, WORKER, "ves-csp", display_name="Olena")
    case = await _fill_everything(app, bot, resident, worker, sessionmaker, deliverer)
    before = await leftovers(sessionmaker, STRINGS)
    for expected in ("outbox", "case_messages", "visits", "attachments", "cases", "fsm_records"):
        assert any(f.startswith(expected + ".") for f in before), (expected, before)
    async with sessionmaker() as session:
        pending_to_resident = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.chat_id == resident.user.id, OutboxMessage.state == PENDING
            )
        )
    assert pending_to_resident is not None, "reminders are queued before the erasure"

    await resident.send("/forget_me")
    await resident.click("Так, видалити")

    assert await leftovers(sessionmaker, STRINGS) == []
    async with sessionmaker() as session:
        to_resident = OutboxMessage.chat_id == resident.user.id
        states = (await session.scalars(select(OutboxMessage.state).where(to_resident))).all()
        assert PENDING not in states and CANCELLED in states
        kept = await session.get(Case, case.id)
        assert kept is not None and kept.status == "visit_planned" and kept.service_id == case.service_id
        kinds = set((await session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id))).all())
        assert {"created", "visit_planned"} <= kinds, "the workers' audit trail stays"
    resident.read()
    await deliverer.deliver_due()
    assert not [r for r in resident.read() if any(s in r.text for s in STRINGS)]


async def test_notice_queued_before_erasure_is_not_sent(
    app, bot, resident: BotClient, make_client, sessionmaker, deliverer
) -> None:
    worker = make_client(user_id=WORKER)
    await add_worker(sessionmaker, WORKER, "ves-csp")
    await file_request(resident)
    case = await _case_of(sessionmaker, resident.user.id)
    await _worker_writes(app, bot, worker, case.id, REPLY)  # queued, not yet sent

    await resident.send("/forget_me")
    await resident.click("Так, видалити")
    resident.read()
    await deliverer.deliver_due()
    assert not [r for r in resident.read() if REPLY in r.text]


async def test_notice_dropped_at_send_time_when_consent_is_gone(
    app, bot, resident: BotClient, make_client, sessionmaker, deliverer
) -> None:
    """Consent withdrawn by another path (another instance, a console) after the row was queued."""
    worker = make_client(user_id=WORKER)
    await add_worker(sessionmaker, WORKER, "ves-csp")
    await file_request(resident)
    case = await _case_of(sessionmaker, resident.user.id)
    await _worker_writes(app, bot, worker, case.id, REPLY)
    async with sessionmaker.begin() as session:
        await session.execute(update(Resident).where(Resident.id == case.resident_id).values(consent_at=None))
    resident.read()
    await deliverer.deliver_due()
    assert not [r for r in resident.read() if REPLY in r.text]
    async with sessionmaker() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.kind == "case_message_to_resident")
        )
        assert row is not None and row.state == CANCELLED and row.last_error == "dropped: consent_gone"


async def test_worker_removed_from_team_gets_nothing_queued_before(
    resident: BotClient, make_client, sessionmaker, deliverer
) -> None:
    worker = make_client(user_id=WORKER)
    await add_worker(sessionmaker, WORKER, "ves-csp")
    await file_request(resident, description=f"Живу на вулиці {STREET}")
    async with sessionmaker.begin() as session:
        worker_id = await session.scalar(
            select(Worker.id).join(User, User.id == Worker.user_id).where(User.telegram_id == WORKER)
        )
        team_id = await session.scalar(select(Team.id).where(Team.code == "ves-csp"))
        await session.execute(
            delete(TeamMember).where(TeamMember.worker_id == worker_id, TeamMember.team_id == team_id)
        )
    await deliverer.deliver_due()
    assert not [r for r in worker.read() if STREET in r.text]
    async with sessionmaker() as session:
        errors = (
            await session.scalars(
                select(OutboxMessage.last_error).where(
                    OutboxMessage.chat_id == WORKER, OutboxMessage.state == CANCELLED
                )
            )
        ).all()
        assert errors and set(errors) == {"dropped: no_access"}


async def test_deactivated_worker_gets_nothing_queued_before(
    resident: BotClient, make_client, sessionmaker, deliverer
) -> None:
    worker = make_client(user_id=WORKER)
    await add_worker(sessionmaker, WORKER, "ves-csp")
    await file_request(resident, description=f"Живу на вулиці {STREET}")
    async with sessionmaker.begin() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == WORKER))
        await session.execute(update(Worker).where(Worker.user_id == user_id).values(active=False))
    await deliverer.deliver_due()
    assert not [r for r in worker.read() if STREET in r.text]


async def test_retention_erases_cases_closed_three_years_ago(
    app, bot, resident: BotClient, make_client, sessionmaker, deliverer, clock, settings
) -> None:
    from services.privacy import PrivacyService

    worker = make_client(user_id=WORKER)
    await add_worker(sessionmaker, WORKER, "ves-csp")
    await file_request(resident, description=f"Живу на вулиці {STREET}")
    old = await _case_of(sessionmaker, resident.user.id)
    await _worker_writes(app, bot, worker, old.id, REPLY)
    await deliverer.deliver_due()
    await file_request(resident, description=f"Друге: {MESSAGE}")
    recent = await _case_of(sessionmaker, resident.user.id)
    days = settings.delivery.retention_days
    assert days == 1095
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Case)
            .where(Case.id == old.id)
            .values(status="resolved", outcome=OUTCOME, closed_at=NOW - timedelta(days=days + 1))
        )
        await session.execute(
            update(Case)
            .where(Case.id == recent.id)
            .values(status="resolved", closed_at=NOW - timedelta(days=days - 1))
        )
        session.add(CaseEvent(case_id=old.id, kind="status", to_status="resolved", reason=OUTCOME))

    async with sessionmaker.begin() as session:
        assert await PrivacyService(session, clock).apply_retention(clock.now(), days) == 1
    async with sessionmaker.begin() as session:
        assert await PrivacyService(session, clock).apply_retention(clock.now(), days) == 0  # idempotent

    assert await leftovers(sessionmaker, [STREET, REPLY, OUTCOME]) == []
    assert await leftovers(sessionmaker, [MESSAGE]), "a case closed less long ago keeps its data"
    async with sessionmaker() as session:
        kept = await session.get(Case, old.id)
        assert kept is not None and kept.status == "resolved" and kept.closed_at is not None
        assert kept.service_id == old.service_id and kept.team_id == old.team_id
        events = (await session.scalars(select(CaseEvent).where(CaseEvent.case_id == old.id))).all()
        assert {"created", "status", "retention_erased"} <= {e.kind for e in events}
        resident_row = await session.get(Resident, old.resident_id)
        assert resident_row is not None and resident_row.consent_at is not None, "the person stays"
        assert (await session.scalar(select(OutboxMessage.state).where(OutboxMessage.case_id == old.id))) in (
            SENT,
            CANCELLED,
        )


async def test_scheduler_runs_the_retention_job(sessionmaker, deliverer, clock, settings) -> None:
    from bot.scheduler import DeliveryRuntime

    runtime = DeliveryRuntime(deliverer, sessionmaker, clock, settings)
    await runtime.apply_retention()  # nothing to do, nothing fails
    runtime.start()
    try:
        assert runtime.scheduler.get_job("retention") is not None
    finally:
        await runtime.stop()


def _redis_available() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def test_erasure_clears_the_draft_in_redis(sessionmaker, reference) -> None:
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis is expected at 127.0.0.1:6379 in CI")
        pytest.skip("no Redis at 127.0.0.1:6379")
    from aiogram.fsm.context import FSMContext
    from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
    from aiogram.fsm.storage.redis import RedisStorage

    from services.users import UserService
    from tests.factories import add_resident

    telegram_id = 5301
    await add_resident(sessionmaker, telegram_id)
    prefix = f"test-erasure-{uuid.uuid4().hex}"
    storage = RedisStorage.from_url(
        "redis://127.0.0.1:6379/0", key_builder=DefaultKeyBuilder(prefix=prefix, with_destiny=True)
    )
    key = StorageKey(bot_id=42, chat_id=telegram_id, user_id=telegram_id)
    state = FSMContext(storage=storage, key=key)
    try:
        await state.set_state("IntakeForm:description")
        await state.set_data({"description": DRAFT})
        async with sessionmaker.begin() as session:
            user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
            assert user is not None
            await UserService(session).erase_personal_data(user, clear_drafts=state.clear)
        assert await state.get_state() is None
        assert await state.get_data() == {}
        assert not [k async for k in storage.redis.scan_iter(match=f"{prefix}*")]
    finally:
        await state.clear()
        await storage.close()
