"""Document requests: a worker asks a resident for papers from the service checklist.

No aiogram. The resident gets the list at once (in their language, where to bring them — the
team's ЦНАП address — or to send them through the bot, and the deadline), then reminders
(services/reminders.py rules) until the worker marks the request received or the case closes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseEvent, DocumentRequest, DocumentRequirement, Resident, Team, User, Worker
from models.cases import CLOSED_STATUSES, TRANSITIONS, WAITING_DOCUMENTS
from models.outbox import PENDING, OutboxMessage
from services.case_actions import CaseActions, NotFound
from services.clock import Clock
from services.errors import DomainError, StaleAction
from services.outbox import cancel_pending, enqueue
from services.reminders import ReminderRules
from services.text import clean_optional

NOTE_MAX = 500
OPEN = "open"
RECEIVED = "received"
CANCELLED = "cancelled"
# Deadlines a worker picks from the case card: this many days from today, at the end of the
# office day (DEADLINE_HOUR, local time).
DEADLINE_DAYS = (3, 7, 14)
DEADLINE_HOUR = 18


class DocumentError(DomainError):
    """A document request that cannot be made or changed (`docs.error.<code>`): unknown_items,
    no_items, note_too_long, case_closed, deadline_past, not_open, not_found."""

    prefix = "docs.error"


class DocumentService:
    def __init__(self, session: AsyncSession, clock: Clock, rules: ReminderRules | None = None) -> None:
        self.session = session
        self.clock = clock
        self.rules = rules or ReminderRules()

    async def checklist(self, service_id: int) -> list[DocumentRequirement]:
        return list(
            (
                await self.session.scalars(
                    select(DocumentRequirement)
                    .where(DocumentRequirement.service_id == service_id)
                    .order_by(DocumentRequirement.position, DocumentRequirement.id)
                )
            ).all()
        )

    def deadline_after(self, days: int) -> datetime:
        """`days` days from now at DEADLINE_HOUR:00 local time."""
        local_now = self.rules.local(self.clock.now())
        return (local_now + timedelta(days=days)).replace(
            hour=DEADLINE_HOUR, minute=0, second=0, microsecond=0
        )

    async def request_from_card(
        self, worker: Worker, case_id: int, item_codes: list[str], days: int, note: str | None = None
    ) -> DocumentRequest:
        """A request made on the case card (a member of the case's team, the case open, one of
        DEADLINE_DAYS), with an optional note (a saved reply); then the case waits for
        documents, where the transition table allows."""
        if days not in DEADLINE_DAYS:
            raise StaleAction()
        actions = CaseActions(self.session, self.clock)
        case = await actions.member_open_case(worker, case_id)
        request = await self.request(case, worker, item_codes, self.deadline_after(days), note)
        if case.status != WAITING_DOCUMENTS and WAITING_DOCUMENTS in TRANSITIONS[case.status]:
            await actions.change_status(case.id, worker, WAITING_DOCUMENTS)
        return request

    async def request(
        self,
        case: Case,
        worker: Worker,
        item_codes: list[str],
        deadline: datetime | None,
        note: str | None,
    ) -> DocumentRequest:
        """Store a request, tell the resident at once, plan reminders, audit it on the case."""
        if case.status in CLOSED_STATUSES:
            raise DocumentError("case_closed")
        codes = list(dict.fromkeys(item_codes))
        if not codes:
            raise DocumentError("no_items")
        checklist = {d.code: d for d in await self.checklist(case.service_id)}
        if any(code not in checklist for code in codes):
            raise DocumentError("unknown_items")
        note = clean_optional(note, NOTE_MAX, multiline=True, error=DocumentError, code="note_too_long")
        now = self.clock.now()
        if deadline is not None and deadline <= now:
            raise DocumentError("deadline_past")

        request = DocumentRequest(
            case_id=case.id,
            requested_by_worker_id=worker.id,
            items=codes,
            note=note,
            deadline=deadline,
            status=OPEN,
            created_at=now,
        )
        self.session.add(request)
        await self.session.flush()

        user = await self._resident_user(case)
        team = await self.session.get(Team, case.team_id)
        if user is not None:
            lang = user.language or "uk"
            payload = {
                "number": case.number,
                "items": [checklist[c].name(lang) for c in codes],
                "place": (team.office_address_en if lang == "en" else team.office_address_uk) if team else "",
                "deadline": self.rules.local(deadline).date().isoformat() if deadline else None,
                "note": note,
            }
            suffix = "" if deadline else "_open"
            await enqueue(
                self.session,
                user=user,
                kind=f"docs_requested{suffix}",
                payload=payload,
                due_at=now,
                dedupe_key=f"docs:{request.id}:new",
                case_id=case.id,
                document_request_id=request.id,
            )
            for tag, at in self.rules.docs_reminders(now, deadline):
                await enqueue(
                    self.session,
                    user=user,
                    kind="docs_overdue" if tag.startswith("o+") else f"docs_reminder{suffix}",
                    payload={**payload, "note": None},
                    due_at=at,
                    dedupe_key=f"docs:{request.id}:{tag}",
                    case_id=case.id,
                    document_request_id=request.id,
                )
        self.session.add(
            CaseEvent(
                case_id=case.id,
                at=now,
                actor_user_id=worker.user_id,
                kind="docs_requested",
                data={
                    "request_id": request.id,
                    "items": codes,
                    "deadline": deadline.isoformat() if deadline else None,
                },
            )
        )
        await self.session.flush()
        return request

    async def receive_from_card(self, worker: Worker, request_id: int) -> DocumentRequest:
        """`mark_received` pressed on the case card by a worker who may act on the case (anyone
        else, or a missing request, is a stale button)."""
        request = await self.session.get(DocumentRequest, request_id)
        if request is None:
            raise StaleAction()
        try:
            await CaseActions(self.session, self.clock).worker_case_access(worker, request.case_id)
        except NotFound:
            raise StaleAction() from None
        return await self.mark_received(request.id, worker)

    async def mark_received(self, request_id: int, worker: Worker) -> DocumentRequest:
        """Close the request, cancel its pending reminders, audit it on the case."""
        request = await self.session.get(DocumentRequest, request_id)
        if request is None:
            raise DocumentError("not_found")
        if request.status != OPEN:
            raise DocumentError("not_open")
        now = self.clock.now()
        request.status = RECEIVED
        request.closed_at = now
        await cancel_pending(self.session, OutboxMessage.document_request_id == request.id)
        self.session.add(
            CaseEvent(
                case_id=request.case_id,
                at=now,
                actor_user_id=worker.user_id,
                kind="docs_received",
                data={"request_id": request.id},
            )
        )
        await self.session.flush()
        return request

    async def open_requests(self, case_id: int) -> list[DocumentRequest]:
        return list(
            (
                await self.session.scalars(
                    select(DocumentRequest)
                    .where(DocumentRequest.case_id == case_id, DocumentRequest.status == OPEN)
                    .order_by(DocumentRequest.id)
                )
            ).all()
        )

    async def pending_reminders(self, request_id: int) -> list[OutboxMessage]:
        return list(
            (
                await self.session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.document_request_id == request_id, OutboxMessage.state == PENDING)
                    .order_by(OutboxMessage.due_at)
                )
            ).all()
        )

    async def _resident_user(self, case: Case) -> User | None:
        user: User | None = await self.session.scalar(
            select(User).join(Resident, Resident.user_id == User.id).where(Resident.id == case.resident_id)
        )
        return user
