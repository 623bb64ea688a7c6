"""Applications administered in external registries («Соціальна громада» etc.), imported by table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow


class ApplicationStatus(Base):
    """Data-driven status vocabulary: registry codes/labels map to these, with plain texts."""

    __tablename__ = "application_statuses"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label_uk: Mapped[str] = mapped_column(String(200))
    label_en: Mapped[str] = mapped_column(String(200))
    next_step_uk: Mapped[str] = mapped_column(Text, default="")
    next_step_en: Mapped[str] = mapped_column(Text, default="")
    final: Mapped[bool] = mapped_column(Boolean, default=False)


class ApplicationStatusAlias(Base):
    """A registry's own code or label (any case) that means one of our statuses."""

    __tablename__ = "application_status_aliases"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    alias: Mapped[str] = mapped_column(String(200), unique=True)  # stored casefolded
    status_code: Mapped[str] = mapped_column(ForeignKey("application_statuses.code", ondelete="CASCADE"))


class Application(Base):
    __tablename__ = "applications"
    __table_args__ = (Index("ix_applications_phone", "phone"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # idp_registration, living_allowance, subsidy, ...
    phone: Mapped[str] = mapped_column(String(16))  # +380XXXXXXXXX; the key for self-check
    hromada_id: Mapped[int | None] = mapped_column(ForeignKey("hromadas.id", ondelete="SET NULL"))
    status_code: Mapped[str] = mapped_column(ForeignKey("application_statuses.code"))
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ApplicationStatusChange(Base):
    __tablename__ = "application_status_changes"
    __table_args__ = (Index("ix_app_changes_app_at", "application_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(40))
    to_status: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))  # import | worker
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    import_batch: Mapped[str | None] = mapped_column(String(64))


class ApplicationSubscription(Base):
    __tablename__ = "application_subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "application_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LookupAttempt(Base):
    """Number lookups, for throttling and for coordinators' view of guessing (no personal data)."""

    __tablename__ = "lookup_attempts"
    __table_args__ = (Index("ix_lookup_attempts_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    hit: Mapped[bool] = mapped_column(Boolean)
