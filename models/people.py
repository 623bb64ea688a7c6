"""People: Telegram users, resident and worker profiles, team membership, invites."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, BigIntPK, UtcDateTime, utcnow

if TYPE_CHECKING:
    from models.reference import Team


class User(Base):
    """A Telegram account that has talked to the bot. Holds what every audience needs."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    language: Mapped[str | None] = mapped_column(String(8))
    # False after Telegram said 403 (blocked the bot); shown to workers on the case.
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    resident: Mapped[Resident | None] = relationship(back_populates="user", uselist=False)
    worker: Mapped[Worker | None] = relationship(back_populates="user", uselist=False)


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    consent_version: Mapped[str | None] = mapped_column(String(16))
    # Verified only when shared through Telegram's own contact button by its owner.
    phone: Mapped[str | None] = mapped_column(String(16), index=True)
    phone_verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_hromada_id: Mapped[int | None] = mapped_column(ForeignKey("hromadas.id", ondelete="SET NULL"))
    # Indexed: an announcement to a settlement's residents selects by it.
    last_settlement_id: Mapped[int | None] = mapped_column(
        ForeignKey("settlements.id", ondelete="SET NULL"), index=True
    )
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[User] = relationship(back_populates="resident")


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # Shown to colleagues only; residents see the team's name, never the worker's account.
    display_name: Mapped[str] = mapped_column(String(120))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="worker")
    memberships: Mapped[list[TeamMember]] = relationship(back_populates="worker")


ROLE_WORKER = "worker"
ROLE_COORDINATOR = "coordinator"
# A member of an oblast fallback team (the oblast department) who reports on the whole oblast.
ROLE_OBLAST = "oblast"
ROLES = (ROLE_WORKER, ROLE_COORDINATOR, ROLE_OBLAST)


def roles_for_team(is_oblast_fallback: bool) -> tuple[str, ...]:
    """The roles an invite to a team may grant: the oblast role only in an oblast fallback team."""
    return ROLES if is_oblast_fallback else (ROLE_WORKER, ROLE_COORDINATOR)


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "worker_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16), default=ROLE_WORKER)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    worker: Mapped[Worker] = relationship(back_populates="memberships")
    team: Mapped[Team] = relationship()


class Invite(Base):
    """Single-use, expiring invite deep link. Only the token's hash is stored."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_by_worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    used_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
