"""Home visits and the mobile social office's trips."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_worker_start", "worker_id", "starts_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlements.id"))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    who_comes: Mapped[str] = mapped_column(String(200), default="")
    prepare: Mapped[str] = mapped_column(Text, default="")
    # planned | confirmed | reschedule_requested | cancelled | done
    status: Mapped[str] = mapped_column(String(24), default="planned")
    resident_note: Mapped[str | None] = mapped_column(Text)
    proposed_starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class MobileOfficeSchedule(Base):
    """A recurring trip of the mobile social office to one settlement (e.g. every Tuesday)."""

    __tablename__ = "mobile_office_schedules"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlements.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    every_weeks: Mapped[int] = mapped_column(Integer, default=1)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=20)
    place: Mapped[str] = mapped_column(String(200), default="")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class MobileOfficeSubscription(Base):
    __tablename__ = "mobile_office_subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "settlement_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlements.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class MobileOfficeBooking(Base):
    __tablename__ = "mobile_office_bookings"
    __table_args__ = (UniqueConstraint("schedule_id", "trip_date", "slot_start"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("mobile_office_schedules.id", ondelete="CASCADE"))
    trip_date: Mapped[date] = mapped_column(Date)
    slot_start: Mapped[time] = mapped_column(Time)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="booked")  # booked | cancelled
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
