"""Filing a resident's request: number, priority, routing, assignee, audit row, notifications.

`IntakeService.file` is idempotent per `idempotency_key` (the draft id of the form, so a double
tap or a redelivered update files one case). It never commits: the caller's unit of work does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from models import (
    Attachment,
    Case,
    CaseEvent,
    CaseMessage,
    Hromada,
    Resident,
    Service,
    Settlement,
    Team,
    User,
    Worker,
)
from models.cases import CLOSED_STATUSES, NEW
from services import outbox
from services.case_actions import ATTACHMENT_KINDS, CaseActions, InvalidTransition, NotFound
from services.clock import Clock
from services.errors import DomainError, StaleAction
from services.phones import contact_phone
from services.reminders import default_zone
from services.routing import HromadaNotAccepting, RoutingDecision, RoutingError, RoutingService
from services.sla import SlaService
from services.text import clean_file_id, clean_file_name, clean_mime_type, clip, has_words, tidy

# Each marker raises priority; sensitive services (child protection) too.
VULNERABILITY_WEIGHTS: dict[str, int] = {
    "elderly_alone": 2,
    "disability": 2,
    "children": 2,
    "displaced": 1,
}
VULNERABILITY_MARKERS = tuple(VULNERABILITY_WEIGHTS)
SENSITIVE_WEIGHT = 3

DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 2000
ON_BEHALF_NAME_MAX = 120
ON_BEHALF_RELATION_MAX = 60
MAX_ATTACHMENTS = 10
NOTICE_EXCERPT = 300


# A case number as people say or type it: "ves-2026-123", "VES 2026 000123", "VES-2026-000123".
_CASE_NUMBER = re.compile(r"^\s*([A-Za-z]{2,8})[\s\-_/.]*(\d{4})[\s\-_/.]+(\d{1,6})\s*$")


def case_number(typed: str | None) -> str | None:
    """The number in its filed form (PREFIX-YEAR-000123), or None when it is not one."""
    found = _CASE_NUMBER.match(typed or "")
    if found is None:
        return None
    prefix, year, sequence = found.groups()
    return f"{prefix.upper()}-{year}-{int(sequence):06d}"


class IntakeError(Exception):
    code = "intake"


class InvalidDraft(IntakeError):
    code = "invalid_draft"


class IntakeRefused(DomainError):
    """A request the form cannot file: need_consent, hromada_occupied (hromada), no_route,
    already_filed (number)."""

    prefix = "intake"
    code = "no_route"


def verified_phone(resident: Resident | None) -> str | None:
    """The resident's phone if its owner shared it through Telegram's contact button."""
    if resident is not None and resident.phone and resident.phone_verified_at is not None:
        return resident.phone
    return None


@dataclass
class AttachmentDraft:
    kind: str  # photo | document | voice | video_note
    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None


@dataclass
class CaseDraft:
    hromada_id: int
    settlement_id: int | None
    service_id: int
    description: str
    contact_phone: str | None
    vulnerability: list[str]
    on_behalf_name: str | None = None
    on_behalf_relation: str | None = None
    attachments: list[AttachmentDraft] = field(default_factory=list)


@dataclass
class FiledCase:
    case: Case
    decision: RoutingDecision | None  # None when an earlier call already filed it
    created: bool


def priority_for(vulnerability: list[str], sensitive: bool) -> int:
    score = sum(VULNERABILITY_WEIGHTS.get(code, 0) for code in set(vulnerability))
    return score + (SENSITIVE_WEIGHT if sensitive else 0)


# Plain SQL: SQLAlchemy never caches a dialect's compiled INSERT … ON CONFLICT, and this runs
# for every filed case. The syntax is the same on PostgreSQL and SQLite (3.35+ for RETURNING).
_NEXT_NUMBER = text(
    "INSERT INTO case_counters (prefix, year, last_value) VALUES (:prefix, :year, 1) "
    "ON CONFLICT (prefix, year) DO UPDATE SET last_value = case_counters.last_value + 1 "
    "RETURNING last_value"
)


class IntakeService:
    def __init__(self, session: AsyncSession, clock: Clock, zone: tzinfo | None = None) -> None:
        self.session = session
        self.clock = clock
        self.zone = zone or default_zone()

    async def remember_phone(self, resident: Resident, phone: str) -> str:
        """A phone shared through Telegram's contact button by its owner: verified."""
        resident.phone = contact_phone(phone)
        resident.phone_verified_at = self.clock.now()
        return resident.phone

    async def by_idempotency_key(self, key: str) -> Case | None:
        found: Case | None = await self.session.scalar(select(Case).where(Case.idempotency_key == key))
        return found

    async def suggested_hromadas(self, resident: Resident | None, current_id: int | None) -> list[Hromada]:
        """One-tap choices at the form's first step: the hromada already chosen in this draft,
        then the one of the resident's last request (each once)."""
        found: list[Hromada] = []
        for hromada_id in (current_id, resident.last_hromada_id if resident else None):
            if hromada_id and all(h.id != hromada_id for h in found):
                hromada = await self.session.get(Hromada, hromada_id)
                if hromada is not None:
                    found.append(hromada)
        return found

    async def refuse_if_filed(self, idempotency_key: str) -> None:
        """For a press on a form that is no longer open: say so if it was filed (its number),
        that the button is stale otherwise. Always raises."""
        existing = await self.by_idempotency_key(idempotency_key)
        if existing is not None:
            raise IntakeRefused("already_filed", number=existing.number)
        raise StaleAction()

    async def accepting_hromada(self, hromada_id: int, locale: str) -> Hromada:
        """The hromada a resident picks; an occupied or front-line one takes no requests (the
        resident should pick where they live now), named in `locale` in the refusal."""
        hromada = await self.session.get(Hromada, hromada_id)
        if hromada is None:
            raise StaleAction()
        if not hromada.accepts_requests:
            raise IntakeRefused("hromada_occupied", hromada=hromada.name(locale))
        return hromada

    async def submit(
        self, resident: Resident, draft: CaseDraft, idempotency_key: str, locale: str
    ) -> FiledCase:
        """`file`, with its refusals as answers for the person: a hromada that takes no
        requests (named in `locale`), a place the routing rules cannot serve (`no_route`), a
        draft that no longer fits the reference data (a stale form)."""
        try:
            return await self.file(resident, draft, idempotency_key)
        except HromadaNotAccepting:
            await self.accepting_hromada(draft.hromada_id, locale)
            raise IntakeRefused("hromada_occupied", hromada="") from None
        except RoutingError:
            raise IntakeRefused("no_route") from None
        except InvalidDraft:
            raise StaleAction() from None

    async def file(self, resident: Resident, draft: CaseDraft, idempotency_key: str) -> FiledCase:
        existing = await self.by_idempotency_key(idempotency_key)
        if existing is not None:
            return FiledCase(existing, None, False)
        # The form cleans each step; a draft kept from before (or forged) is cleaned again here,
        # so what reaches the columns always fits them.
        description = tidy(draft.description, multiline=True)
        if not DESCRIPTION_MIN <= len(description) <= DESCRIPTION_MAX or not has_words(description):
            raise InvalidDraft()
        on_behalf_name = clip(draft.on_behalf_name, ON_BEHALF_NAME_MAX)
        on_behalf_relation = clip(draft.on_behalf_relation, ON_BEHALF_RELATION_MAX)
        # Held here so that routing's lookups hit the identity map (it keeps objects weakly).
        service = await self.session.get(Service, draft.service_id)
        hromada = await self.session.get(Hromada, draft.hromada_id)
        settlement = await self.session.get(Settlement, draft.settlement_id) if draft.settlement_id else None
        if service is None or hromada is None:
            raise InvalidDraft()
        routing = RoutingService(self.session)
        decision = await routing.route(draft.hromada_id, draft.settlement_id, draft.service_id)
        assignee = await routing.pick_assignee(decision.team.id)
        now = self.clock.now()
        try:
            # The counter row is locked from here to commit: keep the rest of the work short.
            async with self.session.begin_nested():
                number = await self._next_number(hromada.code, now)
                case = Case(
                    number=number,
                    resident_id=resident.id,
                    on_behalf=bool(on_behalf_name),
                    on_behalf_name=on_behalf_name,
                    on_behalf_relation=on_behalf_relation if on_behalf_name else None,
                    hromada_id=hromada.id,
                    settlement_id=draft.settlement_id,
                    service_id=service.id,
                    team_id=decision.team.id,
                    assignee_worker_id=assignee.id if assignee else None,
                    status=NEW,
                    priority=priority_for(draft.vulnerability, service.sensitive),
                    vulnerability=sorted(set(draft.vulnerability) & set(VULNERABILITY_MARKERS)),
                    description=description,
                    contact_phone=draft.contact_phone,
                    routing_kind=decision.kind,
                    routing_detail=decision.detail,
                    idempotency_key=idempotency_key,
                    created_at=now,
                    updated_at=now,
                )
                self.session.add(case)
                await self.session.flush()
        except IntegrityError:
            # A concurrent call with the same key won the race: return its case.
            existing = await self.by_idempotency_key(idempotency_key)
            if existing is None:
                raise
            return FiledCase(existing, None, False)

        seen: set[str] = set()
        for item in draft.attachments[:MAX_ATTACHMENTS]:
            unique_id = clean_file_id(item.file_unique_id, 64)
            if not unique_id or unique_id in seen:
                continue
            seen.add(unique_id)
            self.session.add(
                Attachment(
                    case_id=case.id,
                    kind=item.kind if item.kind in ATTACHMENT_KINDS else "document",
                    file_id=clean_file_id(item.file_id, 255),
                    file_unique_id=unique_id,
                    file_name=clean_file_name(item.file_name),
                    mime_type=clean_mime_type(item.mime_type),
                    uploaded_by_user_id=resident.user_id,
                    at=now,
                )
            )
        self.session.add(
            CaseEvent(
                case_id=case.id,
                at=now,
                actor_user_id=resident.user_id,
                kind="created",
                to_status=NEW,
                data={
                    "routing": {"kind": decision.kind, **_ids_only(decision.detail)},
                    "priority": case.priority,
                    "assignee_worker_id": case.assignee_worker_id,
                    "attachments": len(seen),
                },
            )
        )
        await SlaService(self.session, self.clock, self.zone).start(case)
        resident.last_hromada_id = hromada.id
        resident.last_settlement_id = draft.settlement_id
        await self._notify(case, decision, service, hromada, settlement, now)
        await self.session.flush()
        return FiledCase(case, decision, True)

    async def _next_number(self, prefix: str, now: datetime) -> str:
        """Atomic per (prefix, year): one upsert that row-locks the counter until commit."""
        year = now.year
        value = (await self.session.execute(_NEXT_NUMBER, {"prefix": prefix, "year": year})).scalar_one()
        return f"{prefix}-{year}-{value:06d}"

    async def _notify(
        self,
        case: Case,
        decision: RoutingDecision,
        service: Service,
        hromada: Hromada,
        settlement: Settlement | None,
        now: datetime,
    ) -> None:
        payload: dict[str, Any] = {
            "case_id": case.id,
            "number": case.number,
            "service_uk": service.name_uk,
            "service_en": service.name_en,
            "hromada_uk": hromada.name_uk,
            "hromada_en": hromada.name_en,
            "settlement_uk": settlement.name_uk if settlement else None,
            "settlement_en": settlement.name_en if settlement else None,
        }
        personal = {
            **payload,
            "priority": case.priority,
            # A sensitive service's description never leaves the case card.
            "excerpt": None if service.sensitive else _excerpt(case.description),
        }
        if case.assignee_worker_id is not None:
            assignee = await self.session.get(Worker, case.assignee_worker_id)
            recipients = [assignee] if assignee else []
        else:
            recipients = await RoutingService(self.session).on_duty_members(case.team_id)
        for worker in recipients:
            user = await self.session.get(User, worker.user_id)
            if user is None:
                continue
            await outbox.enqueue(
                self.session,
                user=user,
                kind="case_new",
                payload=personal,
                due_at=now,
                urgent=case.priority > 0,
                dedupe_key=f"case_new:{case.id}:{worker.id}",
                case_id=case.id,
            )
        if decision.team.group_chat_id is not None:
            # Group chats see number, service and settlement only — never personal data.
            await outbox.enqueue(
                self.session,
                user=None,
                chat_id=decision.team.group_chat_id,
                kind="case_new_group",
                payload=payload,
                due_at=now,
                dedupe_key=f"case_new_group:{case.id}",
                case_id=case.id,
            )


def _excerpt(text: str) -> str:
    return text if len(text) <= NOTICE_EXCERPT else text[: NOTICE_EXCERPT - 1] + "…"


def _ids_only(detail: dict[str, Any]) -> dict[str, Any]:
    """The routing detail without names, for the audit row."""
    out: dict[str, Any] = {}
    for key, value in detail.items():
        if isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if k in ("id", "code")}
        else:
            out[key] = value
    return out


class NotYourCase(DomainError):
    """A case that does not exist or is someone else's: the resident is told both alike."""

    prefix = "mycases"
    code = "not_found"


@dataclass
class CasePage:
    total: int
    page: int  # within 0 .. pages - 1
    pages: int
    cases: list[Case]


@dataclass
class CaseCard:
    """What the resident's card of one case shows."""

    case: Case
    service: Service | None
    team: Team | None
    hromada: Hromada | None
    settlement: Settlement | None
    events: list[CaseEvent]  # the latest, oldest first
    messages: list[CaseMessage]  # the latest, oldest first
    teams: dict[int, Team]  # the teams transfer events name

    @property
    def open(self) -> bool:
        return self.case.status not in CLOSED_STATUSES


class ResidentCases:
    """ "My requests": a resident's own cases, newest first, a page at a time; one case's card;
    what the resident may do with their case. Someone else's case is treated exactly like a
    missing one (`NotYourCase`)."""

    def __init__(self, session: AsyncSession, clock: Clock | None = None) -> None:
        self.session = session
        self.actions = CaseActions(session, clock or Clock())

    async def list_page(self, user: User, page: int, size: int) -> CasePage:
        """The resident's page `page` (a page past the end shows the last one)."""
        resident = await self.session.scalar(select(Resident).where(Resident.user_id == user.id))
        if resident is None:
            return CasePage(0, 0, 0, [])
        total, cases = await self.page(resident.id, page, size)
        if total == 0:
            return CasePage(0, 0, 0, [])
        pages = (total + size - 1) // size
        page = min(max(page, 0), pages - 1)
        if not cases:
            total, cases = await self.page(resident.id, page, size)
        return CasePage(total, page, pages, cases)

    async def own(self, user: User, case_id: int) -> Case:
        try:
            return await self.actions.resident_case(user, case_id)
        except NotFound:
            raise NotYourCase() from None

    async def own_open(self, user: User, case_id: int) -> Case:
        """The resident's case, still open (to write, add a document or cancel)."""
        case = await self.own(user, case_id)
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        return case

    async def card(self, case: Case, *, events: int, messages: int) -> CaseCard:
        get = self.session.get
        history = (await self.actions.history(case.id))[-events:]
        team_ids = {(e.data or {}).get("to_team") for e in history if e.kind == "transferred"}
        teams = {t.id: t for t in [await get(Team, i) for i in team_ids if i] if t is not None}
        return CaseCard(
            case=case,
            service=await get(Service, case.service_id),
            team=await get(Team, case.team_id),
            hromada=await get(Hromada, case.hromada_id),
            settlement=await get(Settlement, case.settlement_id) if case.settlement_id else None,
            events=history,
            messages=await self.actions.messages(case.id, limit=messages),
            teams=teams,
        )

    async def write(self, user: User, case_id: int, text: str) -> CaseMessage:
        try:
            return await self.actions.resident_message(user, case_id, text)
        except NotFound:
            raise NotYourCase() from None

    async def attach(self, user: User, case_id: int, **fields: Any) -> Attachment:
        try:
            return await self.actions.resident_attachment(user, case_id, **fields)
        except NotFound:
            raise NotYourCase() from None

    async def cancel(self, user: User, case_id: int, reason: str) -> Case:
        try:
            return await self.actions.cancel_by_resident(user, case_id, reason)
        except NotFound:
            raise NotYourCase() from None

    async def page(self, resident_id: int, page: int, size: int) -> tuple[int, list[Case]]:
        """One statement: the page with each case's service, and the total as a window count
        (taken before LIMIT/OFFSET). Only a page past the end needs a second, counting query."""
        total_col = func.count().over().label("total")
        rows = (
            await self.session.execute(
                select(Case, total_col)
                .join(Case.service)
                .options(contains_eager(Case.service))
                .where(Case.resident_id == resident_id)
                .order_by(Case.created_at.desc(), Case.id.desc())
                .offset(max(page, 0) * size)
                .limit(size)
            )
        ).all()
        if rows:
            return int(rows[0].total), [row.Case for row in rows]
        if page <= 0:
            return 0, []
        total = await self.session.scalar(
            select(func.count()).select_from(Case).where(Case.resident_id == resident_id)
        )
        return int(total or 0), []
