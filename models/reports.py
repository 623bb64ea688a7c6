"""Counts that only reports need: application-status lookups per hromada.

One row per lookup, with no person in it (no user, phone or number): when it happened, which
hromada it concerned (the application's, else the resident's last one) and whether it found
something. The per-user `lookup_attempts` rows exist for throttling and are not a hromada count.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow


class StatusLookup(Base):
    __tablename__ = "status_lookups"
    __table_args__ = (Index("ix_status_lookups_hromada_at", "hromada_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    hromada_id: Mapped[int | None] = mapped_column(ForeignKey("hromadas.id", ondelete="SET NULL"))
    found: Mapped[bool] = mapped_column(Boolean)
