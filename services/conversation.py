"""Where a message sent outside any form goes: the routing decision, plain and testable.

A resident who simply talks — types an answer, sends a photo of a passport, records a voice
message — is heard on one of their open cases:

1. the case of the bot message they reply to (a Telegram reply to a message about a case);
2. else their only open case;
3. else the case with the newest open document request, or else the one with the newest
   message from a worker — a guess, so the resident is told which case and may move it;
4. else they choose among their open cases; the message is kept (`InboundMessage`, pending)
   until they do, so nothing waits in memory.

A resident without an open case is offered a new request, their words kept as its description
(files as its attachments). Every message is stored first, so whatever the outcome it is in
the database: relayed to a case, pending a choice, or offered as a new request.

Workers answer a relayed resident message by a Telegram reply: it goes to the resident under
the team's name through the same actions as "Write to the resident" (rights checked there).

No aiogram here; handlers build an `Incoming` from the Telegram message and render the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Case, CaseMessage, DocumentRequest, OutboxMessage, Resident, User, Worker
from models.cases import CLOSED_STATUSES
from models.conversation import (
    DECLINED,
    FILE_KINDS,
    KINDS,
    OFFERED,
    PENDING_CHOICE,
    RELAYED,
    TEXT,
    USED,
    CaseChatLink,
    InboundMessage,
)
from services.case_actions import MAX_TEXT, CaseActions
from services.clock import Clock
from services.errors import StaleAction
from services.text import clean_file_id, clean_file_name, clean_mime_type, tidy

# Outcomes of `receive`.
ROUTED = "routed"
CHOOSE = "choose"
OFFER_NEW = "offer_new"

# Why a message went to its case.
BY_REPLY = "reply"  # a Telegram reply to a message about that case
ONLY = "only"  # the resident's one open case
BY_DOCUMENTS = "documents"  # the case waiting for documents
BY_LATEST = "latest"  # the case a worker wrote in last
CHOSEN = "chosen"  # the resident picked it
EXPLICIT = "explicit"  # "Reply" pressed on a message of that case
GUESSES = frozenset({BY_DOCUMENTS, BY_LATEST})

# A choice lists at most this many open cases (the newest).
MAX_CHOICES = 8
# Messages kept for a new request: the newest few sent within the window before the tap
# (older ones stay offered, unused).
MAX_OFFERED = 10
OFFER_WINDOW = timedelta(hours=2)

# Outbox kinds whose message, answered by a worker's Telegram reply, speaks to the resident.
RESIDENT_RELAY_KINDS = ("case_message_to_worker", "case_attachment_to_worker")


@dataclass(frozen=True)
class Incoming:
    """One message as the service needs it: its kind, text or caption, file, and the id of the
    bot message it replies to (in the same chat)."""

    kind: str
    text: str | None = None
    file_id: str | None = None
    file_unique_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    reply_to: int | None = None


@dataclass
class Routed:
    outcome: str  # ROUTED | CHOOSE | OFFER_NEW
    item: InboundMessage
    case: Case | None = None  # ROUTED: the case it went to (service loaded)
    how: str = ""  # ROUTED: why this case
    choices: list[Case] = field(default_factory=list)  # CHOOSE: the cases to pick from
    open_count: int = 0  # the resident's open cases
    count: int = 1  # messages delivered (a choice delivers every message waiting for it)

    @property
    def guessed(self) -> bool:
        return self.how in GUESSES


@dataclass
class NewRequestSeed:
    """What a new request starts with: the words kept as its description, the files."""

    description: str
    files: list[InboundMessage]


class Conversation:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self.actions = CaseActions(session, clock)

    # -- the resident's side -------------------------------------------------------------------
    async def open_cases(self, user: User) -> list[Case]:
        """The resident's open cases, newest first, with their service."""
        rows = await self.session.scalars(
            select(Case)
            .join(Resident, Resident.id == Case.resident_id)
            .options(joinedload(Case.service))
            .where(
                Resident.user_id == user.id,
                Resident.erased_at.is_(None),
                Case.status.not_in(CLOSED_STATUSES),
            )
            .order_by(Case.created_at.desc(), Case.id.desc())
        )
        return list(rows.all())

    async def receive(self, user: User, chat_id: int, incoming: Incoming) -> Routed:
        """Keep the message and route it (see the module's rules)."""
        item = self._store(user, incoming)
        cases = await self.open_cases(user)
        if not cases:
            item.state = OFFERED
            await self.session.flush()
            return Routed(OFFER_NEW, item)
        target, how = await self._pick(cases, chat_id, incoming.reply_to)
        if target is None:
            item.state = PENDING_CHOICE
            await self.session.flush()
            return Routed(CHOOSE, item, choices=cases[:MAX_CHOICES], open_count=len(cases))
        await self._relay(user, item, target)
        return Routed(ROUTED, item, target, how, open_count=len(cases))

    async def receive_for_case(self, user: User, case_id: int, incoming: Incoming) -> Routed:
        """A message after "Reply" on a message of this case: to that case (if still the
        resident's and open; otherwise routed like any other message)."""
        cases = await self.open_cases(user)
        target = next((c for c in cases if c.id == case_id), None)
        if target is None:
            return await self.receive(user, 0, incoming)
        item = self._store(user, incoming)
        await self._relay(user, item, target)
        return Routed(ROUTED, item, target, EXPLICIT, open_count=len(cases))

    async def reply_target(self, user: User, case_id: int) -> Case:
        """The case a "Reply" button names, if it is the presser's and open (else stale)."""
        case = next((c for c in await self.open_cases(user) if c.id == case_id), None)
        if case is None:
            raise StaleAction()
        return case

    async def choose(self, user: User, item_id: int, case_id: int) -> Routed:
        """The resident picked `case_id` for a kept message, or moves a routed one there.

        A pending message goes there together with every other message of theirs waiting for
        a choice (an album arrives as several messages). A message already routed to another
        case is sent to this one too; its first case keeps its copy: its workers have been
        told already (notices go out right after the commit)."""
        item = await self._own_item(user, item_id)
        cases = await self.open_cases(user)
        target = next((c for c in cases if c.id == case_id), None)
        if target is None or item.state not in (PENDING_CHOICE, RELAYED):
            raise StaleAction()
        if item.state == RELAYED:
            if item.case_id == target.id:
                return Routed(ROUTED, item, target, CHOSEN, open_count=len(cases), count=0)
            await self._relay(user, item, target)
            return Routed(ROUTED, item, target, CHOSEN, open_count=len(cases))
        waiting = await self._items(user, PENDING_CHOICE)
        for pending in waiting:
            await self._relay(user, pending, target)
        return Routed(ROUTED, item, target, CHOSEN, open_count=len(cases), count=len(waiting))

    async def other_choices(self, user: User, item_id: int) -> tuple[InboundMessage, list[Case]]:
        """ "Not this one?": the resident's other open cases for a message."""
        item = await self._own_item(user, item_id)
        if item.state not in (PENDING_CHOICE, RELAYED):
            raise StaleAction()
        cases = [c for c in await self.open_cases(user) if c.id != item.case_id]
        if not cases:
            raise StaleAction()
        return item, cases[:MAX_CHOICES]

    async def take_for_new_request(self, user: User, item_id: int) -> NewRequestSeed:
        """The kept messages offered for a new request: texts (and captions) joined into its
        description, files for its attachments; they are marked used."""
        item = await self._own_item(user, item_id)
        if item.state != OFFERED:
            raise StaleAction()
        # The words of this conversation, not a remark left weeks ago.
        since = item.created_at - OFFER_WINDOW
        items = [
            each
            for each in await self._items(user, OFFERED)
            if each.id <= item.id and each.created_at >= since
        ][-MAX_OFFERED:]
        now = self.clock.now()
        for each in items:
            each.state = USED
            each.routed_at = now
        texts = [each.text for each in items if each.text]
        files = [each for each in items if each.kind in FILE_KINDS and each.file_id]
        return NewRequestSeed("\n".join(texts), files)

    async def decline_new_request(self, user: User, item_id: int) -> None:
        """ "No, thanks": the messages offered for a new request are not offered again."""
        await self._own_item(user, item_id)
        for each in await self._items(user, OFFERED):
            each.state = DECLINED

    async def remember(self, chat_id: int, message_id: int, case_id: int) -> None:
        """A bot message a handler sent about a case: a Telegram reply to it goes to the case."""
        self.session.add(
            CaseChatLink(chat_id=chat_id, message_id=message_id, case_id=case_id, created_at=self.clock.now())
        )
        await self.session.flush()

    async def case_for_reply(
        self, chat_id: int, message_id: int, kinds: Sequence[str] | None = None
    ) -> int | None:
        """The case of the bot message `message_id` in `chat_id` (an outbox row it was sent
        as, or a remembered message); None if it was about no case. With `kinds`, only outbox
        rows of those kinds count (remembered messages always do: in a worker's chat those are
        the texts that follow a relayed video note)."""
        query = select(OutboxMessage.case_id).where(
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.message_id == message_id,
            OutboxMessage.case_id.is_not(None),
        )
        if kinds is not None:
            query = query.where(OutboxMessage.kind.in_(list(kinds)))
        case_id: int | None = await self.session.scalar(query.order_by(OutboxMessage.id.desc()).limit(1))
        if case_id is not None:
            return case_id
        linked: int | None = await self.session.scalar(
            select(CaseChatLink.case_id)
            .where(CaseChatLink.chat_id == chat_id, CaseChatLink.message_id == message_id)
            .order_by(CaseChatLink.id.desc())
            .limit(1)
        )
        return linked

    # -- the worker's side ---------------------------------------------------------------------
    async def worker_reply_case(self, chat_id: int, message_id: int) -> int | None:
        """The case of a relayed resident message in a worker's chat, if that is what it is."""
        return await self.case_for_reply(chat_id, message_id, RESIDENT_RELAY_KINDS)

    async def worker_reply(self, worker: Worker, case_id: int, incoming: Incoming) -> None:
        """The worker's answer, to the resident under the team's name (rights checked by the
        case actions, as for "Write to the resident")."""
        if incoming.kind == TEXT:
            await self.actions.relay_to_resident(case_id, worker, incoming.text or "")
            return
        await self.actions.relay_file_to_resident(
            case_id,
            worker,
            kind=incoming.kind,
            file_id=incoming.file_id or "",
            file_unique_id=incoming.file_unique_id or "",
            file_name=incoming.file_name,
            mime_type=incoming.mime_type,
            caption=incoming.text,
        )

    # -- internals -----------------------------------------------------------------------------
    def _store(self, user: User, incoming: Incoming) -> InboundMessage:
        if incoming.kind not in KINDS:
            raise ValueError(f"unsupported kind {incoming.kind!r}")
        item = InboundMessage(
            user_id=user.id,
            kind=incoming.kind,
            text=tidy(incoming.text, multiline=True) or None,
            file_id=clean_file_id(incoming.file_id, 255) if incoming.file_id else None,
            file_unique_id=clean_file_id(incoming.file_unique_id, 64) if incoming.file_unique_id else None,
            file_name=clean_file_name(incoming.file_name),
            mime_type=clean_mime_type(incoming.mime_type),
            state=PENDING_CHOICE,
            created_at=self.clock.now(),
        )
        self.session.add(item)
        return item

    async def _pick(self, cases: list[Case], chat_id: int, reply_to: int | None) -> tuple[Case | None, str]:
        by_id = {c.id: c for c in cases}
        if reply_to is not None and chat_id:
            replied = await self.case_for_reply(chat_id, reply_to)
            if replied in by_id:
                return by_id[replied], BY_REPLY
            # A reply to a message of a closed case (or of none) is routed like any message.
        if len(cases) == 1:
            return cases[0], ONLY
        ids = list(by_id)
        waiting = await self.session.scalar(
            select(DocumentRequest.case_id)
            .where(DocumentRequest.case_id.in_(ids), DocumentRequest.status == "open")
            .order_by(DocumentRequest.created_at.desc(), DocumentRequest.id.desc())
            .limit(1)
        )
        if waiting is not None:
            return by_id[waiting], BY_DOCUMENTS
        latest = await self.session.scalar(
            select(CaseMessage.case_id)
            .where(CaseMessage.case_id.in_(ids), CaseMessage.from_resident.is_(False))
            .order_by(CaseMessage.at.desc(), CaseMessage.id.desc())
            .limit(1)
        )
        if latest is not None:
            return by_id[latest], BY_LATEST
        return None, ""

    async def _relay(self, user: User, item: InboundMessage, case: Case) -> None:
        """Put the message on the case (a message, or an attachment with its caption) and tell
        the workers, as "Write to the worker" and "Add a document" do."""
        if item.kind == TEXT:
            text = item.text or ""
            # Telegram allows longer texts than a case message: nothing is cut, it is split.
            for start in range(0, max(len(text), 1), MAX_TEXT):
                await self.actions.resident_message(user, case.id, text[start : start + MAX_TEXT])
        else:
            await self.actions.resident_attachment(
                user,
                case.id,
                kind=item.kind,
                file_id=item.file_id or "",
                file_unique_id=item.file_unique_id or "",
                file_name=item.file_name,
                mime_type=item.mime_type,
                caption=item.text,
            )
        item.case_id = case.id
        item.state = RELAYED
        item.routed_at = self.clock.now()
        await self.session.flush()

    async def _own_item(self, user: User, item_id: int) -> InboundMessage:
        item = await self.session.scalar(
            select(InboundMessage).where(InboundMessage.id == item_id, InboundMessage.user_id == user.id)
        )
        if item is None:
            raise StaleAction()
        return item

    async def _items(self, user: User, state: str) -> list[InboundMessage]:
        rows = await self.session.scalars(
            select(InboundMessage)
            .where(InboundMessage.user_id == user.id, InboundMessage.state == state)
            .order_by(InboundMessage.id)
        )
        return list(rows.all())


async def record_extra_messages(session: AsyncSession, rows: Sequence[tuple[int, Sequence[int]]]) -> None:
    """An outbox row that became more than one Telegram message (a video note and its text):
    the others are linked to the row's case too, so a reply to any of them finds it."""
    for outbox_id, message_ids in rows:
        row = await session.get(OutboxMessage, outbox_id)
        if row is None or row.case_id is None:
            continue
        for message_id in message_ids:
            session.add(CaseChatLink(chat_id=row.chat_id, message_id=message_id, case_id=row.case_id))
