"""Filing a resident's request: number, priority, routing, assignee, audit row, notifications.

`IntakeService.file` is idempotent per `idempotency_key` (the draft id of the form, so a double
tap or a redelivered update files one case). It never commits: the caller's unit of work does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from models import (
    Attachment,
    Case,
    CaseEvent,
    Hromada,
    Resident,
    Service,
    Settlement,
    User,
    Worker,
)
from models.cases import NEW
from services import outbox
from services.clock import Clock
from services.phones import contact_phone
from services.routing import RoutingDecision, RoutingService

# The intake handlers' name for it.
normalise_phone = contact_phone

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
MAX_ATTACHMENTS = 10
NOTICE_EXCERPT = 300


class IntakeError(Exception):
    code = "intake"


class InvalidDraft(IntakeError):
    code = "invalid_draft"


@dataclass
class AttachmentDraft:
    kind: str  # photo | document
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
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    async def remember_phone(self, resident: Resident, phone: str) -> str:
        """A phone shared through Telegram's contact button by its owner: verified."""
        resident.phone = contact_phone(phone)
        resident.phone_verified_at = self.clock.now()
        return resident.phone

    async def by_idempotency_key(self, key: str) -> Case | None:
        return await self.session.scalar(select(Case).where(Case.idempotency_key == key))

    async def file(self, resident: Resident, draft: CaseDraft, idempotency_key: str) -> FiledCase:
        existing = await self.by_idempotency_key(idempotency_key)
        if existing is not None:
            return FiledCase(existing, None, False)
        description = draft.description.strip()
        if not DESCRIPTION_MIN <= len(description) <= DESCRIPTION_MAX:
            raise InvalidDraft()
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
                    on_behalf=bool(draft.on_behalf_name),
                    on_behalf_name=draft.on_behalf_name,
                    on_behalf_relation=draft.on_behalf_relation,
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
            if item.file_unique_id in seen:
                continue
            seen.add(item.file_unique_id)
            self.session.add(
                Attachment(
                    case_id=case.id,
                    kind=item.kind,
                    file_id=item.file_id,
                    file_unique_id=item.file_unique_id,
                    file_name=item.file_name,
                    mime_type=item.mime_type,
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


class ResidentCases:
    """Read side of "My requests": a resident's own cases, newest first, a page at a time."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
