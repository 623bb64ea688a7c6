"""Cases (personal case files), their statuses and the one table of allowed status changes,
their audit trail, messages, attachments, document requests."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigIntPK, UtcDateTime, utcnow
from models.people import Resident, Worker
from models.reference import Hromada, Service, Settlement, Team


class CaseStatus(StrEnum):
    """A case's status; the values are what the database stores."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    WAITING_DOCUMENTS = "waiting_documents"
    VISIT_PLANNED = "visit_planned"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


NEW = CaseStatus.NEW
IN_PROGRESS = CaseStatus.IN_PROGRESS
WAITING_DOCUMENTS = CaseStatus.WAITING_DOCUMENTS
VISIT_PLANNED = CaseStatus.VISIT_PLANNED
RESOLVED = CaseStatus.RESOLVED
REJECTED = CaseStatus.REJECTED
CANCELLED = CaseStatus.CANCELLED
OPEN_STATUSES: tuple[CaseStatus, ...] = (NEW, IN_PROGRESS, WAITING_DOCUMENTS, VISIT_PLANNED)
CLOSED_STATUSES: tuple[CaseStatus, ...] = (RESOLVED, REJECTED, CANCELLED)
STATUSES: tuple[CaseStatus, ...] = OPEN_STATUSES + CLOSED_STATUSES

# The one table of allowed status changes. Closed statuses are final: nothing leaves them.
TRANSITIONS: dict[str, frozenset[CaseStatus]] = {
    NEW: frozenset({IN_PROGRESS, WAITING_DOCUMENTS, VISIT_PLANNED, REJECTED, CANCELLED}),
    IN_PROGRESS: frozenset({WAITING_DOCUMENTS, VISIT_PLANNED, RESOLVED, REJECTED, CANCELLED}),
    WAITING_DOCUMENTS: frozenset({IN_PROGRESS, VISIT_PLANNED, RESOLVED, REJECTED, CANCELLED}),
    VISIT_PLANNED: frozenset({IN_PROGRESS, WAITING_DOCUMENTS, RESOLVED, REJECTED, CANCELLED}),
    RESOLVED: frozenset(),
    REJECTED: frozenset(),
    CANCELLED: frozenset(),
}
# Every kind of audit-trail entry (CaseEvent.kind); each is shown in words in the case card and
# the resident's history, never as this code.
EVENT_KINDS: tuple[str, ...] = (
    "created",
    "status",
    "assigned",
    "transferred",
    "docs_requested",
    "docs_received",
    "visit_planned",
    "visit_rescheduled",
    "visit_cancelled",
    "visit_done",
    "visit_confirmed",
    "visit_reschedule_asked",
    "retention_erased",
    "referral_sent",
    "referral_accepted",
    "referral_declined",
    "referral_outcome",
    "referral_closed",
    "referral_reminded",
    "referral_escalated",
    "sla_due_soon",
    "sla_breached",
    "sla_escalated",
)

# A reason is required for these (it is shown to the resident).
REASON_REQUIRED: frozenset[CaseStatus] = frozenset({REJECTED, CANCELLED})


def is_closed(status: str) -> bool:
    return status in CLOSED_STATUSES


def next_statuses(status: str) -> list[CaseStatus]:
    """The statuses a case in `status` may move to, in a stable order (for menus)."""
    return sorted(TRANSITIONS.get(status, frozenset()))


class CaseCounter(Base):
    """Per (hromada code, year) sequence for human case numbers like VES-2026-000123."""

    __tablename__ = "case_counters"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_resident_created", "resident_id", "created_at"),
        Index("ix_cases_hromada_status", "hromada_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    # The resident who filed it (and who is told about it).
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    on_behalf: Mapped[bool] = mapped_column(Boolean, default=False)
    on_behalf_name: Mapped[str | None] = mapped_column(String(120))
    on_behalf_relation: Mapped[str | None] = mapped_column(String(60))
    hromada_id: Mapped[int] = mapped_column(ForeignKey("hromadas.id"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlements.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    assignee_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(24), default=NEW)
    # Higher is more urgent; raised by vulnerability markers.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    vulnerability: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    contact_phone: Mapped[str | None] = mapped_column(String(16))
    # Why it went to this team: a reason code plus parameters, rendered per language.
    routing_kind: Mapped[str] = mapped_column(String(16))
    routing_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str | None] = mapped_column(Text)
    # A client-side key (e.g. the confirming update id) so a double tap files one case.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # SLA (services/sla.py): due times in working time, pause while waiting for the resident,
    # the escalation step reached on the running clock, and the next moment the sweep must look.
    first_response_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sla_state: Mapped[str | None] = mapped_column(String(12))
    # Sorts breaching cases first within a priority in the queue indexes.
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sla_paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    sla_escalation_step: Mapped[int] = mapped_column(Integer, default=0)
    sla_next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    resident: Mapped[Resident] = relationship()
    hromada: Mapped[Hromada] = relationship()
    settlement: Mapped[Settlement | None] = relationship()
    service: Mapped[Service] = relationship()
    team: Mapped[Team] = relationship()
    assignee: Mapped[Worker | None] = relationship()


# Queue pages: by team/assignee and status, most urgent first, breaching first within a
# priority, then longest waiting (ORDER BY priority DESC, sla_breached DESC, created_at):
# descending in the index (migrations 0004, 0007).
Index(
    "ix_cases_team_queue",
    Case.team_id,
    Case.status,
    Case.priority.desc(),
    Case.sla_breached.desc(),
    Case.created_at,
)
Index(
    "ix_cases_assignee_queue",
    Case.assignee_worker_id,
    Case.status,
    Case.priority.desc(),
    Case.sla_breached.desc(),
    Case.created_at,
)
# Reports: a scope's cases filed in a period, and (SLA section) due in a period (migration 0013).
Index("ix_cases_hromada_created", Case.hromada_id, Case.created_at)
Index(
    "ix_cases_hromada_due",
    Case.hromada_id,
    Case.resolution_due_at,
    postgresql_where=Case.resolution_due_at.is_not(None),
    sqlite_where=Case.resolution_due_at.is_not(None),
)
# The SLA sweep: an index range scan over "next check <= now"; closed and paused cases have none.
Index(
    "ix_cases_sla_next_check",
    Case.sla_next_check_at,
    postgresql_where=Case.sla_next_check_at.is_not(None),
    sqlite_where=Case.sla_next_check_at.is_not(None),
)


class CaseEvent(Base):
    """Audit trail of a case: who did what, when, from which status to which, and why."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(24))  # created, status, assigned, transferred, ...
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseMessage(Base):
    """A message relayed between resident and worker through the bot."""

    __tablename__ = "case_messages"
    __table_args__ = (Index("ix_case_messages_case_at", "case_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    from_resident: Mapped[bool] = mapped_column(Boolean)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)


class Attachment(Base):
    """A photo or document, kept as Telegram file ids (the bytes stay on Telegram)."""

    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("case_id", "file_unique_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # photo | document
    file_id: Mapped[str] = mapped_column(String(255))
    file_unique_id: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str | None] = mapped_column(String(255))
    mime_type: Mapped[str | None] = mapped_column(String(100))
    uploaded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class DocumentRequest(Base):
    """A worker's request for documents from the service checklist, with a deadline."""

    __tablename__ = "document_requests"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    requested_by_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    items: Mapped[list[str]] = mapped_column(JSON, default=list)  # DocumentRequirement codes
    note: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | received | cancelled
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
