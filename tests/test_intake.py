"""The new-request form through the real dispatcher: the whole story in both languages, Back and
Cancel at every step, bad input, double confirm, restart, on-behalf, priority, worker notice."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import EditMessageText
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.factory import build_app
from bot.offline import BotClient
from handlers.kit.callbacks import CaseCb
from models import Attachment, Case, CaseEvent, OutboxMessage, Resident, Team
from services.text import has_words, tidy
from tests.factories import add_worker

DESCRIPTION = "Потрібна допомога з оформленням субсидії на зиму."


async def _to_description(
    client: BotClient,
    hromada: str = "Весел",
    pick: str = "Веселівська",
    settlement: str = "Матвіївка",
    service: str = "Житлова субсидія",
) -> None:
    replies = await client.press("Нове звернення")
    assert "Крок 1" in replies[-1].text
    await client.send(hromada)
    await client.click(pick)
    await client.click(settlement)
    await client.click(service)
    replies = await client.click("Далі")
    assert "Крок 5" in replies[-1].text


async def file_request(client: BotClient, *, description: str = DESCRIPTION, **where: str) -> list:
    await _to_description(client, **where)
    await client.send(description)
    await client.click("Без файлів")
    await client.click("Для себе")
    await client.share_contact("380501234567")
    return await client.click("Надіслати звернення")


async def test_full_filing_story_in_ukrainian(resident: BotClient, sessionmaker) -> None:
    replies = await resident.press("Нове звернення")
    assert "Крок 1" in replies[-1].text
    replies = await resident.send("Весел")
    assert replies[-1].buttons()[0] == "🏛 Веселівська громада"
    replies = await resident.click("Веселівська")
    assert "Крок 2" in replies[-1].text and "Матвіївка" in replies[-1].buttons()
    replies = await resident.click("Матвіївка")
    assert "Крок 3" in replies[-1].text and "Допомога на оплату" in replies[-1].text
    replies = await resident.click("Догляд вдома")
    assert "Крок 4" in replies[-1].text
    replies = await resident.click("Літня людина")
    assert "✅ Літня людина, живе сама" in replies[-1].buttons()
    await resident.click("Далі")
    replies = await resident.send("Мамі 82 роки, живе сама, потрібен догляд.")
    assert "Крок 6" in replies[-1].text
    replies = await resident.send_photo()
    assert "1 з 10" in replies[-1].text
    await resident.send_document()
    await resident.click("Готово, далі")
    replies = await resident.click("Для себе")
    assert "Крок 8" in replies[-1].text
    assert any("Надіслати мій номер" in t for row in resident.keyboard or [] for t in row)
    replies = await resident.share_contact("380501234567")
    summary = replies[-1]
    assert "Перевірте звернення" in summary.text and "+380501234567" in summary.text
    assert "Веселівська" in summary.text and "Файлів: 2" in summary.text
    replies = await resident.click("Надіслати звернення")
    messages = [r for r in replies if r.kind == "message"]
    assert len(messages) == 1
    text = messages[0].text
    assert "VES-" in text and "Центр надання соціальних послуг Веселівської громади" in text
    assert "Що далі" in text
    async with sessionmaker() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.number in text
        assert case.routing_kind == "own" and case.status == "new"
        assert case.vulnerability == ["elderly_alone"] and case.priority > 0
        assert case.contact_phone == "+380501234567"
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 2
        event = await session.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id))
        assert event is not None and event.kind == "created" and event.to_status == "new"
        assert event.data["routing"]["kind"] == "own"
        res = await session.scalar(select(Resident))
        assert res is not None and res.phone == "+380501234567" and res.phone_verified_at is not None
        assert res.last_hromada_id == case.hromada_id


async def test_full_filing_story_in_english(make_client, reference, sessionmaker) -> None:
    client = make_client(language_code="en")
    await client.send("/start")
    await client.click("English")
    await client.click("I agree")
    replies = await client.send("/new")
    assert "Step 1" in replies[-1].text
    await client.send("pishch")
    replies = await client.click("Pishchanska")
    assert "Kozaky" in replies[-1].buttons()
    await client.click("Kozaky")
    await client.click("Home care")
    await client.click("Disability")
    await client.click("Next")
    replies = await client.send("x")
    assert "too short" in replies[-1].text
    await client.send("My father needs help at home after a stroke.")
    await client.click("No files")
    await client.click("For myself")
    replies = await client.share_contact("+380671112233")
    assert "Check your request" in replies[-1].text
    replies = await client.click("Send the request")
    [message] = [r for r in replies if r.kind == "message"]
    assert "Request PSH-" in message.text and "Pyriatyn territorial centre" in message.text
    assert "Delegated by Pishchanska hromada to Pyriatynska hromada for “Home care”" in message.text


async def test_back_at_every_step_returns_to_the_previous_one(resident: BotClient) -> None:
    await _to_description(resident)
    replies = await resident.click("Назад")  # description -> markers
    assert "Крок 4" in replies[-1].text
    replies = await resident.click("Назад")  # markers -> service
    assert "Крок 3" in replies[-1].text
    replies = await resident.click("Назад")  # service -> settlement
    assert "Крок 2" in replies[-1].text
    replies = await resident.click("Назад")  # settlement -> hromada (the chosen one offered first)
    assert "Крок 1" in replies[-1].text and "🏛 Веселівська громада" in replies[-1].buttons()
    await resident.click("Веселівська")
    await resident.click("Веселе")
    await resident.click("Житлова субсидія")
    await resident.click("Далі")
    await resident.send(DESCRIPTION)
    replies = await resident.click("Назад")  # files -> description
    assert "Крок 5" in replies[-1].text
    await resident.send(DESCRIPTION)
    await resident.click("Без файлів")
    replies = await resident.click("Назад")  # on-behalf -> files
    assert "Крок 6" in replies[-1].text
    await resident.click("Без файлів")
    await resident.click("Для іншої людини")
    replies = await resident.click("Назад")  # name -> on-behalf
    assert "Крок 7" in replies[-1].text
    await resident.click("Для іншої людини")
    await resident.send("Ганна Петренко")
    replies = await resident.click("Назад")  # relation -> name
    assert "ім'я та прізвище" in replies[-1].text
    await resident.send("Ганна Петренко")
    replies = await resident.send("сусідка")
    assert "Крок 8" in replies[-1].text
    replies = await resident.press("Назад")  # phone -> relation; the menu keyboard comes back
    assert "Ким ви доводитеся цій людині" in replies[-1].text
    assert any("Мої звернення" in t for row in resident.keyboard or [] for t in row)
    await resident.send("сусідка")
    await resident.share_contact()
    replies = await resident.click("Назад")  # summary -> phone
    assert "Крок 8" in replies[-1].text
    replies = await resident.share_contact()
    summary = replies[-1].text
    assert "Кому потрібна допомога: Ганна Петренко\nВи доводитеся цій людині: сусідка" in summary
    assert "Ваш телефон для зв'язку" in summary


async def test_cancel_at_a_button_step_and_at_the_phone_step(resident: BotClient, sessionmaker) -> None:
    # Nothing chosen beyond the place yet: Cancel cancels at once.
    await resident.press("Нове звернення")
    await resident.send("Весел")
    await resident.click("Веселівська")
    replies = await resident.click("Скасувати")
    assert any("скасовано" in r.text for r in replies)

    # With answers in the draft Cancel asks first; "No" goes back to the same step, kept.
    await _to_description(resident)
    replies = await resident.click("Скасувати")
    assert "Скасувати звернення?" in replies[-1].text
    replies = await resident.click("Ні, продовжити")
    assert "Крок 5 з 8" in replies[-1].text
    replies = await resident.click("Скасувати")
    replies = await resident.click("Так, скасувати")
    assert any("скасовано" in r.text for r in replies)
    replies = await resident.send("Якийсь текст після скасування")
    assert "Крок" not in replies[-1].text
    await _to_description(resident)
    await resident.send(DESCRIPTION)
    await resident.click("Без файлів")
    await resident.click("Для себе")
    replies = await resident.press("Скасувати")
    assert "Скасувати звернення?" in replies[-1].text
    replies = await resident.click("Так, скасувати")
    assert "скасовано" in replies[-1].text
    assert any("Нове звернення" in t for row in resident.keyboard or [] for t in row)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_bad_input_keeps_the_step(resident: BotClient) -> None:
    await resident.press("Нове звернення")
    replies = await resident.send("я")
    assert "від 2 до 60" in replies[-1].text
    replies = await resident.send("Неіснуюча")
    assert "не знайдено" in replies[-1].text
    await resident.send("Весел")
    await resident.click("Веселівська")
    replies = await resident.send("Веселе")  # the settlement may be typed
    assert "Крок 3" in replies[-1].text
    replies = await resident.send("субсидію")  # and the service, in words
    assert "Зрозумів: <b>Житлова субсидія</b>" in replies[-1].text and "Крок 4" in replies[-1].text
    replies = await resident.send("хтозна")  # words that name nothing at a button step
    assert "кнопками" in replies[-1].text
    await resident.click("Далі")
    replies = await resident.send("   ")
    assert "закороткий" in replies[-1].text
    replies = await resident.send("а" * 2500)
    assert "2500 символів" in replies[-1].text and "до 2000" in replies[-1].text
    replies = await resident.send_sticker()
    assert "потрібен текст" in replies[-1].text
    replies = await resident.send_voice()
    assert "потрібен текст" in replies[-1].text
    replies = await resident.send(DESCRIPTION)
    assert "Крок 6" in replies[-1].text
    replies = await resident.send("текст замість файлу")
    assert "фото або документ" in replies[-1].text
    await resident.click("Без файлів")
    await resident.click("Для себе")
    replies = await resident.share_contact(own=False)
    assert "не ваш контакт" in replies[-1].text
    replies = await resident.send("0501234567")  # typed by hand: explained, the button again
    assert "справді ваш" in replies[-1].text and "значок клавіатури" in replies[-1].text
    assert any("Надіслати мій номер" in button for row in resident.keyboard or [] for button in row)
    replies = await resident.send("не знаю як")
    assert "Надіслати мій номер" in replies[-1].text and "справді ваш" not in replies[-1].text
    replies = await resident.share_contact()
    assert "Перевірте звернення" in replies[-1].text


async def test_occupied_hromada_is_refused_with_advice(resident: BotClient) -> None:
    await resident.press("Нове звернення")
    await resident.send("Комиш")
    replies = await resident.click("Комиш-Зорянська")
    assert replies[0].kind == "alert" and "де ви живете зараз" in replies[0].text
    replies = await resident.send("Весел")
    assert "🏛 Веселівська громада" in replies[-1].buttons()


async def test_double_confirm_files_one_case(resident: BotClient, sessionmaker, db) -> None:
    await _to_description(resident)
    await resident.send(DESCRIPTION)
    await resident.click("Без файлів")
    await resident.click("Для себе")
    replies = await resident.share_contact()
    summary = replies[-1]
    data = next(d for row in summary.inline for t, d in row if "Надіслати звернення" in t)
    # Two taps handled at the same time (aiogram handles a batch's updates as tasks), on both
    # databases: the per-person lock makes the second see the first's result.
    await asyncio.gather(
        resident.click_data(data, message_id=summary.message_id),
        resident.click_data(data, message_id=summary.message_id),
    )
    replies = await resident.click_data(data, message_id=summary.message_id)
    assert replies[0].kind == "alert" and "вже надіслано" in replies[0].text
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_draft_survives_a_restart(resident: BotClient, settings, db, bot, tg, sessionmaker) -> None:
    await _to_description(resident)
    await resident.send(DESCRIPTION)
    # A new process: new dispatcher, new storage object, the same database.
    app2 = build_app(settings, engine=db)
    try:
        client = BotClient(app2.dispatcher, bot, tg, user_id=resident.user.id)
        replies = await client.send("/new")
        assert "незавершене" in replies[-1].text and "Крок 6" in replies[-1].text
        await client.click("Без файлів")
        await client.click("Для себе")
        await client.share_contact()
        replies = await client.click("Надіслати звернення")
        assert any("VES-" in r.text for r in replies)
    finally:
        await app2.close_dispatcher()
    async with sessionmaker() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.description == DESCRIPTION


async def test_on_behalf_filing_is_recorded(resident: BotClient, sessionmaker) -> None:
    await _to_description(resident)
    await resident.send(DESCRIPTION)
    await resident.click("Без файлів")
    await resident.click("Для іншої людини")
    replies = await resident.send("Я")
    assert "від 2 до 120" in replies[-1].text
    await resident.send("Ганна  Петренко")
    await resident.send("донька")
    await resident.share_contact()
    await resident.click("Надіслати звернення")
    async with sessionmaker() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.on_behalf
        assert (case.on_behalf_name, case.on_behalf_relation) == ("Ганна Петренко", "донька")


async def test_vulnerability_raises_priority(resident: BotClient, sessionmaker) -> None:
    await file_request(resident)
    await resident.press("Нове звернення")
    await resident.click("Веселівська")  # the last hromada is offered first
    await resident.click("Веселе")
    await resident.click("Житлова субсидія")
    await resident.click("Інвалідність")
    await resident.click("Є діти")
    await resident.click("Далі")
    await resident.send(DESCRIPTION + " Друге.")
    await resident.click("Без файлів")
    await resident.click("Для себе")
    replies = await resident.press("збережений номер")
    assert "Перевірте звернення" in replies[-1].text
    await resident.click("Надіслати звернення")
    async with sessionmaker() as session:
        plain, marked = (await session.scalars(select(Case).order_by(Case.id))).all()
        assert plain.priority == 0 and marked.priority > plain.priority
        assert plain.number.endswith("000001") and marked.number.endswith("000002")


async def test_worker_gets_case_new_after_delivery(
    resident: BotClient, sessionmaker, make_client, deliverer
) -> None:
    await add_worker(sessionmaker, 7001, "ves-csp", display_name="Олена")
    worker = make_client(user_id=7001)
    await file_request(resident)
    assert await deliverer.deliver_due() >= 1
    [notice] = worker.read()
    async with sessionmaker() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.assignee_worker_id is not None
    assert case.number in notice.text and "Житлова субсидія" in notice.text
    datas = [d for row in notice.inline for _, d in row]
    assert CaseCb(action="take", case_id=case.id).pack() in datas
    assert CaseCb(action="open", case_id=case.id).pack() in datas


async def test_group_chat_notice_is_masked(resident: BotClient, sessionmaker, deliverer) -> None:
    async with sessionmaker.begin() as session:
        team = await session.scalar(select(Team).where(Team.code == "ves-csp"))
        assert team is not None
        team.group_chat_id = -100500
    await file_request(resident, description="Дуже особиста історія про мою родину.")
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == -100500))
        assert row is not None and row.user_id is None
        assert "особиста" not in str(row.payload) and "+380" not in str(row.payload)


async def test_no_consent_is_refused_politely(make_client, reference) -> None:
    client = make_client()
    await client.send("/start")
    await client.click("Українська")
    await client.click("Не зараз")
    replies = await client.send("/new")
    assert "потрібна ваша згода" in replies[-1].text
    assert "Погоджуюсь" in " ".join(replies[-1].buttons())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=0, max_size=2200).filter(lambda t: not t.startswith("/")))
async def test_description_any_text_is_accepted_or_refused_politely(resident: BotClient, text: str) -> None:
    if await _step(resident) != "description":
        await resident.send("/cancel")
        await _to_description(resident)
    replies = await resident.send(text) if text else await resident.send_sticker()
    assert len(replies) == 1
    stripped = tidy(text, multiline=True)  # what the input boundary keeps of it
    if 10 <= len(stripped) <= 2000 and has_words(stripped):
        assert "Крок 6" in replies[0].text
        await resident.click("Назад")  # back to the description step for the next example
    else:
        assert "Крок" not in replies[0].text
        assert await _step(resident) == "description"


@pytest.mark.parametrize("text", ["👍👍👍👍👍👍👍👍👍👍👍", "1234567890 !!!", "?? ... ?? ... ??"])
async def test_a_description_without_words_is_refused_kindly(resident: BotClient, text: str) -> None:
    await _to_description(resident)
    [reply] = await resident.send(text)
    assert "опишіть словами" in reply.text
    assert await _step(resident) == "description"
    [reply] = await resident.send("Потрібні дрова на зиму 👍")
    assert "Крок 6 з 8" in reply.text


async def _step(client: BotClient) -> str | None:
    key = StorageKey(bot_id=client.bot.id, chat_id=client.chat.id, user_id=client.user.id)
    if await client.dp.storage.get_state(key) != "IntakeForm:active":
        return None
    return (await client.dp.storage.get_data(key)).get("step")


async def test_screen_that_cannot_be_edited_is_sent_anew(resident: BotClient, tg) -> None:
    await resident.press("Нове звернення")
    await resident.send("Весел")
    await resident.click("Веселівська")
    await resident.click("Веселе")
    await resident.click("Житлова субсидія")
    tg.queue_error(400, "Bad Request: message is not modified", method=EditMessageText)
    replies = await resident.click("Інвалідність")
    assert [r.kind for r in replies] == []  # a repeated tap: nothing new
    tg.queue_error(400, "Bad Request: message can't be edited", method=EditMessageText)
    replies = await resident.click("Далі")
    assert replies[-1].kind == "message" and "Крок 5" in replies[-1].text


async def test_album_files_arriving_together_are_all_kept(resident: BotClient, db) -> None:
    await _to_description(resident)
    await resident.send(DESCRIPTION)
    await asyncio.gather(resident.send_photo(), resident.send_photo(), resident.send_document())
    resident.read()
    await resident.click("Готово")
    await resident.click("Для себе")
    replies = await resident.share_contact()
    assert "Файлів: 3" in replies[-1].text


async def test_at_most_ten_files(resident: BotClient) -> None:
    await _to_description(resident)
    await resident.send(DESCRIPTION)
    for _ in range(10):
        replies = await resident.send_photo()
    assert "10 з 10" in replies[-1].text
    replies = await resident.send_document()
    assert "не більше 10" in replies[-1].text
    await resident.click("Готово")
    await resident.click("Для себе")
    replies = await resident.share_contact()
    assert "Файлів: 10" in replies[-1].text


async def test_commands_and_menu_buttons_work_mid_form_and_keep_the_draft(resident: BotClient) -> None:
    await _to_description(resident)
    replies = await resident.send("/my")
    assert "поки немає звернень" in replies[-1].text
    replies = await resident.send("/nonsense command here")
    assert "Такої команди немає" in replies[-1].text
    replies = await resident.press("Мої звернення")
    assert "поки немає звернень" in replies[-1].text
    replies = await resident.press("Нове звернення")
    assert "незавершене" in replies[-1].text and "Крок 5" in replies[-1].text
