"""A worker's day through the real dispatcher: joining by invite, the new-case notice, taking
the case, asking for documents, writing to the resident, resolving it — and the resident told."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.offline import BotClient
from infra.settings import DatabaseSettings, Settings, TelegramSettings, load_settings
from models import (
    Case,
    CaseEvent,
    DocumentRequest,
    Hromada,
    Invite,
    Resident,
    Service,
    Settlement,
    TeamMember,
    User,
)
from models.cases import RESOLVED, WAITING_DOCUMENTS
from services.cases import CaseDraft, IntakeService
from services.clock import FrozenClock

ADMIN_ID = 900
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 12:00 in Kyiv: no quiet hours


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def settings(db) -> Settings:
    url = db.url.render_as_string(hide_password=False)
    return load_settings(
        database=DatabaseSettings(DATABASE_URL=url),
        telegram=TelegramSettings(ADMIN_TELEGRAM_IDS=str(ADMIN_ID)),
    )


async def invite_link(admin: BotClient, team: str = "Веселівської", role: str = "працівник") -> str:
    await admin.send("/invite")
    await admin.click(team)
    replies = await admin.click(role)
    link = next(r.text for r in replies if "t.me/" in r.text)
    match = re.search(r"https://t\.me/hromada_bot\?start=(inv_[A-Za-z0-9_-]+)", link)
    assert match, link
    return match.group(1)


async def make_admin(make_client) -> BotClient:
    admin = make_client(user_id=ADMIN_ID)
    replies = await admin.send("/admin")
    assert "адміністратор" in replies[-1].text
    return admin


async def file_case(sessionmaker, resident_tg: int, clock, service: str = "subsidy") -> int:
    async with sessionmaker.begin() as session:
        resident = await session.scalar(
            select(Resident).join(User, User.id == Resident.user_id).where(User.telegram_id == resident_tg)
        )
        hromada = await session.scalar(select(Hromada).where(Hromada.code == "VES"))
        settlement = await session.scalar(select(Settlement).where(Settlement.code == "vesele"))
        service_row = await session.scalar(select(Service).where(Service.code == service))
        filed = await IntakeService(session, clock).file(
            resident,
            CaseDraft(
                hromada_id=hromada.id,
                settlement_id=settlement.id,
                service_id=service_row.id,
                description="Потрібна субсидія, живу сама",
                contact_phone="+380501112233",
                vulnerability=["elderly_alone"],
            ),
            idempotency_key=f"test-{resident_tg}-{service}",
        )
        return filed.case.id


async def test_invite_is_single_use_and_expires(make_client, reference, sessionmaker, clock) -> None:
    admin = await make_admin(make_client)
    token = await invite_link(admin)
    worker = make_client(user_id=901)
    replies = await worker.send(f"/start {token}")
    assert (
        "Ви приєдналися до команди «Центр надання соціальних послуг Веселівської громади»" in replies[0].text
    )
    assert any("Панель" in t for row in (worker.keyboard or []) for t in row)
    # The same person tapping again is not refused; somebody else is.
    assert "приєдналися" in (await worker.send(f"/start {token}"))[0].text
    intruder = make_client(user_id=902)
    assert "вже використано" in (await intruder.send(f"/start {token}"))[0].text
    # Expired after the lifetime (72 h by default).
    late = await invite_link(admin, role="координатор")
    clock.advance(hours=73)
    assert "термін дії" in (await intruder.send(f"/start {late}"))[0].text
    assert "недійсне" in (await intruder.send("/start inv_AAAAAAAAAAAAAAAAAAAAAAAA"))[0].text
    # A plain deep link that is not an invite goes on to the common greeting.
    assert "Вітаємо" in (await make_client(user_id=903).send("/start hello"))[0].text
    async with sessionmaker() as session:
        members = (await session.scalars(select(TeamMember))).all()
        assert [(m.role, m.team_id is not None) for m in members] == [("worker", True)]
        assert (
            await session.scalar(select(func.count()).select_from(Invite).where(Invite.used_at.is_not(None)))
            == 1
        )


async def test_non_admin_cannot_use_admin_or_invite(make_client, reference) -> None:
    stranger = make_client(user_id=905)
    await stranger.send("/start")
    assert "Такої команди немає" in (await stranger.send("/admin"))[0].text
    assert "лише для працівників" in (await stranger.send("/invite"))[0].text


async def test_worker_takes_requests_documents_writes_and_resolves(
    make_client, resident, reference, sessionmaker, clock, deliverer, tg
) -> None:
    admin = await make_admin(make_client)
    worker = make_client(user_id=911, first_name="Olena")
    await worker.send(f"/start {await invite_link(admin)}")
    resident_tg = resident.user.id
    case_id = await file_case(sessionmaker, resident_tg, clock)

    await deliverer.deliver_due()
    notice = next(r for r in worker.read() if "Нове звернення" in r.text)
    replies = await worker.click("Взяти в роботу", message_id=notice.message_id)
    assert any(r.kind == "toast" and "взяли" in r.text for r in replies)
    card = next(r for r in replies if r.kind == "message")
    assert "В роботі" in card.text and "+380501112233" in card.text and "Чому сюди" in card.text

    # Documents: tick the passport, done, 7 days.
    replies = await worker.click("Запитати документи", message_id=card.message_id)
    checklist = next(r for r in replies if r.kind == "message")
    await worker.click("Паспорт", message_id=checklist.message_id)
    await worker.click("Готово", message_id=checklist.message_id)
    replies = await worker.click("7 днів", message_id=checklist.message_id)
    assert any(r.kind == "toast" and "надіслано" in r.text for r in replies)

    # Write to the resident: a sticker is refused politely, the text is relayed.
    card = next(r for r in reversed(replies) if r.kind == "message")
    await worker.click("Написати мешканцю", message_id=card.message_id)
    assert "потрібен текст" in (await worker.send_sticker())[0].text
    assert "в чергу" in (await worker.send("Принесіть, будь ласка, паспорт у ЦНАП"))[0].text

    # Resolve: the outcome is asked for, then the resident is told.
    await worker.click("Змінити стан", message_id=card.message_id)
    await worker.click("Вирішено")
    assert "текст" in (await worker.send("   "))[0].text
    replies = await worker.send("Субсидію призначено")
    assert any("Вирішено" in r.text for r in replies)

    await deliverer.deliver_due()
    texts = [r.text for r in resident.read()]
    assert any("В роботі" in t for t in texts)
    assert any("Очікує документи" in t for t in texts)
    assert any("Паспорт" in t for t in texts)  # the document request
    relay = next(t for t in texts if "Принесіть, будь ласка" in t)
    assert "Веселівської" in relay and "Olena" not in relay
    resolved = next(t for t in texts if "Вирішено" in t)
    assert "Субсидію призначено" in resolved

    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case.status == RESOLVED and case.outcome == "Субсидію призначено"
        statuses = (
            await session.scalars(
                select(CaseEvent.to_status)
                .where(CaseEvent.case_id == case_id, CaseEvent.kind == "status")
                .order_by(CaseEvent.id)
            )
        ).all()
        assert statuses == ["in_progress", WAITING_DOCUMENTS, RESOLVED]
        assert (await session.scalar(select(DocumentRequest))).items == ["passport"]


async def test_team_queue_pages_and_filters_in_the_chat(make_client, reference, sessionmaker) -> None:
    from tests.factories import add_resident, add_worker
    from tests.test_case_actions import make_case

    owner = await add_resident(sessionmaker, 921)
    await add_worker(sessionmaker, 922, "ves-csp")
    for i in range(12):
        await make_case(sessionmaker, owner, status="in_progress" if i % 4 == 0 else "new", priority=i % 3)
    await make_case(sessionmaker, owner, status="resolved")
    worker = make_client(user_id=922)
    await worker.send("/worker")
    first = (await worker.click("Черга команди"))[-1]
    cases = [b for b in first.buttons() if b.startswith(("⚪", "🟡", "🟠", "🔴"))]
    assert len(cases) == 10 and "сторінка 1" in first.text
    assert cases[0].startswith("🟠")  # most urgent first
    second = (await worker.click("Далі", message_id=first.message_id))[-1]
    assert len([b for b in second.buttons() if b.startswith(("⚪", "🟡", "🟠"))]) == 2
    only_new = (await worker.click("🆕 Нове", message_id=second.message_id))[-1]
    listed = [b for b in only_new.buttons() if b.startswith(("⚪", "🟡", "🟠"))]
    assert len(listed) == 9 and all("Нове" in b for b in listed)
    mine = (await worker.click("Панель", message_id=only_new.message_id))[-1]
    assert "Звернень немає" in (await worker.click("Мої звернення", message_id=mine.message_id))[-1].text


async def test_transfer_through_the_card_tells_the_resident(
    make_client, resident, reference, sessionmaker, clock, deliverer
) -> None:
    from tests.factories import add_worker

    await add_worker(sessionmaker, 931, "ves-csp")
    await add_worker(sessionmaker, 932, "zp-oblast")
    case_id = await file_case(sessionmaker, resident.user.id, clock)
    worker = make_client(user_id=931)
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    await worker.click("Передати іншій команді", message_id=card.message_id)
    await worker.click("Департамент соцзахисту Запорізької ОВА")
    assert "потрібен текст" in (await worker.send_voice())[0].text  # the step is kept
    replies = await worker.send("Потрібне рішення області")
    assert "передано команді" in replies[0].text
    await deliverer.deliver_due()
    assert any("передано команді «Департамент" in r.text for r in resident.read())
    oblast_worker = make_client(user_id=932)
    notice = next(r for r in oblast_worker.read() if "передано звернення" in r.text)
    assert "✋ Взяти" in notice.buttons()
    # The old team no longer sees it.
    worker.read()
    assert [r.kind for r in await worker.click_data(f"case:open:{case_id}")] == ["alert"]
