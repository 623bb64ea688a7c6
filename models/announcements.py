"""Announcements a coordinator sends to the residents of chosen settlements.

Each recipient gets one outbox row (`outbox.announcement_id`), so the delivery report is a count
of those rows by state, and rate limits, quiet hours and 403 handling are the deliverer's own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow

QUEUED = "queued"
# Stopped by its coordinator: what had not gone out yet was cancelled.
WITHDRAWN = "withdrawn"

# Who an announcement is for (`audience` column).
AUDIENCE_RESIDENTS = "residents"
AUDIENCE_SUBSCRIBERS = "subscribers"
AUDIENCES = (AUDIENCE_RESIDENTS, AUDIENCE_SUBSCRIBERS)


class Announcement(Base):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    author_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, default="")
    photo_file_id: Mapped[str | None] = mapped_column(String(255))
    audience: Mapped[str] = mapped_column(String(16))
    # The chosen settlements' ids: {"settlements": [..]}.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    send_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
