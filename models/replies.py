"""Saved replies: a team's short message templates that its workers fill in and send to a
resident ("your documents are ready, bring your passport to {office_address}").

A template is one `code` of one team, kept in one or both languages (one row per locale); the
resident gets the version in their language, else the other one. Coordinators of the team add,
change and delete them (deleting only switches `active` off: the audit log keeps naming them).
Templates hold no personal data: placeholders are filled when a worker picks one for a case.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow


class SavedReply(Base):
    __tablename__ = "saved_replies"
    __table_args__ = (
        UniqueConstraint("team_id", "code", "locale"),
        Index("ix_saved_replies_team_active", "team_id", "active", "position"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # The same code in both locales is one template in two languages.
    code: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(60))
    text: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_by_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
