"""Workers, roles, team membership and invite links."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEntry, Invite, Team, TeamMember, User, Worker, utcnow
from models.people import ROLE_COORDINATOR, ROLES

INVITE_PREFIX = "inv_"


class InviteError(Exception):
    """An invite link cannot be used; `code` is a message-key suffix (expired, used, unknown)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WorkerService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def worker_for(self, user: User) -> Worker | None:
        return await self.session.scalar(
            select(Worker).where(Worker.user_id == user.id, Worker.active.is_(True))
        )

    async def is_active_worker(self, user: User) -> bool:
        return await self.worker_for(user) is not None

    async def memberships(self, worker: Worker) -> list[TeamMember]:
        rows = await self.session.scalars(select(TeamMember).where(TeamMember.worker_id == worker.id))
        return list(rows.all())

    async def ensure_admin(self, user: User, display_name: str) -> Worker:
        """The first admin comes from settings (ADMIN_TELEGRAM_IDS), not from an invite."""
        worker = await self.session.scalar(select(Worker).where(Worker.user_id == user.id))
        if worker is None:
            worker = Worker(user_id=user.id, display_name=display_name[:120] or "admin", is_admin=True)
            self.session.add(worker)
            self.session.add(
                AuditEntry(actor_user_id=user.id, action="admin_bootstrap", object_type="worker")
            )
            await self.session.flush()
        elif not worker.is_admin or not worker.active:
            worker.is_admin = True
            worker.active = True
        return worker

    async def create_invite(
        self, *, creator: Worker, team: Team, role: str, ttl: timedelta, now: datetime | None = None
    ) -> str:
        """Returns the raw token once; only its hash is stored."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if not await self.can_manage_team(creator, team.id):
            raise PermissionError("not a coordinator of this team")
        token = secrets.token_urlsafe(18)
        now = now or utcnow()
        self.session.add(
            Invite(
                token_hash=hash_token(token),
                team_id=team.id,
                role=role,
                created_by_worker_id=creator.id,
                created_at=now,
                expires_at=now + ttl,
            )
        )
        self.session.add(
            AuditEntry(
                actor_user_id=creator.user_id,
                action="invite_created",
                object_type="team",
                object_id=str(team.id),
                data={"role": role},
            )
        )
        return INVITE_PREFIX + token

    async def can_manage_team(self, worker: Worker, team_id: int) -> bool:
        if worker.is_admin:
            return True
        member = await self.session.scalar(
            select(TeamMember).where(
                TeamMember.worker_id == worker.id,
                TeamMember.team_id == team_id,
                TeamMember.role == ROLE_COORDINATOR,
            )
        )
        return member is not None

    async def redeem_invite(
        self, *, payload: str, user: User, display_name: str, now: datetime | None = None
    ) -> TeamMember:
        """Single use, checked under a row lock so two taps of one link make one member."""
        if not payload.startswith(INVITE_PREFIX):
            raise InviteError("unknown")
        now = now or utcnow()
        invite = await self.session.scalar(
            select(Invite)
            .where(Invite.token_hash == hash_token(payload.removeprefix(INVITE_PREFIX)))
            .with_for_update()
        )
        if invite is None or invite.revoked_at is not None:
            raise InviteError("unknown")
        if invite.used_at is not None:
            raise InviteError("used")
        if invite.expires_at <= now:
            raise InviteError("expired")
        worker = await self.session.scalar(select(Worker).where(Worker.user_id == user.id))
        if worker is None:
            worker = Worker(user_id=user.id, display_name=display_name[:120] or "—")
            self.session.add(worker)
            await self.session.flush()
        worker.active = True
        member = await self.session.scalar(
            select(TeamMember).where(TeamMember.worker_id == worker.id, TeamMember.team_id == invite.team_id)
        )
        if member is None:
            member = TeamMember(team_id=invite.team_id, worker_id=worker.id, role=invite.role)
            self.session.add(member)
        else:
            member.role = invite.role
        invite.used_at = now
        invite.used_by_user_id = user.id
        self.session.add(
            AuditEntry(
                actor_user_id=user.id,
                action="invite_redeemed",
                object_type="team",
                object_id=str(invite.team_id),
                data={"role": invite.role, "invite_id": invite.id},
            )
        )
        await self.session.flush()
        return member
