"""The whole story through the real dispatcher, for each kind of routing rule:
a resident files in the chat → the request reaches the right team → a worker takes it → asks
for a document → the resident sends it from "My requests" → the worker marks it received and
resolves the case → the resident is told, in their language, at every step."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.offline import BotClient
from models import Attachment, Case, DocumentRequest, OutboxMessage
from models.outbox import CANCELLED, PENDING
from services.clock import FrozenClock
from tests.factories import add_worker
from tests.test_intake import file_request

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 11:00 in Kyiv: outside quiet hours


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


ROUTES = [
    # (rule kind, how the resident finds the hromada, hromada, settlement, service, team code, team name)
    ("own", "Весел", "Веселівська", "Матвіївка", "Житлова субсидія", "ves-csp", "Веселівської"),
    ("delegation", "Піщан", "Піщанська", "Козаки", "Догляд вдома", "pyr-tercentre", "Пирятинський"),
    (
        "delegation_settlement",
        "Берест",
        "Берестівська",
        "Гірсівка",
        "Догляд вдома",
        "ves-csp",
        "Веселівської",
    ),
    ("fallback", "Широк", "Широківська", "Широке", "Догляд вдома", "zp-oblast", "Запорізької ОВА"),
]


@pytest.mark.parametrize(
    ("kind", "search", "hromada", "settlement", "service", "team_code", "team_name"),
    ROUTES,
    ids=[r[0] for r in ROUTES],
)
async def test_file_route_take_documents_resolve_notify(
    resident: BotClient,
    make_client,
    sessionmaker,
    deliverer,
    kind,
    search,
    hromada,
    settlement,
    service,
    team_code,
    team_name,
) -> None:
    worker = make_client(user_id=4242, first_name="Olena")
    await add_worker(sessionmaker, 4242, team_code, display_name="Olena K.")

    # The resident files in the chat; the confirmation names the team, not a person.
    replies = await file_request(
        resident, hromada=search, pick=hromada, settlement=settlement, service=service
    )
    confirmation = next(r for r in replies if r.kind == "message").text
    assert team_name in confirmation and "Olena" not in confirmation
    async with sessionmaker() as session:
        case = await session.scalar(select(Case))
        assert case is not None
        expected_kind = "delegation" if kind.startswith("delegation") else kind
        assert case.routing_kind == expected_kind
        assert case.routing_detail["team"]["code"] == team_code
        assert case.routing_detail["settlement_specific"] is (kind == "delegation_settlement")
        number = case.number

    # The worker gets the notice, takes the case, asks for the passport within 7 days.
    await deliverer.deliver_due()
    notice = next(r for r in worker.read() if number in r.text)
    replies = await worker.click("Взяти в роботу", message_id=notice.message_id)
    card = next(r for r in replies if r.kind == "message")
    replies = await worker.click("Запитати документи", message_id=card.message_id)
    checklist = next(r for r in replies if r.kind == "message")
    await worker.click("Паспорт", message_id=checklist.message_id)
    await worker.click("Готово", message_id=checklist.message_id)
    await worker.click("7 днів", message_id=checklist.message_id)

    await deliverer.deliver_due()
    told = [r.text for r in resident.read()]
    assert any("В роботі" in t for t in told)
    assert any("Паспорт" in t for t in told), told

    # The resident sends the document from "My requests".
    await resident.press("Мої звернення")
    await resident.click(number)
    replies = await resident.click("Додати документ")
    replies = await resident.send_document("passport.pdf")
    assert replies and all(r.kind != "alert" for r in replies)
    async with sessionmaker() as session:
        attachment = await session.scalar(select(Attachment).where(Attachment.case_id == case.id))
        assert attachment is not None and attachment.file_name == "passport.pdf"
        request = await session.scalar(select(DocumentRequest).where(DocumentRequest.case_id == case.id))
        assert request is not None
        reminders = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.document_request_id == request.id)
            )
        ).all()
        assert any(r.state == PENDING for r in reminders), "deadline reminders are planned"

    # The worker is told a file came, marks the documents received (reminders stop) and resolves.
    await deliverer.deliver_due()
    assert any("надіслав файл" in r.text and number in r.text for r in worker.read())
    replies = await worker.click("Відкрити", message_id=notice.message_id)
    card = next(r for r in replies if r.kind == "message")
    replies = await worker.click("Документи отримано", message_id=card.message_id)
    assert any(r.kind == "alert" for r in replies)
    await worker.click("Змінити стан", message_id=card.message_id)
    await worker.click("Вирішено")
    await worker.send("Допомогу призначено")

    await deliverer.deliver_due()
    told = [r.text for r in resident.read()]
    resolved = next(t for t in told if "Вирішено" in t)
    assert number in resolved and "Допомогу призначено" in resolved and "Olena" not in resolved
    async with sessionmaker() as session:
        case = await session.get(Case, case.id)
        assert case is not None and case.status == "resolved"
        request = await session.get(DocumentRequest, request.id)
        assert request is not None and request.status == "received"
        left = (
            await session.scalars(
                select(OutboxMessage.state).where(OutboxMessage.document_request_id == request.id)
            )
        ).all()
        assert PENDING not in left and CANCELLED in left
