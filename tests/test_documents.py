"""Document requests: the resident's message, planned reminders, received → reminders stop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models import Case, CaseEvent, OutboxMessage, Worker
from models.outbox import CANCELLED, PENDING
from services.clock import FrozenClock
from services.documents import DocumentError, DocumentService
from services.reminders import ReminderRules
from tests.factories import add_resident, add_worker
from tests.seeded_cases import make_case

# 09:00 Kyiv (UTC+2 in winter) on Monday 2 Nov 2026... in UTC.
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
KYIV = ReminderRules().tz


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _setup(sessionmaker, language: str = "uk"):
    await add_resident(sessionmaker, 501, language=language)
    worker = await add_worker(sessionmaker, 601, "ves-csp")
    case_id = await make_case(sessionmaker, 501, service_code="subsidy")
    return worker, case_id


async def test_request_queues_message_and_reminders(sessionmaker, reference, clock, deliverer, make_client):
    worker, case_id = await _setup(sessionmaker)
    deadline = datetime(2026, 12, 4, 15, 0, tzinfo=KYIV)
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        w = await session.get(Worker, worker.id)
        request = await DocumentService(session, clock).request(
            case, w, ["passport", "income_statement"], deadline, "Оригінали <і> копії"
        )
        request_id = request.id
    async with sessionmaker() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.document_request_id == request_id)
                .order_by(OutboxMessage.due_at)
            )
        ).all()
        events = (await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))).all()
    assert [r.kind for r in rows] == ["docs_requested"] + ["docs_reminder"] * 2 + ["docs_overdue"] * 2
    # 3 and 1 days before the deadline, then 1 and 7 days after it, at 10:00 Kyiv.
    assert [r.due_at.astimezone(KYIV).strftime("%d.%m %H:%M") for r in rows[1:]] == [
        "01.12 10:00",
        "03.12 10:00",
        "05.12 10:00",
        "11.12 10:00",
    ]
    assert [e.kind for e in events] == ["docs_requested"]

    resident = make_client(user_id=501)
    assert await deliverer.deliver_due() == 1
    (msg,) = resident.read()
    assert "Паспорт" in msg.text and "Довідка про доходи" in msg.text
    assert "ЦНАП, смт Веселе" in msg.text
    assert "04.12.2026" in msg.text
    assert "Оригінали &lt;і&gt; копії" in msg.method.text  # user text escaped for HTML


async def test_english_resident_gets_english_list(sessionmaker, reference, clock, deliverer, make_client):
    worker, case_id = await _setup(sessionmaker, language="en")
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        await DocumentService(session, clock).request(
            case, await session.get(Worker, worker.id), ["tax_id"], None, None
        )
    resident = make_client(user_id=501)
    await deliverer.deliver_due()
    (msg,) = resident.read()
    assert "Taxpayer number" in msg.text and "Vesele" in msg.text and "Deadline" not in msg.text


async def test_validation(sessionmaker, reference, clock):
    worker, case_id = await _setup(sessionmaker)
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        w = await session.get(Worker, worker.id)
        service = DocumentService(session, clock)
        for codes, deadline, note, code in [
            (["birth_certificate"], None, None, "unknown_items"),  # not on the subsidy checklist
            ([], None, None, "no_items"),
            (["passport"], NOW - timedelta(days=1), None, "deadline_past"),
            (["passport"], None, "x" * 501, "note_too_long"),
        ]:
            with pytest.raises(DocumentError) as err:
                await service.request(case, w, codes, deadline, note)
            assert err.value.code == code
        case.status = "resolved"
        with pytest.raises(DocumentError) as err:
            await service.request(case, w, ["passport"], None, None)
        assert err.value.code == "case_closed"


async def test_mark_received_cancels_reminders(sessionmaker, reference, clock, deliverer, make_client):
    worker, case_id = await _setup(sessionmaker)
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        request = await DocumentService(session, clock).request(
            case, await session.get(Worker, worker.id), ["passport"], None, None
        )
        request_id = request.id
    async with sessionmaker.begin() as session:
        service = DocumentService(session, clock)
        assert len(await service.pending_reminders(request_id)) == 4  # message + 3 reminders
        await service.mark_received(request_id, await session.get(Worker, worker.id))
        with pytest.raises(DocumentError):
            await service.mark_received(request_id, await session.get(Worker, worker.id))
    async with sessionmaker() as session:
        states = (
            await session.scalars(
                select(OutboxMessage.state).where(OutboxMessage.document_request_id == request_id)
            )
        ).all()
        kinds = (await session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id))).all()
    assert set(states) == {CANCELLED}
    assert sorted(kinds) == ["docs_received", "docs_requested"]
    clock.advance(days=20)
    assert await deliverer.deliver_due() == 0
    assert make_client(user_id=501).read() == []


async def test_reminder_not_sent_when_case_closed(sessionmaker, reference, clock, deliverer, make_client):
    worker, case_id = await _setup(sessionmaker)
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        await DocumentService(session, clock).request(
            case, await session.get(Worker, worker.id), ["passport"], None, None
        )
    resident = make_client(user_id=501)
    assert await deliverer.deliver_due() == 1
    resident.read()
    async with sessionmaker.begin() as session:
        (await session.get(Case, case_id)).status = "resolved"
    clock.advance(days=4)
    assert await deliverer.deliver_due() == 0
    assert resident.read() == []
    async with sessionmaker() as session:
        states = (await session.scalars(select(OutboxMessage.state).order_by(OutboxMessage.due_at))).all()
    assert states[1] == CANCELLED and states[2:] == [PENDING, PENDING]


async def test_worker_marks_received_with_button(sessionmaker, reference, clock, make_client):
    from handlers.kit.callbacks import DocsReceivedCb

    worker, case_id = await _setup(sessionmaker)
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        request = await DocumentService(session, clock).request(
            case, await session.get(Worker, worker.id), ["passport"], None, None
        )
        request_id = request.id
    data = DocsReceivedCb(request_id=request_id).pack()
    # Another hromada's worker and a resident cannot; the request stays open.
    await add_worker(sessionmaker, 602, "brs-social")
    for outsider in (make_client(user_id=602), make_client(user_id=501)):
        replies = await outsider.click_data(data)
        assert replies[-1].kind == "alert"
    async with sessionmaker() as session:
        assert len(await DocumentService(session, clock).open_requests(case_id)) == 1
    replies = await make_client(user_id=601).click_data(data)
    assert "отримані" in replies[-1].text
    replies = await make_client(user_id=601).click_data(data)  # a second tap
    assert "уже закрито" in replies[-1].text
    async with sessionmaker() as session:
        assert await DocumentService(session, clock).open_requests(case_id) == []
