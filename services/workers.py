"""Workers, roles, team membership and invite links."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import (
    AuditEntry,
    Hromada,
    Invite,
    RoutingRule,
    Service,
    Team,
    TeamMember,
    User,
    Worker,
    utcnow,
)
from models.people import ROLE_COORDINATOR, roles_for_team
from services.errors import DomainError, StaleAction
from services.oversight import oversees_hromada
from services.text import clip

INVITE_PREFIX = "inv_"
# Telegram deep-link payloads are at most 64 characters of [A-Za-z0-9_-].
_PAYLOAD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_INVITE_TTL = timedelta(days=30)
DISPLAY_NAME_MAX = 120


class InviteError(DomainError):
    """An invite link cannot be used (`worker.invite.<code>`: expired, used, unknown)."""

    prefix = "worker.invite"


class NotWorker(DomainError):
    """The person is not an active worker (`worker.not_worker`)."""

    prefix = "worker"
    code = "not_worker"


class NotCoordinator(DomainError):
    """The worker coordinates no hromada (`coord.not_coordinator`)."""

    prefix = "coord"
    code = "not_coordinator"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WorkerService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def worker_for(self, user: User) -> Worker | None:
        worker: Worker | None = await self.session.scalar(
            select(Worker).where(Worker.user_id == user.id, Worker.active.is_(True))
        )
        return worker

    async def get(self, worker_id: int) -> Worker | None:
        return await self.session.get(Worker, worker_id)

    async def team(self, team_id: int) -> Team | None:
        return await self.session.get(Team, team_id)

    async def user_of(self, worker: Worker) -> User | None:
        return await self.session.get(User, worker.user_id)

    async def is_active_worker(self, user: User) -> bool:
        return await self.worker_for(user) is not None

    async def memberships(self, worker: Worker) -> list[TeamMember]:
        rows = await self.session.scalars(select(TeamMember).where(TeamMember.worker_id == worker.id))
        return list(rows.all())

    async def ensure_admin(self, user: User, display_name: str) -> Worker:
        """The first admin comes from settings (ADMIN_TELEGRAM_IDS), not from an invite."""
        worker = await self.session.scalar(select(Worker).where(Worker.user_id == user.id))
        if worker is None:
            worker = Worker(
                user_id=user.id, display_name=clip(display_name, DISPLAY_NAME_MAX) or "admin", is_admin=True
            )
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
        if role not in roles_for_team(team.is_oblast_fallback):
            raise ValueError(f"role {role!r} cannot be granted in this team")
        if not timedelta(0) < ttl <= MAX_INVITE_TTL:
            raise ValueError("invite lifetime must be between 0 and 30 days")
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
        if not worker.active:
            return False
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
        token = payload.removeprefix(INVITE_PREFIX)
        if (
            not payload.startswith(INVITE_PREFIX)
            or not 16 <= len(token) <= 60
            or not set(token) <= _PAYLOAD_CHARS
        ):
            raise InviteError("unknown")
        now = now or utcnow()
        invite = await self.session.scalar(
            select(Invite)
            .where(Invite.token_hash == hash_token(token))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if invite is None or invite.revoked_at is not None:
            raise InviteError("unknown")
        if invite.used_at is not None:
            if invite.used_by_user_id == user.id:
                # The same person tapped the link twice: they are in already, not refused.
                member = await self._membership_of(user, invite.team_id)
                if member is not None:
                    return member
            raise InviteError("used")
        if invite.expires_at <= now:
            raise InviteError("expired")
        worker = await self.session.scalar(select(Worker).where(Worker.user_id == user.id))
        if worker is None:
            worker = Worker(user_id=user.id, display_name=clip(display_name, DISPLAY_NAME_MAX) or "—")
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

    async def _membership_of(self, user: User, team_id: int) -> TeamMember | None:
        member: TeamMember | None = await self.session.scalar(
            select(TeamMember)
            .join(Worker, Worker.id == TeamMember.worker_id)
            .where(Worker.user_id == user.id, Worker.active.is_(True), TeamMember.team_id == team_id)
        )
        return member

    async def manageable_teams(self, worker: Worker) -> list[Team]:
        """Teams this worker may invite to: all for an admin, else the ones they coordinate."""
        if not worker.active:
            return []
        query = select(Team).order_by(Team.name_uk)
        if not worker.is_admin:
            query = query.join(TeamMember, TeamMember.team_id == Team.id).where(
                TeamMember.worker_id == worker.id, TeamMember.role == ROLE_COORDINATOR
            )
        return list((await self.session.scalars(query)).all())

    async def is_coordinator(self, worker: Worker) -> bool:
        return bool(await self.manageable_teams(worker))


class RoutingAdminError(StaleAction):
    """A refused routing change: the rule, hromada, service or team is not (any more) this
    coordinator's to change — answered as a stale button."""


class RoutingAdmin:
    """Coordinators change their hromadas' routing while the bot runs (routing is read from the
    database per request, so no restart). Every change is audited."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hromadas(self, worker: Worker) -> list[Hromada]:
        if not worker.active:
            return []
        query = select(Hromada).order_by(Hromada.name_uk)
        if not worker.is_admin:
            query = (
                query.join(Team, Team.hromada_id == Hromada.id)
                .join(TeamMember, TeamMember.team_id == Team.id)
                .where(
                    TeamMember.worker_id == worker.id, TeamMember.role == ROLE_COORDINATOR, oversees_hromada()
                )
                .distinct()
            )
        return list((await self.session.scalars(query)).all())

    async def coordinated(self, worker: Worker) -> list[Hromada]:
        """The hromadas whose routing this worker changes; NotCoordinator when none."""
        hromadas = await self.hromadas(worker)
        if not hromadas:
            raise NotCoordinator()
        return hromadas

    async def delegation_services(self, worker: Worker, hromada_id: int) -> list[Service]:
        """The services a delegation of this (checked) hromada may be for: all of them."""
        await self.delegation_teams(worker, hromada_id)
        rows = await self.session.scalars(select(Service).order_by(Service.position, Service.id))
        return list(rows.all())

    async def _hromada_ids(self, worker: Worker) -> set[int]:
        return {h.id for h in await self.hromadas(worker)}

    async def rules(self, worker: Worker) -> list[RoutingRule]:
        ids = await self._hromada_ids(worker)
        if not ids:
            return []
        rows = await self.session.scalars(
            select(RoutingRule)
            .options(
                selectinload(RoutingRule.team),
                selectinload(RoutingRule.service),
                selectinload(RoutingRule.hromada),
                selectinload(RoutingRule.settlement),
            )
            .where(RoutingRule.hromada_id.in_(ids))
            .order_by(RoutingRule.hromada_id, RoutingRule.kind.desc(), RoutingRule.id)
        )
        return list(rows.all())

    async def toggle(self, worker: Worker, rule_id: int) -> RoutingRule:
        rule = await self.session.get(RoutingRule, rule_id, with_for_update=True)
        if rule is None or rule.hromada_id not in await self._hromada_ids(worker):
            raise RoutingAdminError()
        rule.active = not rule.active
        self._audit(worker, "routing_rule_toggled", rule, {"active": rule.active})
        await self.session.flush()
        return rule

    async def delegation_teams(self, worker: Worker, hromada_id: int) -> list[Team]:
        """Teams of other hromadas of the same oblast (inter-municipal cooperation)."""
        hromada = await self.session.get(Hromada, hromada_id)
        if hromada is None or hromada.id not in await self._hromada_ids(worker):
            raise RoutingAdminError()
        rows = await self.session.scalars(
            select(Team)
            .where(
                Team.oblast == hromada.oblast,
                Team.is_oblast_fallback.is_(False),
                Team.hromada_id != hromada.id,
            )
            .order_by(Team.name_uk)
        )
        return list(rows.all())

    async def add_delegation(
        self, worker: Worker, hromada_id: int, service_id: int, team_id: int
    ) -> tuple[RoutingRule, bool]:
        """A delegation rule (hromada, service) → another hromada's team; (rule, created)."""
        if team_id not in {t.id for t in await self.delegation_teams(worker, hromada_id)}:
            raise RoutingAdminError()
        hromada = await self.session.get(Hromada, hromada_id)
        if await self.session.get(Service, service_id) is None or hromada is None:
            raise RoutingAdminError()
        rule = await self.session.scalar(
            select(RoutingRule).where(
                RoutingRule.kind == "delegation",
                RoutingRule.hromada_id == hromada_id,
                RoutingRule.service_id == service_id,
                RoutingRule.settlement_id.is_(None),
                RoutingRule.team_id == team_id,
            )
        )
        created = rule is None
        if rule is None:
            rule = RoutingRule(
                kind="delegation",
                oblast=hromada.oblast,
                hromada_id=hromada_id,
                service_id=service_id,
                settlement_id=None,
                team_id=team_id,
                active=True,
            )
            self.session.add(rule)
            await self.session.flush()
        else:
            rule.active = True
        self._audit(worker, "routing_delegation_added", rule, {"created": created})
        await self.session.flush()
        return rule, created

    async def rule_names(self, rule: RoutingRule) -> tuple[Service | None, Team | None]:
        """The service (None: all services) and the team of a rule, for showing it."""
        service = await self.session.get(Service, rule.service_id) if rule.service_id else None
        return service, await self.session.get(Team, rule.team_id)

    def _audit(self, worker: Worker, action: str, rule: RoutingRule, extra: dict[str, object]) -> None:
        self.session.add(
            AuditEntry(
                actor_user_id=worker.user_id,
                action=action,
                object_type="routing_rule",
                object_id=str(rule.id),
                data={
                    "hromada_id": rule.hromada_id,
                    "service_id": rule.service_id,
                    "team_id": rule.team_id,
                    **extra,
                },
            )
        )
