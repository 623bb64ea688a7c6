"""Saved replies through the real dispatcher, on both databases: a coordinator adds a template
(an unknown placeholder refused with the known ones), a worker picks it while writing to a
resident, the resident receives it filled in their language under the team's name; editing
before sending; another team's worker neither sees nor uses it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models import AuditEntry, CaseMessage, DocumentRequest, SavedReply, Team
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _open_write(worker, case_id: int):
    """Open the case card, press "Write to the resident"; the prompt."""
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    return (await worker.click("Написати мешканцю", message_id=card.message_id))[-1]


async def test_coordinator_adds_a_template_worker_sends_it_filled_in_the_residents_language(
    make_client, reference, sessionmaker, deliverer
) -> None:
    await add_worker(sessionmaker, 6001, "ves-csp", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 6002, "ves-csp")
    owner = await add_resident(sessionmaker, 6003, language="en")
    case_id = await make_case(sessionmaker, owner)
    coordinator = make_client(user_id=6001)

    # The panel's button opens the team's book (one team: straight to it).
    await coordinator.send("/worker")
    book = (await coordinator.click("Шаблони відповідей"))[-1]
    assert "Центр надання соціальних послуг Веселівської громади" in book.text
    await coordinator.click("Додати шаблон", message_id=book.message_id)
    ask = (await coordinator.click("українською"))[-1]
    assert "назву" in ask.text
    assert "Тут потрібен текст" in (await coordinator.send_sticker())[0].text
    ask_text = (await coordinator.send("Прийом у ЦНАП"))[-1]
    assert "{office_hours}" in ask_text.text and "години прийому" in ask_text.text
    refused = (await coordinator.send("Доброго дня, {name}! Чекаємо за адресою {office_adress}."))[-1]
    assert "{name}, {office_adress}" in refused.text and "{office_address}" in refused.text
    saved = await coordinator.send(
        "{first_name}! Щодо звернення {case_number}: чекаємо вас у {office_address}."
    )
    assert any("Шаблон збережено" in r.text for r in saved)
    await coordinator.click("Додати версію англійською", message_id=saved[-1].message_id)
    await coordinator.send("Office visit")
    saved = await coordinator.send(
        "{first_name}! About request {case_number}: please come to {office_address}."
    )
    assert "🇺🇦" in saved[-1].text and "🇬🇧" in saved[-1].text

    worker = make_client(user_id=6002)
    prompt = await _open_write(worker, case_id)
    assert "📋 Шаблони" in prompt.buttons()
    listing = (await worker.click("Шаблони", message_id=prompt.message_id))[-1]
    assert "Принести документи" in listing.buttons()  # the seeded samples are there too
    preview = (await worker.click("Прийом у ЦНАП", message_id=listing.message_id))[-1]
    assert preview.kind == "edit" and "англійською" in preview.text
    assert "Hello! About request VES-2026-" in preview.text and "1 Tsentralna St" in preview.text
    replies = await worker.click("Надіслати", message_id=preview.message_id)
    assert any("в чергу" in r.text for r in replies)
    # A second tap on the same button sends nothing more.
    assert (await worker.click_data(preview.inline[0][0][1], message_id=preview.message_id))[
        0
    ].kind == "alert"

    await deliverer.deliver_due()
    resident = make_client(user_id=6003)
    [received] = [r for r in resident.read() if "About request" in r.text]
    assert (
        "Hello! About request VES-2026-" in received.text and "please come to ЦНАП, Vesele" in received.text
    )
    assert "Veselivska Centre of social services" in received.text  # the team speaks, in English
    async with sessionmaker() as session:
        messages = (await session.scalars(select(CaseMessage).where(CaseMessage.case_id == case_id))).all()
        assert len(messages) == 1 and messages[0].text.startswith("Hello! About request VES-2026-")
        assert not messages[0].from_resident
        actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        assert actions == ["saved_reply_added", "saved_reply_added"]


async def test_worker_edits_the_filled_text_before_sending(
    make_client, reference, sessionmaker, deliverer
) -> None:
    await add_worker(sessionmaker, 6101, "ves-csp")
    owner = await add_resident(sessionmaker, 6102)
    case_id = await make_case(sessionmaker, owner)
    worker = make_client(user_id=6101)
    prompt = await _open_write(worker, case_id)
    listing = (await worker.click("Шаблони", message_id=prompt.message_id))[-1]
    preview = (await worker.click("Звернення в роботі", message_id=listing.message_id))[-1]
    assert "Доброго дня! Ваше звернення VES-2026-" in preview.text and "українською" in preview.text
    hint = (await worker.click("Виправити", message_id=preview.message_id))[-1]
    assert "<code>Доброго дня! Ваше звернення" in hint.text
    assert "в чергу" in (await worker.send("Доброго дня! Звернення отримали, зателефонуємо завтра."))[-1].text
    # The template's own Send is over with the step: nothing is sent twice.
    assert (await worker.click("Надіслати", message_id=preview.message_id))[0].kind == "alert"

    await deliverer.deliver_due()
    texts = [r.text for r in make_client(user_id=6102).read()]
    assert any("зателефонуємо завтра" in t for t in texts)
    assert not any("уже опрацьовуємо" in t for t in texts)


async def test_a_template_with_no_value_for_a_field_must_be_edited(
    make_client, reference, sessionmaker
) -> None:
    await add_worker(sessionmaker, 6201, "ves-csp")
    case_id = await make_case(sessionmaker, await add_resident(sessionmaker, 6202))
    worker = make_client(user_id=6201)
    prompt = await _open_write(worker, case_id)
    listing = (await worker.click("Шаблони", message_id=prompt.message_id))[-1]
    preview = (await worker.click("Принести документи", message_id=listing.message_id))[-1]
    assert "{deadline}" in preview.text and "Надіслати" not in " ".join(preview.buttons())
    back = (await worker.click("Назад", message_id=preview.message_id))[-1]
    assert "Звернення в роботі" in back.buttons()


async def test_another_teams_worker_neither_sees_nor_uses_the_templates(
    make_client, reference, sessionmaker
) -> None:
    await add_worker(sessionmaker, 6301, "ves-csp")
    await add_worker(sessionmaker, 6302, "pyr-cnap")
    await add_worker(sessionmaker, 6303, "pyr-cnap", role=ROLE_COORDINATOR)
    case_id = await make_case(sessionmaker, await add_resident(sessionmaker, 6304))
    async with sessionmaker() as session:
        reply_id = await session.scalar(
            select(SavedReply.id)
            .join(Team, Team.id == SavedReply.team_id)
            .where(Team.code == "ves-csp", SavedReply.code == "in-progress", SavedReply.locale == "uk")
        )
    stranger = make_client(user_id=6302)
    for data in (f"rpw:list:{case_id}:0", f"rpw:pick:{case_id}:{reply_id}", f"rpw:send:{case_id}:{reply_id}"):
        replies = await stranger.click_data(data)
        assert [r.kind for r in replies] == ["alert"], data
    other_coordinator = make_client(user_id=6303)
    for data in (f"rpa:open:0:{reply_id}:", f"rpa:delete:0:{reply_id}:", f"rpa:edit:0:{reply_id}:"):
        replies = await other_coordinator.click_data(data)
        assert [r.kind for r in replies] == ["alert"], data
    book = (await other_coordinator.send("/replies"))[-1]
    assert "Пирятинської" in book.text and "Звернення в роботі" not in book.buttons()
    # A plain worker has no book to keep.
    assert "координатор" in (await make_client(user_id=6301).send("/replies"))[-1].text
    async with sessionmaker() as session:
        assert (await session.get(SavedReply, reply_id)).active is True
        assert (await session.scalars(select(CaseMessage))).all() == []


async def _deadline_menu(worker, case_id: int):
    """Card → "Request documents" → tick the passport → Done: the deadline question."""
    card = next(r for r in await worker.click_data(f"case:open:{case_id}") if r.kind == "message")
    checklist = next(
        r for r in await worker.click("Запитати документи", message_id=card.message_id) if r.kind == "message"
    )
    await worker.click("Паспорт", message_id=checklist.message_id)
    return (await worker.click("Готово", message_id=checklist.message_id))[-1]


async def test_a_template_becomes_the_note_of_a_document_request_with_its_deadline(
    make_client, reference, sessionmaker, deliverer
) -> None:
    await add_worker(sessionmaker, 6401, "ves-csp")
    case_id = await make_case(sessionmaker, await add_resident(sessionmaker, 6402))
    worker = make_client(user_id=6401)
    deadlines = await _deadline_menu(worker, case_id)
    listing = (await worker.click("Шаблони", message_id=deadlines.message_id))[-1]
    preview = (await worker.click("Принести документи", message_id=listing.message_id))[-1]
    assert "до … за адресою ЦНАП, смт Веселе" in preview.text and "Надіслати" not in preview.buttons()
    menu = (await worker.click("Додати до запиту", message_id=preview.message_id))[-1]
    assert "Примітка до запиту" in menu.text and "7 днів" in menu.buttons()
    replies = await worker.click("7 днів", message_id=menu.message_id)
    assert any(r.kind == "toast" and "надіслано" in r.text for r in replies)

    await deliverer.deliver_due()
    [request] = [r.text for r in make_client(user_id=6402).read() if "Паспорт" in r.text]
    assert "принесіть, будь ласка, документи до 30.11.2026 за адресою ЦНАП, смт Веселе" in request
    assert "Години прийому: пн–чт 8:00–17:00" in request
    async with sessionmaker() as session:
        note = await session.scalar(select(DocumentRequest.note).where(DocumentRequest.case_id == case_id))
        assert note.startswith("Доброго дня! Щодо звернення VES-2026-") and "30.11.2026" in note


async def test_an_edited_template_is_the_note_of_a_document_request(
    make_client, reference, sessionmaker, deliverer
) -> None:
    await add_worker(sessionmaker, 6501, "ves-csp")
    case_id = await make_case(sessionmaker, await add_resident(sessionmaker, 6502))
    worker = make_client(user_id=6501)
    deadlines = await _deadline_menu(worker, case_id)
    listing = (await worker.click("Шаблони", message_id=deadlines.message_id))[-1]
    preview = (await worker.click("Звернення в роботі", message_id=listing.message_id))[-1]
    hint = (await worker.click("Виправити", message_id=preview.message_id))[-1]
    assert "примітк" in hint.text and "<code>Доброго дня!" in hint.text
    assert "потрібен текст" in (await worker.send_sticker())[0].text
    menu = (await worker.send("Потрібен лише паспорт, копію зробимо на місці."))[-1]
    assert "Потрібен лише паспорт" in menu.text
    await worker.click("3 дні", message_id=menu.message_id)
    async with sessionmaker() as session:
        note = await session.scalar(select(DocumentRequest.note).where(DocumentRequest.case_id == case_id))
        assert note == "Потрібен лише паспорт, копію зробимо на місці."


async def test_an_abandoned_note_does_not_reach_the_next_document_request(
    make_client, reference, sessionmaker
) -> None:
    await add_worker(sessionmaker, 6601, "ves-csp")
    case_id = await make_case(sessionmaker, await add_resident(sessionmaker, 6602))
    worker = make_client(user_id=6601)
    deadlines = await _deadline_menu(worker, case_id)
    listing = (await worker.click("Шаблони", message_id=deadlines.message_id))[-1]
    preview = (await worker.click("Звернення в роботі", message_id=listing.message_id))[-1]
    await worker.click("Додати до запиту", message_id=preview.message_id)
    # The worker starts over from the card and sends without a template.
    menu = await _deadline_menu(worker, case_id)
    await worker.click("7 днів", message_id=menu.message_id)
    async with sessionmaker() as session:
        assert (
            await session.scalar(select(DocumentRequest.note).where(DocumentRequest.case_id == case_id))
            is None
        )


async def test_coordinator_renames_a_template_and_moves_it_up_the_list(
    make_client, reference, sessionmaker
) -> None:
    await add_worker(sessionmaker, 6101, "ves-csp", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 6102, "ves-csp")
    coordinator = make_client(user_id=6101)
    await coordinator.send("/worker")
    book = (await coordinator.click("Шаблони відповідей"))[-1]
    samples = [b for b in book.buttons() if "Додати шаблон" not in b]
    assert len(samples) >= 2, "the seeded samples"
    last = samples[-1]

    # Up one place: the list is shown again in the new order (and stays so for workers).
    template = (await coordinator.click(last, message_id=book.message_id))[-1]
    assert "⬆️ Вище в списку" in template.buttons()
    moved = (await coordinator.click("⬆️ Вище в списку", message_id=template.message_id))[-1]
    order = [b for b in moved.buttons() if "Додати шаблон" not in b]
    assert order == [*samples[:-2], samples[-1], samples[-2]]
    # The first one has no "up".
    first = (await coordinator.click(order[0], message_id=moved.message_id))[-1]
    assert "⬆️ Вище в списку" not in first.buttons()

    # Renamed: too long is refused and the step stays; a good title is saved and audited.
    template = (await coordinator.click(last, message_id=moved.message_id))[-1]
    ask = (await coordinator.click("Змінити назву українською", message_id=template.message_id))[-1]
    assert "Зараз:" in ask.text
    assert "60" in (await coordinator.send("Д" * 61))[-1].text
    saved = await coordinator.send("Запис на прийом")
    assert any("Шаблон збережено" in r.text for r in saved) and "Запис на прийом" in saved[-1].text

    worker = make_client(user_id=6102)
    owner = await add_resident(sessionmaker, 6103)
    case_id = await make_case(sessionmaker, owner)
    prompt = await _open_write(worker, case_id)
    listing = (await worker.click("Шаблони", message_id=prompt.message_id))[-1]
    # The worker's buttons: the titles (no flags), renamed, in the coordinator's order.
    expected = [b.split(" ", 1)[1] for b in order]
    expected[expected.index(last.split(" ", 1)[1])] = "Запис на прийом"
    assert [b for b in listing.buttons() if b in expected] == expected
    async with sessionmaker() as session:
        actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        assert actions == ["saved_reply_moved", "saved_reply_renamed"]
