"""Hostile text and file attributes at every place the bot stores them.

Whatever a person types or a file carries — NUL and other control characters, bidi overrides,
decomposed letters, ten thousand characters — the person gets an answer and the value is either
stored cleaned (services/text.py) or refused with the step kept: never a failed commit."""

from __future__ import annotations

import itertools
import logging
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from aiogram.fsm.storage.base import StorageKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.offline import BotClient
from models import Attachment, Case, CaseEvent, CaseMessage, Team, Visit
from services.case_actions import CaseActions
from services.clock import FrozenClock
from services.errors import DomainError
from services.text import clean_file_name, clean_mime_type, has_words, tidy
from services.visits import VisitService
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case
from tests.test_intake import _to_description, file_request

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SORRY = "сталася помилка"  # errors.internal: a failure, not an answer

# Characters that have broken or disguised stored text: NUL, C0/C1 controls, bidi overrides and
# isolates, a byte-order mark, line and paragraph separators, a decomposed letter.
HOSTILE = [
    "\x00",
    "\x01",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9f",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u2028",
    "e\u0301",
    "\r\n",
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40)), min_size=0, max_size=30
).map("".join)
huge_text = st.builds(
    lambda c, n: c * n, st.sampled_from(["x", "ї", "\x00", "😀", " "]), st.integers(0, 12_000)
)
anything = st.one_of(hostile_text, huge_text)


def _is_clean(value: str | None) -> bool:
    if value is None:
        return True
    return (
        value == unicodedata.normalize("NFC", value)
        and all(ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs") for ch in value)
        and not any(ch in value for ch in "\u202e\u2066\ufeff")
    )


def _no_failure(replies, caplog) -> None:
    assert replies, "the bot gave no answer"
    assert not any(SORRY in r.text.lower() for r in replies), [r.text for r in replies]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- reproduced on the unchanged code ------------------------------------------------------------
async def test_nul_in_description_is_stored_cleaned(resident: BotClient, sessionmaker, caplog) -> None:
    replies = await file_request(resident, description="Потрібна\x00 допомога з субсидією на зиму.")
    _no_failure(replies, caplog)
    assert "VES-" in replies[-1].text
    async with sessionmaker() as s:
        case = (await s.scalars(select(Case))).one()
    assert case.description == "Потрібна допомога з субсидією на зиму."


async def test_nul_in_on_behalf_name_is_stored_cleaned(resident: BotClient, sessionmaker, caplog) -> None:
    await _to_description(resident)
    await resident.send("Потрібна допомога з субсидією на зиму.")
    await resident.click("Без файлів")
    await resident.click("Для іншої людини")
    await resident.send("Марія\x00 Коваль\u202e")
    await resident.send("мама\x1b")
    await resident.share_contact("380501234567")
    replies = await resident.click("Надіслати звернення")
    _no_failure(replies, caplog)
    async with sessionmaker() as s:
        case = (await s.scalars(select(Case))).one()
    assert (case.on_behalf_name, case.on_behalf_relation) == ("Марія Коваль", "мама")


async def test_huge_file_name_and_mime_type_fit_their_columns(
    resident: BotClient, sessionmaker, caplog
) -> None:
    await _to_description(resident)
    await resident.send("Потрібна допомога з субсидією на зиму.")
    await resident.send_document(file_name="a" * 10_000 + ".pdf", mime_type="application/" + "x" * 10_000)
    await resident.click("Готово, далі")
    await resident.click("Для себе")
    await resident.share_contact("380501234567")
    replies = await resident.click("Надіслати звернення")
    _no_failure(replies, caplog)
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == 1
        attachment = (await s.scalars(select(Attachment))).one()
    assert len(attachment.file_name) == 255 and attachment.file_name.endswith("….pdf")
    assert attachment.mime_type is None  # not a MIME type: not kept


async def test_draft_saved_before_cleaning_still_files(
    resident: BotClient, sessionmaker, app, caplog
) -> None:
    """A draft kept in the FSM before this boundary existed is cleaned again at confirm."""
    await _to_description(resident)
    await resident.send("Потрібна допомога з субсидією на зиму.")
    await resident.click("Без файлів")
    await resident.click("Для себе")
    await resident.share_contact("380501234567")
    data = await resident.dp.storage.get_data(_key(resident))
    await resident.dp.storage.update_data(
        _key(resident),
        {
            "description": data["description"] + "\x00",
            "attachments": [
                {
                    "kind": "document",
                    "file_id": "f1",
                    "file_unique_id": "u1",
                    "file_name": "\x00" * 300,
                    "mime_type": "x" * 300,
                }
            ],
        },
    )
    replies = await resident.click("Надіслати звернення")
    _no_failure(replies, caplog)
    async with sessionmaker() as s:
        case = (await s.scalars(select(Case))).one()
        attachment = (await s.scalars(select(Attachment))).one()
    assert "\x00" not in case.description and attachment.file_name is None and attachment.mime_type is None


# -- properties -----------------------------------------------------------------------------------
def _key(client: BotClient) -> StorageKey:
    return StorageKey(bot_id=client.bot.id, chat_id=client.chat.id, user_id=client.user.id)


async def _step(client: BotClient, app=None) -> str | None:
    if await client.dp.storage.get_state(_key(client)) != "IntakeForm:active":
        return None
    return (await client.dp.storage.get_data(_key(client))).get("step")


# Each example files a whole request through the dispatcher: fewer examples keep it in seconds.
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    search=anything,
    description=anything,
    name=anything,
    relation=anything,
    file_name=anything,
    mime=anything,
)
async def test_intake_takes_any_input_cleaned_or_keeps_the_step(
    resident: BotClient,
    sessionmaker,
    app,
    caplog,
    search: str,
    description: str,
    name: str,
    relation: str,
    file_name: str,
    mime: str,
) -> None:
    caplog.clear()
    if await _step(resident, app) is not None:
        await resident.send("/cancel")
    async with sessionmaker() as s:
        before = await s.scalar(select(func.count()).select_from(Case))
    await resident.press("Нове звернення")

    def typed(text: str) -> str:  # Telegram never delivers an empty or command text to a step
        return text if tidy(text) and not tidy(text).startswith("/") else "a" + text

    _no_failure(await resident.send(typed(search)), caplog)
    assert await _step(resident, app) == "hromada"
    await resident.send("Весел")
    await resident.click("Веселівська")
    await resident.click("Матвіївка")
    await resident.click("Житлова субсидія")
    await resident.click("Далі")

    replies = await resident.send(typed(description))
    _no_failure(replies, caplog)
    expected_description = tidy(typed(description), multiline=True)
    if not (10 <= len(expected_description) <= 2000 and has_words(expected_description)):
        assert await _step(resident, app) == "description"  # refused, the step kept
        expected_description = "Потрібна допомога з субсидією на зиму."
        await resident.send(expected_description)
    assert await _step(resident, app) == "attachments"

    _no_failure(await resident.send_document(file_name=file_name, mime_type=mime), caplog)
    await resident.click("Готово, далі")
    await resident.click("Для іншої людини")
    expected_name = tidy(typed(name))
    _no_failure(await resident.send(typed(name)), caplog)
    if not 2 <= len(expected_name) <= 120:
        assert await _step(resident, app) == "on_behalf_name"
        expected_name = "Марія Коваль"
        await resident.send(expected_name)
    expected_relation = tidy(typed(relation))
    _no_failure(await resident.send(typed(relation)), caplog)
    if not 2 <= len(expected_relation) <= 60:
        assert await _step(resident, app) == "on_behalf_relation"
        expected_relation = "мама"
        await resident.send(expected_relation)
    await resident.share_contact("380501234567")
    replies = await resident.click("Надіслати звернення")
    _no_failure(replies, caplog)
    assert any("VES-" in r.text for r in replies)

    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == before + 1
        case = await s.scalar(select(Case).order_by(Case.id.desc()).limit(1))
        attachment = await s.scalar(select(Attachment).where(Attachment.case_id == case.id))
    assert case.description == expected_description
    assert (case.on_behalf_name, case.on_behalf_relation) == (expected_name, expected_relation)
    assert attachment.file_name == clean_file_name(file_name)
    assert attachment.mime_type == clean_mime_type(mime)
    for value in (case.description, case.on_behalf_name, attachment.file_name, attachment.mime_type):
        assert _is_clean(value)


_telegram_ids = itertools.count(70_000)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=anything, relay=anything, note=anything, who=anything, reschedule=anything, outcome=anything)
async def test_case_texts_are_stored_cleaned_or_refused(
    sessionmaker, reference, message: str, relay: str, note: str, who: str, reschedule: str, outcome: str
) -> None:
    """Resident messages, worker messages, transfer notes, visit texts, reschedule notes and
    outcomes: each call either stores the cleaned value and commits, or is refused."""
    clock = FrozenClock(NOW)
    resident = await add_resident(sessionmaker, next(_telegram_ids))
    w = await add_worker(sessionmaker, next(_telegram_ids), "ves-csp")
    case_id = await make_case(sessionmaker, resident)

    async def attempt(call) -> bool:
        try:
            async with sessionmaker.begin() as session:
                await call(session)
        except DomainError:
            return False
        return True

    async def user_of(session):
        from models import Resident, User

        return await session.get(User, (await session.get(Resident, resident.id)).user_id)

    async def write(session):
        await CaseActions(session, clock).resident_message(await user_of(session), case_id, message)

    async def answer(session):
        worker = await session.get(type(w), w.id)
        await CaseActions(session, clock).relay_to_resident(case_id, worker, relay)

    async def attach(session):
        await CaseActions(session, clock).resident_attachment(
            await user_of(session),
            case_id,
            kind="document",
            file_id="f" + who[:300],
            file_unique_id="u" + note[:300],
            file_name=message,
            mime_type=relay,
        )

    async def plan(session):
        worker = await session.get(type(w), w.id)
        case = await session.get(Case, case_id)
        starts = NOW + timedelta(days=2)
        await VisitService(session, clock).schedule(
            case, worker, starts, starts + timedelta(hours=1), who, who
        )

    async def reschedule_it(session):
        visit = await session.scalar(select(Visit).where(Visit.case_id == case_id))
        await VisitService(session, clock).request_reschedule(await user_of(session), visit.id, reschedule)

    async def move(session):
        worker = await session.get(type(w), w.id)
        team = await session.scalar(select(Team).where(Team.code == "zp-oblast"))
        await CaseActions(session, clock).transfer(case_id, worker, team.id, note)

    async def close(session):
        worker = await session.get(type(w), w.id)
        await CaseActions(session, clock).close(case_id, worker, "resolved", outcome)

    results = {}
    for name, call in (("write", write), ("answer", answer), ("attach", attach), ("plan", plan)):
        results[name] = await attempt(call)
    if results["plan"]:
        results["reschedule"] = await attempt(reschedule_it)
    results["move"] = await attempt(move)
    if not results["move"]:
        results["close"] = await attempt(close)

    async with sessionmaker() as session:
        texts = [
            m.text for m in (await session.scalars(select(CaseMessage).where(CaseMessage.case_id == case_id)))
        ]
        events = [
            e.reason for e in (await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)))
        ]
        visits = (await session.scalars(select(Visit).where(Visit.case_id == case_id))).all()
        files = (await session.scalars(select(Attachment).where(Attachment.case_id == case_id))).all()
        case = await session.get(Case, case_id)
    expected = [t for t, ok in ((message, results["write"]), (relay, results["answer"])) if ok]
    assert sorted(texts) == sorted(tidy(t, multiline=True) for t in expected)
    assert all(_is_clean(t) and len(t) <= 2000 for t in texts)
    assert all(_is_clean(r) and len(r) <= 500 for r in events if r)
    for visit in visits:
        assert _is_clean(visit.who_comes) and _is_clean(visit.prepare) and _is_clean(visit.resident_note)
    for f in files:
        assert _is_clean(f.file_name) and (f.mime_type is None or _is_clean(f.mime_type))
        assert len(f.file_id) <= 255 and len(f.file_unique_id) <= 64
    assert _is_clean(case.outcome)


@pytest.mark.parametrize("value", ["\x00", "\u202e" * 5, "x" * 10_000])
async def test_resident_message_step_answers_and_stays(
    resident: BotClient, sessionmaker, caplog, value: str
) -> None:
    """Through the bot: "Write to the worker" with a hostile text."""
    await file_request(resident)
    await resident.press("Мої звернення")
    await resident.click("VES-")
    replies = await resident.click("Написати працівнику")
    replies = await resident.send(value)
    _no_failure(replies, caplog)
    async with sessionmaker() as s:
        stored = (await s.scalars(select(CaseMessage))).all()
    assert all(_is_clean(m.text) and m.text for m in stored)


# -- callback data ---------------------------------------------------------------------------------
FORGED = [
    "case:open:99999999999999999999",
    "my:open:99999999999999999999:0",
    "my:list:0:-99999999999999999999",
    "wst:99999999999999999999:in_progress",
    "wq:my:open:99999999999999999999:0",
    "app:open:99999999999999999999",
    "vans:confirm:99999999999999999999",
    "mo:trip:99999999999999999999:",
    "in:h:99999999999999999999",
    "appst:1:" + "x" * 40,
]


@pytest.mark.parametrize("data", FORGED)
async def test_out_of_range_callback_data_is_a_stale_button(
    make_client, reference, sessionmaker, caplog, data: str
) -> None:
    await add_worker(sessionmaker, 7_100, "ves-csp", is_admin=True)
    client = make_client(7_100)
    await client.send("/start")
    caplog.clear()
    await client.click_data(data)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], data
    answers = [c for c in client.session.calls if type(c.method).__name__ == "AnswerCallbackQuery"]
    assert answers and "неактивна" in (answers[-1].method.text or "")


# -- Telegram's message limit ------------------------------------------------------------------------
LONG = 'Мешканка пише: "вода тече зі стелі" & просить <терміново>. ' * 40  # ~2,400 characters


async def _long_case(sessionmaker) -> int:
    resident = await add_resident(sessionmaker, 7_300)
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        case.description = LONG[:2000]
        for i in range(30):
            at = NOW + timedelta(minutes=i)
            session.add(CaseEvent(case_id=case_id, at=at, kind="note", reason=f"{i}: {LONG[:500]}"))
            session.add(
                CaseMessage(case_id=case_id, at=at, from_resident=i % 2 == 0, text=f"{i}: {LONG[:2000]}")
            )
    return case_id


async def test_long_case_card_is_cut_and_the_whole_history_sent_as_a_file(
    make_client, reference, sessionmaker, caplog
) -> None:
    from handlers.kit.callbacks import CaseCb
    from handlers.kit.render import MESSAGE_MAX, telegram_len

    case_id = await _long_case(sessionmaker)
    await add_worker(sessionmaker, 7_301, "ves-csp")
    worker = make_client(7_301)
    replies = await worker.click_data(CaseCb(action="open", case_id=case_id).pack())
    card = replies[-1]
    assert telegram_len(card.text) <= MESSAGE_MAX
    assert "Картку скорочено" in card.text and "VES-" in card.text
    assert "29: " in card.text  # the newest message stays on the card
    replies = await worker.click("Уся історія файлом")
    sent = [c.method for c in worker.session.calls if type(c.method).__name__ == "SendDocument"]
    assert len(sent) == 1 and sent[0].chat_id == 7_301
    content = sent[0].document.data.decode()
    assert sent[0].document.filename.endswith(".txt")
    for i in range(30):
        assert f"{i}: {LONG[:2000]}" in content  # every message, in full
    assert LONG[:2000] in content and "<b>" not in content

    # Another team's worker cannot have it: the press re-checks access.
    await add_worker(sessionmaker, 7_302, "zp-oblast")
    outsider = make_client(7_302)
    await outsider.click_data(CaseCb(action="history", case_id=case_id).pack())
    assert len([c for c in outsider.session.calls if type(c.method).__name__ == "SendDocument"]) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- applications without a hromada ---------------------------------------------------------------
async def test_application_without_hromada_is_changed_only_by_admins_and_the_oblast_team(
    make_client, sessionmaker, reference
) -> None:
    from handlers.kit.callbacks import AppStatusCb
    from models import Application
    from tests.test_applications import add_app

    app_id = await add_app(sessionmaker, "БЕЗ-1", "+380501234567", hromada=None)
    await add_worker(sessionmaker, 7_401, "pyr-cnap")  # a hromada's worker
    await add_worker(sessionmaker, 7_402, "zp-oblast")  # the oblast fallback team
    await add_worker(sessionmaker, 7_403, "ves-csp", is_admin=True)
    hromada_worker, oblast_worker, admin = make_client(7_401), make_client(7_402), make_client(7_403)

    assert "немає серед заяв ваших громад" in (await hromada_worker.send("/app БЕЗ-1"))[0].text
    replies = await hromada_worker.click_data(AppStatusCb(application_id=app_id, status="approved").pack())
    assert replies[0].kind == "alert"
    async with sessionmaker() as session:
        assert (await session.get(Application, app_id)).status_code == "received"

    await oblast_worker.send("/app БЕЗ-1")
    await oblast_worker.click("Призначено")
    async with sessionmaker() as session:
        assert (await session.get(Application, app_id)).status_code == "approved"
    await admin.send("/app БЕЗ-1")
    await admin.click("Бракує документів")
    async with sessionmaker() as session:
        assert (await session.get(Application, app_id)).status_code == "documents_missing"


async def test_a_relayed_message_of_quotes_still_fits_one_notice(sessionmaker, reference) -> None:
    """2,000 quotes are 12,000 characters once HTML-escaped: the notice is cut, not refused."""
    from handlers.kit.render import MESSAGE_MAX, telegram_len
    from models import OutboxMessage
    from tests.test_case_actions import rendered

    clock = FrozenClock(NOW)
    resident = await add_resident(sessionmaker, 7_500)
    w = await add_worker(sessionmaker, 7_501, "ves-csp")
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        worker = await session.get(type(w), w.id)
        await CaseActions(session, clock).relay_to_resident(case_id, worker, '"' * 2000)
    async with sessionmaker() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.kind == "case_message_to_resident")
        )
    for language in ("uk", "en"):
        text, _ = rendered(row, language)
        assert telegram_len(text) <= MESSAGE_MAX and text.endswith(("повідомлення.", "one message."))


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(hostile_text, st.text()), multiline=st.booleans())
def test_tidy_is_clean_and_idempotent(value: str, multiline: bool) -> None:
    cleaned = tidy(value, multiline=multiline)
    assert _is_clean(cleaned) and cleaned == cleaned.strip()
    assert tidy(cleaned, multiline=multiline) == cleaned
    if not multiline:
        assert "\n" not in cleaned and "\t" not in cleaned


async def test_the_form_summary_of_a_description_of_quotes_fits_one_message(resident: BotClient) -> None:
    from handlers.kit.render import MESSAGE_MAX, telegram_len

    await _to_description(resident)
    await resident.send("Дрова " + '"' * 1994)  # words, then quotes that grow sixfold when escaped
    await resident.click("Без файлів")
    await resident.click("Для себе")
    replies = await resident.share_contact("380501234567")
    assert "Перевірте звернення" in replies[-1].text
    assert telegram_len(replies[-1].text) <= MESSAGE_MAX


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Допоможіть", True),
        ("Help me", True),
        ("ok", False),
        ("👍👍👍", False),
        ("12345 !!", False),
        ("Мамі 82", True),
        ("", False),
    ],
)
def test_has_words_needs_letters_of_any_script(text: str, expected: bool) -> None:
    assert has_words(text) is expected
