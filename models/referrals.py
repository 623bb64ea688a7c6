"""Referrals: a worker sends a part of a case (a short subject and chosen files) to a partner
agency from the reference data, and the partner answers.

A partner is either a team in the bot (its members answer with buttons) or an external agency
with a contact (the referring worker records its answer). The partner sees the referral only:
never the case's description, messages, other files or history (services/referrals.py).

State: sent → accepted | declined (reason) | outcome (text) | closed; accepted → outcome | closed.
`due_at` is when the partner is reminded of an unanswered referral, `escalate_at` when the
referring team's coordinator hears of it; `reminded_at` and `escalated_at` mark each step done.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigIntPK, UtcDateTime, utcnow
from models.reference import Team

IN_BOT = "in_bot"
EXTERNAL = "external"
PARTNER_KINDS = (IN_BOT, EXTERNAL)

SENT = "sent"
ACCEPTED = "accepted"
DECLINED = "declined"
OUTCOME = "outcome"
CLOSED = "closed"
REFERRAL_STATES = (SENT, ACCEPTED, DECLINED, OUTCOME, CLOSED)
# A referral still waiting for (or working on) the partner's answer.
OPEN_REFERRAL_STATES = (SENT, ACCEPTED)
REFERRAL_TRANSITIONS: dict[str, frozenset[str]] = {
    SENT: frozenset({ACCEPTED, DECLINED, OUTCOME, CLOSED}),
    ACCEPTED: frozenset({OUTCOME, CLOSED}),
    DECLINED: frozenset(),
    OUTCOME: frozenset(),
    CLOSED: frozenset(),
}


class PartnerAgency(Base):
    """A partner agency a case may be referred to (seeded from the YAML's `partners:`)."""

    __tablename__ = "partner_agencies"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_uk: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # in_bot | external
    # The team whose members answer in the bot (in_bot partners only).
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    # How to reach an external partner (phone, e-mail, address), shown to the referring worker.
    contact_uk: Mapped[str] = mapped_column(Text, default="")
    contact_en: Mapped[str] = mapped_column(Text, default="")
    oblast: Mapped[str] = mapped_column(String(40), index=True)
    # Hromada and service codes it serves; empty means the whole oblast / any service.
    hromadas: Mapped[list[str]] = mapped_column(JSON, default=list)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Hours until the partner is reminded / the referring coordinator is told; None: defaults.
    remind_after_hours: Mapped[int | None] = mapped_column(Integer)
    escalate_after_hours: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    team: Mapped[Team | None] = relationship()

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_uk

    def contact(self, locale: str) -> str:
        return self.contact_en if locale == "en" else self.contact_uk


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_case_id", "case_id"),
        # The reminder sweep: open referrals by the time their next step is due.
        Index("ix_referrals_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner_agencies.id"))
    referring_team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    referring_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    # The referred part: what is asked (the worker's words) and the case files chosen for it.
    subject: Mapped[str] = mapped_column(Text)
    attachment_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    share_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default=SENT)
    reason: Mapped[str | None] = mapped_column(Text)  # why declined
    outcome: Mapped[str | None] = mapped_column(Text)
    answered_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    escalate_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    partner: Mapped[PartnerAgency] = relationship()
