"""English speakers see English: no Ukrainian left in the English catalogue or on the screens an
English-speaking resident and worker go through, except data (names, registry numbers) and the
few Ukrainian terms kept on purpose beside their English explanation."""

from __future__ import annotations

import re
from collections.abc import Awaitable

from babel.messages.pofile import read_po
from sqlalchemy import select

from bot.offline import BotClient, Reply
from infra.i18n import SOURCE_DIR, po_files
from models import CaseEvent
from models.cases import EVENT_KINDS
from tests.factories import add_worker

CYRILLIC = re.compile(r"[\u0400-\u04ff]+(?:[-'’ʼ][\u0400-\u04ff]+)*")

# What an English text may carry in Ukrainian, and why.
ALLOWED_IN_CATALOGUE = (
    # The office's name as people see it on the door, after its English explanation.
    re.compile(r"Administrative Services Centre \(ЦНАП\)"),
    # The language picker speaks both languages: nobody has chosen one yet.
    re.compile(r"Українська|Оберіть мову / Choose"),
    # A registry number as printed on the receipt (data).
    re.compile(r"ВПО-\d{4}-\d{3}"),
    # Column headers a status file may carry: the registers' exports are in Ukrainian.
    re.compile(r"номер заяви|телефон|вид допомоги|статус|дата зміни статусу|громада|код КАТОТТГ"),
    # The codifier's own name, after its English explanation.
    re.compile(r"\(the official КАТОТТГ code"),
)


def _without_allowed(text: str, allowed: tuple[re.Pattern[str], ...]) -> str:
    for pattern in allowed:
        text = pattern.sub("", text)
    return text


def _cyrillic_in(text: str, allowed: tuple[re.Pattern[str], ...] = ALLOWED_IN_CATALOGUE) -> list[str]:
    return CYRILLIC.findall(_without_allowed(text, allowed))


def test_the_english_catalogue_has_no_ukrainian_outside_the_allow_list() -> None:
    found: dict[str, list[str]] = {}
    for path in po_files(SOURCE_DIR, "en"):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale="en")
        for message in catalog:
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            words = [w for s in strings for w in _cyrillic_in(s)]
            if words:
                key = message.id if isinstance(message.id, str) else message.id[0]
                found[f"{path.name}:{key}"] = words
    assert found == {}


def test_the_check_itself_sees_ukrainian() -> None:
    assert _cyrillic_in("Please contact the ЦНАП.") == ["ЦНАП"]
    assert _cyrillic_in("Contact the Administrative Services Centre (ЦНАП).") == []
    assert _cyrillic_in("Status: В роботі") == ["В", "роботі"]


class Seen:
    """Everything each person was shown: texts, toasts, inline and reply-keyboard buttons."""

    def __init__(self) -> None:
        self.texts: dict[int, list[str]] = {}

    def add(self, client: BotClient, replies: list[Reply]) -> list[Reply]:
        shown = self.texts.setdefault(client.user.id, [])
        for reply in replies:
            shown.append(reply.text)
            shown.extend(reply.buttons())
            shown.extend(t for row in reply.keyboard or [] for t in row)
        return replies

    def leftovers(self, client: BotClient) -> dict[str, list[str]]:
        self.add(client, client.read())
        return {t: _cyrillic_in(t) for t in self.texts.get(client.user.id, []) if _cyrillic_in(t)}


async def test_an_english_resident_and_worker_see_no_ukrainian(
    make_client, reference, sessionmaker, deliverer
) -> None:
    # Places and teams are data: English names come from the reference data's `en` fields.
    seen = Seen()
    await add_worker(sessionmaker, 7301, "pyr-tercentre", language="en", display_name="Olena")
    resident = make_client(language_code="en", first_name="Mary")

    async def as_resident(step: Awaitable[list[Reply]]) -> list[Reply]:
        return seen.add(resident, await step)

    await as_resident(resident.send("/start"))
    await as_resident(resident.click("English"))
    await as_resident(resident.click("I agree"))
    await as_resident(resident.send("/help"))
    await as_resident(resident.send("/new"))
    await as_resident(resident.send("pishch"))
    await as_resident(resident.click("Pishchanska"))
    await as_resident(resident.click("Kozaky"))
    await as_resident(resident.click("Home care"))
    await as_resident(resident.click("Disability"))
    await as_resident(resident.click("Next"))
    await as_resident(resident.send("x"))
    await as_resident(resident.send("My father needs help at home after a stroke."))
    await as_resident(resident.click("No files"))
    await as_resident(resident.click("For myself"))
    await as_resident(resident.share_contact("+380671112233"))
    await as_resident(resident.click("Send the request"))

    worker = make_client(user_id=7301, language_code="en", first_name="Olena")

    async def as_worker(step: Awaitable[list[Reply]]) -> list[Reply]:
        return seen.add(worker, await step)

    await deliverer.deliver_due()
    notice = next(r for r in seen.add(worker, worker.read()) if r.buttons())
    replies = await as_worker(worker.click("Take", message_id=notice.message_id))
    card = next(r for r in replies if r.kind == "message")
    replies = await as_worker(worker.click("Request documents", message_id=card.message_id))
    checklist = next(r for r in replies if r.kind == "message")
    await as_worker(worker.click(checklist.buttons()[0], message_id=checklist.message_id))
    await as_worker(worker.click("Done", message_id=checklist.message_id))
    replies = await as_worker(worker.click("7 days", message_id=checklist.message_id))
    card = next(r for r in reversed(replies) if r.kind == "message")
    await as_worker(worker.click("Write to resident", message_id=card.message_id))
    await as_worker(worker.send_sticker())
    await as_worker(worker.send("Please bring the passport on Monday."))
    await as_worker(worker.click("Change status", message_id=card.message_id))
    await as_worker(worker.click("Resolved"))
    await as_worker(worker.send("Home care arranged from Monday."))
    await as_worker(worker.send("/worker"))
    await deliverer.deliver_due()

    replies = await as_resident(resident.press("My requests"))
    listing = next(r for r in reversed(replies) if r.buttons())
    await as_resident(resident.click(listing.buttons()[0], message_id=listing.message_id))
    await as_resident(resident.send_sticker())

    assert seen.leftovers(resident) == {}
    assert seen.leftovers(worker) == {}
    # The journey really ran: the resident was told of each step, the worker saw the card.
    shown = "\n".join(seen.texts[resident.user.id])
    assert "PSH-" in shown and "Resolved" in shown and "Outcome: Home care arranged" in shown
    # The case card's history is in words: every kind of entry written has a text.
    card_texts = "\n".join(seen.texts[worker.user.id])
    assert "documents requested" in card_texts and "docs_requested" not in card_texts
    async with sessionmaker() as session:
        kinds = set((await session.scalars(select(CaseEvent.kind))).all())
    assert kinds <= set(EVENT_KINDS) and "docs_requested" in kinds
