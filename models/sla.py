"""SLA reference data: the working calendar (default and per team) and the policies per service.

Both are loaded from the reference YAML (`calendar:`, teams' `hours:`, `sla:`); services/calendar.py
turns a `WorkCalendar` row into a `WorkingCalendar`, services/sla.py applies the policies. A case's
own SLA state (due times, pause, escalation step) lives on the case row (models/cases.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK


class WorkCalendar(Base):
    """Office hours: the row `default` (with public holidays on/off and dated exceptions) and
    one row per team that keeps its own hours (`code` = the team's code)."""

    __tablename__ = "work_calendars"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), unique=True)
    # {"mon": ["08:00-12:00", "13:00-17:00"], ...}: local wall-clock periods per weekday.
    week: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    public_holidays: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"2026-12-31": ["08:00-13:00"], "2026-08-24": []}: a date's own periods, [] = closed.
    exceptions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SlaPolicy(Base):
    """Working minutes to first response and to resolution for a service; the row with the
    highest `min_priority` not above the case's priority applies."""

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("service_id", "min_priority"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    min_priority: Mapped[int] = mapped_column(Integer, default=0)
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
