"""Residents' ratings of their resolved cases: one per case, 1–5, with an optional comment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow


class CaseRating(Base):
    __tablename__ = "case_ratings"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # One rating per case: the unique key is what makes a second press a refusal.
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    rating: Mapped[int] = mapped_column(Integer)
    # The resident's own words: personal data, erased with the person, never in a report.
    comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
