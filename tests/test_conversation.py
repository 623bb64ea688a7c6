"""A resident who simply talks outside any form, and replies both ways, through the real
dispatcher and the outbox: a file straight into the chat after a document request, a typed
answer after a worker's message, a Telegram reply to an older message of another case, a
choice among several cases (the message kept until chosen), a new request offered when no case
is open, voice relayed as voice, and a worker's Telegram reply reaching the resident under the
team's name. A property test sends any kind of message at any moment."""

from __future__ import annotations

from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import SendMessage, SendPhoto, SendVideoNote, SendVoice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from bot.offline import BotClient
from handlers.kit.callbacks import CaseCb, ConvCb
from models import (
    Attachment,
    Case,
    CaseMessage,
    InboundMessage,
    OutboxMessage,
    Resident,
    TeamMember,
    User,
    Worker,
)
from models.conversation import OFFERED, PENDING_CHOICE, RELAYED
from services.case_actions import CaseActions
from services.clock import Clock
from services.documents import DocumentService
from services.text import tidy
from tests.factories import add_worker
from tests.test_case_actions import make_case

WORKER_TG = 7301
TEAM = "Центр надання соціальних послуг Веселівської громади"


async def resident_row(sessionmaker, client: BotClient) -> Resident:
    async with sessionmaker() as session:
        resident = await session.scalar(
            select(Resident).join(User, User.id == Resident.user_id).where(User.telegram_id == client.user.id)
        )
        assert resident is not None
        return resident


async def number_of(sessionmaker, case_id: int) -> str:
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return case.number


async def worker_writes(sessionmaker, case_id: int, text: str) -> None:
    """The worker writes to the resident (as "Write to the resident" does)."""
    async with sessionmaker.begin() as session:
        worker = await session.scalar(
            select(Worker).join(User, User.id == Worker.user_id).where(User.telegram_id == WORKER_TG)
        )
        assert worker is not None
        await CaseActions(session, Clock()).relay_to_resident(case_id, worker, text)


async def request_documents(sessionmaker, case_id: int) -> None:
    async with sessionmaker.begin() as session:
        worker = await session.scalar(
            select(Worker).join(User, User.id == Worker.user_id).where(User.telegram_id == WORKER_TG)
        )
        case = await session.get(Case, case_id)
        assert worker is not None and case is not None
        await DocumentService(session, Clock()).request(case, worker, ["passport"], None, None)


async def messages_on(sessionmaker, case_id: int) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(CaseMessage.text)
            .where(CaseMessage.case_id == case_id, CaseMessage.from_resident.is_(True))
            .order_by(CaseMessage.id)
        )
        return list(rows.all())


async def files_on(sessionmaker, case_id: int) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Attachment.kind).where(Attachment.case_id == case_id).order_by(Attachment.id)
        )
        return list(rows.all())


async def setup_cases(sessionmaker, resident: BotClient, n: int) -> list[int]:
    await add_worker(sessionmaker, WORKER_TG, "ves-csp")
    owner = await resident_row(sessionmaker, resident)
    return [await make_case(sessionmaker, owner, status="in_progress") for _ in range(n)]


def only_message(replies) -> str:
    messages = [r for r in replies if r.kind == "message"]
    assert len(messages) == 1, [r.text for r in replies]
    return messages[0].text


# -- deliverable 1 ---------------------------------------------------------------------------------
async def test_photo_straight_into_chat_goes_to_the_case_waiting_for_documents(
    resident: BotClient, make_client, sessionmaker, deliverer, tg
) -> None:
    first, waiting = await setup_cases(sessionmaker, resident, 2)
    await request_documents(sessionmaker, waiting)
    await deliverer.deliver_due()
    resident.read()

    replies = await resident.send_photo(caption="Паспорт мами")
    answer = only_message(replies)
    number = await number_of(sessionmaker, waiting)
    assert f"Передано у звернення {number} · Житлова субсидія" in answer
    assert "просили документи" in answer
    assert replies[-1].buttons() == ["Не це? Обрати інше"]
    assert await files_on(sessionmaker, waiting) == ["photo"]
    assert await files_on(sessionmaker, first) == []
    assert await messages_on(sessionmaker, waiting) == ["Паспорт мами"]

    # The worker gets the photo itself, its caption naming the case and carrying the words.
    worker = make_client(user_id=WORKER_TG)
    worker.read()
    await deliverer.deliver_due()
    photos = [c.method for c in tg.sent_to(WORKER_TG) if isinstance(c.method, SendPhoto)]
    assert len(photos) == 1
    assert photos[0].photo.startswith("photo-") and number in (photos[0].caption or "")
    assert "Паспорт мами" in (photos[0].caption or "")

    # "Not this one?": the other open case, one tap; the file goes there too.
    replies = await resident.click("Не це? Обрати інше")
    other = await number_of(sessionmaker, first)
    assert any(other in b for b in replies[-1].buttons()) and not any(
        number in b for b in replies[-1].buttons()
    )
    replies = await resident.click(other)
    assert f"Передано у звернення {other}" in replies[-1].text
    assert await files_on(sessionmaker, first) == ["photo"]


async def test_typed_answer_after_a_worker_message_goes_to_that_case(
    resident: BotClient, sessionmaker, deliverer
) -> None:
    quiet, talked = await setup_cases(sessionmaker, resident, 2)
    await worker_writes(sessionmaker, talked, "Коли вам зручно прийти?")
    await deliverer.deliver_due()
    relay = next(r for r in resident.read() if "Коли вам зручно" in r.text)
    assert TEAM in relay.text and relay.buttons() == ["↩️ Відповісти"]

    answer = only_message(await resident.send("Завтра принесу паспорт мами"))
    assert await number_of(sessionmaker, talked) in answer and "писали останнім" in answer
    assert await messages_on(sessionmaker, talked) == ["Завтра принесу паспорт мами"]
    assert await messages_on(sessionmaker, quiet) == []

    # "↩️ Reply" opens a short step for that case; a voice message answers it.
    replies = await resident.click("Відповісти", message_id=relay.message_id)
    assert "Напишіть відповідь щодо звернення" in replies[-1].text
    answer = only_message(await resident.send_voice())
    assert await number_of(sessionmaker, talked) in answer and "Не це?" not in " ".join(replies[-1].buttons())
    assert await files_on(sessionmaker, talked) == ["voice"]


async def test_telegram_reply_to_an_old_message_of_another_case_goes_to_that_case(
    resident: BotClient, sessionmaker, deliverer
) -> None:
    old, newer = await setup_cases(sessionmaker, resident, 2)
    await worker_writes(sessionmaker, old, "Питання щодо першого звернення")
    await deliverer.deliver_due()
    await worker_writes(sessionmaker, newer, "Питання щодо другого звернення")
    await deliverer.deliver_due()
    first = next(r for r in resident.read() if "першого" in r.text)
    async with sessionmaker() as session:
        recorded = await session.scalar(
            select(OutboxMessage.message_id).where(
                OutboxMessage.case_id == old, OutboxMessage.kind == "case_message_to_resident"
            )
        )
    assert recorded == first.message_id  # the row remembers the Telegram message it became

    answer = only_message(await resident.send("Відповідаю на перше", reply_to=first.message_id))
    assert await number_of(sessionmaker, old) in answer and "Не це?" not in answer
    assert await messages_on(sessionmaker, old) == ["Відповідаю на перше"]
    # Without the reply, the case written to last would have been guessed.
    replies = await resident.send("А це без відповіді")
    assert await number_of(sessionmaker, newer) in only_message(replies)
    # A reply to a confirmation line goes to the case it names (here the first one's).
    confirmation = next(
        r
        for r in reversed(resident.messages.values())
        if "Передано" in r.text and r.message_id != replies[-1].message_id
    )
    only_message(await resident.send("Ще одне", reply_to=confirmation.message_id))
    assert await messages_on(sessionmaker, old) == ["Відповідаю на перше", "Ще одне"]
    assert await messages_on(sessionmaker, newer) == ["А це без відповіді"]


async def test_several_open_cases_ask_which_and_keep_the_message_until_chosen(
    resident: BotClient, make_client, sessionmaker, deliverer, tg
) -> None:
    cases = await setup_cases(sessionmaker, resident, 3)
    replies = await resident.send("Чи можна прийти в четвер?")
    choice = replies[-1]
    assert "До якого звернення" in only_message(replies)
    numbers = [await number_of(sessionmaker, c) for c in cases]
    assert all(any(n in b for b in choice.buttons()) for n in numbers)
    async with sessionmaker() as session:
        kept = await session.scalar(select(InboundMessage))
        assert kept is not None and kept.state == PENDING_CHOICE and kept.text == "Чи можна прийти в четвер?"
    for case_id in cases:
        assert await messages_on(sessionmaker, case_id) == []
    # A second message while the first waits: asked again, both kept.
    await resident.send_document("довідка.pdf")

    replies = await resident.click(numbers[1], message_id=choice.message_id)
    assert f"Передано у звернення {numbers[1]}" in replies[-1].text and "повідомлень: 2" in replies[-1].text
    assert await messages_on(sessionmaker, cases[1]) == ["Чи можна прийти в четвер?"]
    assert await files_on(sessionmaker, cases[1]) == ["document"]
    async with sessionmaker() as session:
        states = (await session.scalars(select(InboundMessage.state))).all()
        assert set(states) == {RELAYED}
    worker = make_client(user_id=WORKER_TG)
    worker.read()
    await deliverer.deliver_due()
    texts = [r.text for r in worker.read()]
    assert any("Чи можна прийти в четвер?" in t and numbers[1] in t for t in texts)

    # Someone else's kept message, or someone else's case, through a forged button: refused.
    replies = await resident.click_data(f"cv:to:{cases[0]}:999999")
    assert replies[0].kind == "alert"


async def test_no_open_case_offers_a_new_request_with_the_words_kept(
    resident: BotClient, sessionmaker
) -> None:
    replies = await resident.send("Потрібна допомога з оформленням субсидії для мами")
    assert "немає відкритих звернень" in only_message(replies)
    await resident.send_photo()
    async with sessionmaker() as session:
        assert set((await session.scalars(select(InboundMessage.state))).all()) == {OFFERED}

    replies = await resident.click("Так, подати звернення")
    assert any("Нове звернення" in r.text and "Крок 1" in r.text for r in replies)
    key = StorageKey(bot_id=resident.bot.id, chat_id=resident.chat.id, user_id=resident.user.id)
    assert await resident.dp.storage.get_state(key) == "IntakeForm:active"
    data = await resident.dp.storage.get_data(key)
    assert data["description"] == "Потрібна допомога з оформленням субсидії для мами"
    assert [a["kind"] for a in data["attachments"]] == ["photo"]
    # The form's description step shows the kept words with one tap to keep them.
    await resident.dp.storage.set_data(key, {**data, "step": "description"})
    replies = await resident.send("/new")
    assert "Зараз в описі" in replies[-1].text and "✅ Залишити цей текст" in replies[-1].buttons()
    replies = await resident.click("Залишити цей текст")
    assert (await resident.dp.storage.get_data(key))["step"] == "attachments"


async def test_a_declined_offer_is_not_offered_again(resident: BotClient, sessionmaker) -> None:
    await resident.send("Дякую за допомогу минулого разу")
    replies = await resident.click("Ні, не треба")
    assert "не подаємо" in replies[-1].text
    await resident.send("Тепер потрібна допомога з дровами на зиму")
    await resident.click("Так, подати звернення")
    key = StorageKey(bot_id=resident.bot.id, chat_id=resident.chat.id, user_id=resident.user.id)
    data = await resident.dp.storage.get_data(key)
    assert data["description"] == "Тепер потрібна допомога з дровами на зиму"
    # The offer's button works once: the words are in the draft, not offered twice.
    async with sessionmaker() as session:
        used = await session.scalar(select(InboundMessage.id).where(InboundMessage.state == "used"))
    assert used is not None
    replies = await resident.click_data(ConvCb(action="new", item_id=used).pack())
    assert replies[0].kind == "alert"


async def test_voice_and_video_note_are_relayed_as_they_are(
    resident: BotClient, make_client, sessionmaker, deliverer, tg
) -> None:
    [case_id] = await setup_cases(sessionmaker, resident, 1)
    number = await number_of(sessionmaker, case_id)
    assert number in only_message(await resident.send_voice())
    assert number in only_message(await resident.send_video_note())
    assert "не можу передати" in only_message(await resident.send_sticker())
    assert "не можу передати" in only_message(await resident.send_location())
    worker = make_client(user_id=WORKER_TG)
    worker.read()
    await deliverer.deliver_due()
    calls = [c.method for c in tg.sent_to(WORKER_TG)]
    voices = [m for m in calls if isinstance(m, SendVoice)]
    notes = [m for m in calls if isinstance(m, SendVideoNote)]
    assert len(voices) == 1 and voices[0].voice.startswith("v-") and number in (voices[0].caption or "")
    assert len(notes) == 1 and notes[0].video_note.startswith("vn-")
    # The video note carries no caption: its text follows as a reply to it.
    texts = [m for m in calls if isinstance(m, SendMessage) and number in m.text]
    assert texts and texts[-1].reply_to_message_id is not None
    assert await files_on(sessionmaker, case_id) == ["voice", "video_note"]
    # The case card's "Files" sends them again as they are.
    before = len(tg.calls)
    await worker.click_data(CaseCb(action="files", case_id=case_id).pack())
    again = [c.method for c in tg.calls[before:]]
    assert [type(m) for m in again if isinstance(m, SendVoice | SendVideoNote)] == [SendVoice, SendVideoNote]


# -- deliverable 2 ---------------------------------------------------------------------------------
async def test_worker_answers_by_telegram_reply_under_the_team_name(
    resident: BotClient, make_client, sessionmaker, deliverer, tg
) -> None:
    [case_id] = await setup_cases(sessionmaker, resident, 1)
    await resident.send("Коли буде рішення?")
    worker = make_client(user_id=WORKER_TG, first_name="Olena")
    worker.read()
    await deliverer.deliver_due()
    relayed = next(r for r in worker.read() if "Коли буде рішення?" in r.text)

    assert "в чергу" in only_message(await worker.send("Рішення буде в четвер", reply_to=relayed.message_id))
    assert "в чергу" in only_message(await worker.send_photo("Зразок заяви", reply_to=relayed.message_id))
    resident.read()
    await deliverer.deliver_due()
    received = resident.read()
    text = next(r for r in received if "в четвер" in r.text)
    assert TEAM in text.text and "Olena" not in text.text and text.buttons() == ["↩️ Відповісти"]
    photo = next(r for r in received if isinstance(r.method, SendPhoto))
    assert "Зразок заяви" in photo.text and TEAM in photo.text and photo.buttons() == ["↩️ Відповісти"]
    async with sessionmaker() as session:
        from_team = (
            await session.scalars(
                select(CaseMessage.text).where(
                    CaseMessage.case_id == case_id, CaseMessage.from_resident.is_(False)
                )
            )
        ).all()
        assert list(from_team) == ["Рішення буде в четвер", "Зразок заяви"]

    # A worker no longer in the case's team is refused; nothing reaches the resident.
    async with sessionmaker.begin() as session:
        worker_id = await session.scalar(
            select(Worker.id).join(User, User.id == Worker.user_id).where(User.telegram_id == WORKER_TG)
        )
        await session.execute(delete(TeamMember).where(TeamMember.worker_id == worker_id))
    replies = await worker.send("Ще одне", reply_to=relayed.message_id)
    assert "в чергу" not in only_message(replies)
    async with sessionmaker() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(CaseMessage).where(CaseMessage.text == "Ще одне")
            )
            == 0
        )
    # A worker's plain message outside any flow keeps its usual answer.
    assert "Не зовсім зрозумів" in only_message(await worker.send("просто текст"))


# -- property: any message at any moment outside a form -------------------------------------------
KINDS = ("text", "photo", "document", "voice", "video_note", "sticker", "location")
SUPPORTED = frozenset({"text", "photo", "document", "voice", "video_note"})


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(KINDS),
    open_cases=st.integers(min_value=0, max_value=3),
    reply=st.booleans(),
    text=st.text(min_size=1, max_size=60).filter(lambda t: t.strip() and not t.lstrip().startswith("/")),
)
async def test_any_message_outside_a_form_gets_one_answer_and_is_never_lost(
    resident: BotClient, sessionmaker, kind: str, open_cases: int, reply: bool, text: str
) -> None:
    # Fixtures live for the whole test: bring the resident's open cases to `open_cases`.
    owner = await resident_row(sessionmaker, resident)
    if not await _has_worker(sessionmaker):
        await add_worker(sessionmaker, WORKER_TG, "ves-csp")
    async with sessionmaker.begin() as session:
        open_ids = (
            await session.scalars(
                select(Case.id)
                .where(Case.resident_id == owner.id, Case.status == "in_progress")
                .order_by(Case.id)
            )
        ).all()
        for surplus in open_ids[open_cases:]:
            await session.execute(update(Case).where(Case.id == surplus).values(status="cancelled"))
    for _ in range(open_cases - len(open_ids)):
        await make_case(sessionmaker, owner, status="in_progress")
    before = await _inbound_count(sessionmaker)
    reply_to = next(iter(resident.messages), None) if reply else None

    if kind == "text":
        replies = await resident.send(text, reply_to=reply_to)
    elif kind == "photo":
        replies = await resident.send_photo(caption=text, reply_to=reply_to)
    elif kind == "document":
        replies = await resident.send_document(caption=text, reply_to=reply_to)
    elif kind == "voice":
        replies = await resident.send_voice(reply_to=reply_to)
    elif kind == "video_note":
        replies = await resident.send_video_note(reply_to=reply_to)
    elif kind == "sticker":
        replies = await resident.send_sticker()
    else:
        replies = await resident.send_location()

    answer = only_message(replies)
    assert "сталася помилка" not in answer
    # A text of invisible characters only has nothing to pass on: answered like a sticker.
    if kind not in SUPPORTED or (kind == "text" and not tidy(text)):
        assert "не можу передати" in answer
        assert await _inbound_count(sessionmaker) == before
        return
    # (One session at a time: on SQLite every transaction takes the write lock.)
    assert await _inbound_count(sessionmaker) == before + 1
    async with sessionmaker() as session:
        item = await session.scalar(select(InboundMessage).order_by(InboundMessage.id.desc()).limit(1))
        assert item is not None
        if item.state == RELAYED:
            assert item.case_id is not None and "Передано" in answer
            if kind == "text":
                kept = await session.scalar(
                    select(func.count()).select_from(CaseMessage).where(CaseMessage.case_id == item.case_id)
                )
                assert kept
            else:
                assert await session.scalar(
                    select(Attachment.id).where(
                        Attachment.case_id == item.case_id, Attachment.file_unique_id == item.file_unique_id
                    )
                )
        elif item.state == PENDING_CHOICE:
            assert open_cases >= 2 and "До якого звернення" in answer
        else:
            assert item.state == OFFERED and open_cases == 0 and "немає відкритих" in answer


async def _has_worker(sessionmaker) -> bool:
    async with sessionmaker() as session:
        return (
            await session.scalar(
                select(Worker.id).join(User, User.id == Worker.user_id).where(User.telegram_id == WORKER_TG)
            )
        ) is not None


async def _inbound_count(sessionmaker) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


# -- the routing decision itself, without Telegram ------------------------------------------------
async def test_routing_rules_directly(sessionmaker, reference) -> None:
    from services.conversation import (
        BY_DOCUMENTS,
        BY_LATEST,
        BY_REPLY,
        CHOOSE,
        OFFER_NEW,
        ONLY,
        ROUTED,
        Conversation,
        Incoming,
    )
    from services.privacy import PrivacyService
    from tests.factories import add_resident

    owner = await add_resident(sessionmaker, 7401)
    await add_worker(sessionmaker, WORKER_TG, "ves-csp")

    async def route(incoming: Incoming, chat_id: int = 7401) -> tuple[str, str, int | None]:
        async with sessionmaker.begin() as session:
            user = await session.scalar(select(User).where(User.telegram_id == 7401))
            routed = await Conversation(session, Clock()).receive(user, chat_id, incoming)
            return routed.outcome, routed.how, routed.case.id if routed.case else None

    text = Incoming("text", "Добрий день")
    assert (await route(text))[0] == OFFER_NEW
    first = await make_case(sessionmaker, owner, status="in_progress")
    assert await route(text) == (ROUTED, ONLY, first)
    second = await make_case(sessionmaker, owner, status="new")
    assert (await route(text))[0] == CHOOSE
    await worker_writes(sessionmaker, first, "Є питання")
    assert await route(text) == (ROUTED, BY_LATEST, first)
    await request_documents(sessionmaker, second)
    assert await route(text) == (ROUTED, BY_DOCUMENTS, second)
    # A reply to the (delivered) message of the first case wins over the guess.
    async with sessionmaker.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.case_id == first, OutboxMessage.kind == "case_message_to_resident")
            .values(message_id=555)
        )
    assert await route(Incoming("text", "Так", reply_to=555)) == (ROUTED, BY_REPLY, first)
    # The same message id in another chat is another message.
    assert await route(Incoming("text", "Так", reply_to=555), chat_id=1) == (ROUTED, BY_DOCUMENTS, second)
    # A closed case is never chosen, even by a reply.
    async with sessionmaker.begin() as session:
        await session.execute(update(Case).where(Case.id == first).values(status="resolved"))
    assert await route(Incoming("text", "Так", reply_to=555)) == (ROUTED, ONLY, second)

    # Erasing the person removes what they sent outside forms, wherever it went.
    async with sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.telegram_id == 7401))
        await PrivacyService(session).erase_person(user)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessage)) == 0


async def test_a_team_group_chat_is_not_a_resident_talking(resident: BotClient, sessionmaker) -> None:
    from datetime import UTC, datetime

    from aiogram.types import Chat, Message

    group = Chat(id=-100777, type="group", title="Team")
    message = Message(
        message_id=1, date=datetime.now(UTC), chat=group, from_user=resident.user, text="Привіт"
    )
    await resident.send_message(message)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessage)) == 0
