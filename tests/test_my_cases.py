"""My requests: list and pages, one case with its history, writing, documents, cancelling,
and forged buttons for someone else's case."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.offline import BotClient
from handlers.kit.callbacks import MyCaseCb
from models import Attachment, Case, CaseEvent, CaseMessage, Hromada, OutboxMessage, Resident, Service, User
from services.cases import CaseDraft, IntakeService
from services.clock import Clock
from tests.factories import add_resident, add_worker


async def file_cases(sessionmaker, telegram_id: int, n: int, service: str = "subsidy") -> list[int]:
    ids = []
    async with sessionmaker.begin() as session:
        resident = await session.scalar(
            select(Resident).join(User, User.id == Resident.user_id).where(User.telegram_id == telegram_id)
        )
        h = await session.scalar(select(Hromada).where(Hromada.code == "VES"))
        s = await session.scalar(select(Service).where(Service.code == service))
        assert resident is not None and h is not None and s is not None
        intake = IntakeService(session, Clock())
        for i in range(n):
            draft = CaseDraft(h.id, None, s.id, f"Опис звернення номер {i}.", "+380501234567", [])
            ids.append((await intake.file(resident, draft, f"t:{telegram_id}:{i}")).case.id)
    return ids


async def test_empty_list(resident: BotClient) -> None:
    replies = await resident.press("Мої звернення")
    assert "поки немає звернень" in replies[-1].text


async def test_list_pages_and_plural(resident: BotClient, sessionmaker) -> None:
    await file_cases(sessionmaker, resident.user.id, 7)
    replies = await resident.send("/my")
    page = replies[-1]
    assert "7 звернень" in page.text and "Сторінка 1 з 2" in page.text
    case_buttons = [b for b in page.buttons() if "VES-" in b]
    assert len(case_buttons) == 5 and all("Нове" in b for b in case_buttons)
    assert "VES-2026" in case_buttons[0] or "VES-" in case_buttons[0]
    replies = await resident.click("Старіші")
    assert "Сторінка 2 з 2" in replies[-1].text
    assert len([b for b in replies[-1].buttons() if "VES-" in b]) == 2
    replies = await resident.click("Новіші")
    assert "Сторінка 1 з 2" in replies[-1].text


async def test_open_shows_history_and_actions(resident: BotClient, sessionmaker) -> None:
    await file_cases(sessionmaker, resident.user.id, 1)
    await resident.press("Мої звернення")
    replies = await resident.click("VES-")
    card = replies[-1]
    assert "Звернення VES-" in card.text and "Житлова субсидія" in card.text
    assert "звернення подано" in card.text and "власна команда" in card.text
    assert "Центр надання соціальних послуг Веселівської громади" in card.text
    assert {"✉️ Написати працівнику", "📎 Додати документ", "✖️ Скасувати звернення"} <= set(card.buttons())
    replies = await resident.click("До списку")
    assert "1 звернення" in replies[-1].text


async def test_write_add_document_and_cancel(resident: BotClient, sessionmaker) -> None:
    await add_worker(sessionmaker, 7101, "ves-csp")
    [case_id] = await file_cases(sessionmaker, resident.user.id, 1)
    await resident.send("/my")
    await resident.click("VES-")
    replies = await resident.click("Написати працівнику")
    assert "до 2000 символів" in replies[-1].text
    replies = await resident.send("б" * 2100)
    assert "2100 символів" in replies[-1].text
    replies = await resident.send_sticker()
    assert "потрібен текст" in replies[-1].text
    replies = await resident.send("Коли прийде працівник?")
    assert "передано працівнику" in replies[-1].text
    async with sessionmaker() as session:
        kinds = (
            await session.scalars(select(OutboxMessage.kind).where(OutboxMessage.case_id == case_id))
        ).all()
        assert "case_message_to_worker" in kinds  # part B's notice to the worker, via the outbox

    await resident.click("Повернутися до звернення")
    await resident.click("Додати документ")
    replies = await resident.send("текст")
    assert "фото або документ" in replies[-1].text
    await resident.send_document("довідка.pdf")
    replies = await resident.send_photo()
    assert "Файл додано" in replies[-1].text
    replies = await resident.click("Повернутися до звернення")
    assert "Листування" in replies[-1].text

    await resident.click("Скасувати звернення")
    replies = await resident.click("Ні, залишити")
    assert "Звернення VES-" in replies[-1].text
    await resident.click("Скасувати звернення")
    replies = await resident.click("Так, скасувати")
    assert any(r.kind == "toast" and "скасовано" in r.text for r in replies)
    # The press is answered after its handler, so the toast comes after the card's edit.
    card = [r for r in replies if r.kind != "toast"][-1]
    assert "Скасовано" in card.text and "Написати працівнику" not in " ".join(card.buttons())
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case is not None and case.status == "cancelled"
        assert await session.scalar(select(func.count()).select_from(CaseMessage)) == 1
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 2
        kinds = (await session.scalars(select(CaseEvent.to_status).where(CaseEvent.case_id == case_id))).all()
        assert "cancelled" in kinds


async def test_forged_buttons_for_someone_elses_case_are_refused(resident: BotClient, sessionmaker) -> None:
    await add_resident(sessionmaker, 8801)
    [other_case] = await file_cases(sessionmaker, 8801, 1)
    for action in ("open", "write", "doc", "cancel", "cancel_yes"):
        replies = await resident.click_data(MyCaseCb(action=action, case_id=other_case).pack())
        assert replies[0].kind == "alert" and "не знайдено" in replies[0].text, action
    replies = await resident.click_data(MyCaseCb(action="open", case_id=999_999).pack())
    assert replies[0].kind == "alert" and "не знайдено" in replies[0].text
    async with sessionmaker() as session:
        case = await session.get(Case, other_case)
        assert case is not None and case.status == "new"
    replies = await resident.send("Текст після підробленої кнопки")
    assert "передано" not in replies[-1].text


async def test_english_card(make_client, reference, sessionmaker) -> None:
    client = make_client(language_code="en")
    await client.send("/start")
    await client.click("English")
    await client.click("I agree")
    await file_cases(sessionmaker, client.user.id, 1, service="home_care")
    replies = await client.press("My requests")
    assert "1 request" in replies[-1].text and "New" in replies[-1].text
    replies = await client.click("VES-")
    assert "Request VES-" in replies[-1].text and "request filed" in replies[-1].text
    assert "Home care" in replies[-1].text
