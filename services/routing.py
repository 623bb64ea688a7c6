"""Routing: which team serves a resident's request, and who in that team takes it.

Rule order (all rules come from the database, so coordinators' edits apply at once):
1. `own` — a team of the resident's hromada for that service (settlement-specific first);
2. `delegation` — inter-municipal cooperation: another hromada's team serves this one
   (settlement-specific first);
3. `fallback` — the oblast department of the hromada's oblast.
Within a kind, a rule naming the settlement beats a hromada-wide one, and a rule naming the
service beats a rule for every service (service_id NULL). Inactive rules are ignored.

The decision is stored on the case as `routing_kind` + `routing_detail` (codes, ids and the
names in both languages), so it renders per language without the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, Hromada, RoutingRule, Service, Settlement, Team, TeamMember, Worker
from models.cases import OPEN_STATUSES

OWN = "own"
DELEGATION = "delegation"
FALLBACK = "fallback"
KIND_ORDER = {OWN: 0, DELEGATION: 1, FALLBACK: 2}


class RoutingError(Exception):
    code = "routing"


class HromadaNotAccepting(RoutingError):
    """The hromada is occupied or on the front line: the resident should choose the hromada
    where they live now (IDPs are served by the host hromada)."""

    code = "hromada_not_accepting"


class NoRoute(RoutingError):
    """No active rule at all (not even an oblast fallback): a reference-data gap."""

    code = "no_route"


class UnknownPlace(RoutingError):
    code = "unknown_place"


@dataclass
class RoutingDecision:
    team: Team
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


def _names(row: Any) -> dict[str, str]:
    return {"uk": row.name_uk, "en": row.name_en}


class RoutingService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def route(self, hromada_id: int, settlement_id: int | None, service_id: int) -> RoutingDecision:
        hromada = await self.session.get(Hromada, hromada_id)
        service = await self.session.get(Service, service_id)
        if hromada is None or service is None:
            raise UnknownPlace()
        settlement = None
        if settlement_id is not None:
            settlement = await self.session.get(Settlement, settlement_id)
            if settlement is None or settlement.hromada_id != hromada.id:
                raise UnknownPlace()
        if not hromada.accepts_requests:
            raise HromadaNotAccepting()

        place = or_(
            and_(RoutingRule.kind.in_((OWN, DELEGATION)), RoutingRule.hromada_id == hromada.id),
            and_(RoutingRule.kind == FALLBACK, RoutingRule.oblast == hromada.oblast),
        )
        settlement_match = (
            or_(RoutingRule.settlement_id.is_(None), RoutingRule.settlement_id == settlement_id)
            if settlement_id is not None
            else RoutingRule.settlement_id.is_(None)
        )
        rules = (
            await self.session.scalars(
                select(RoutingRule).where(
                    RoutingRule.active.is_(True),
                    place,
                    or_(RoutingRule.service_id.is_(None), RoutingRule.service_id == service.id),
                    settlement_match,
                )
            )
        ).all()
        if not rules:
            raise NoRoute()
        rule = min(
            rules,
            key=lambda r: (
                KIND_ORDER.get(r.kind, 9),
                r.settlement_id is None,
                r.service_id is None,
                r.id,
            ),
        )
        team = await self.session.get(Team, rule.team_id)
        assert team is not None
        team_hromada = await self.session.get(Hromada, team.hromada_id) if team.hromada_id else None
        detail: dict[str, Any] = {
            "kind": rule.kind,
            "rule_id": rule.id,
            "settlement_specific": rule.settlement_id is not None,
            "hromada": {"id": hromada.id, "code": hromada.code, "name": _names(hromada)},
            "service": {"id": service.id, "code": service.code, "name": _names(service)},
            "team": {"id": team.id, "code": team.code, "name": _names(team)},
            "oblast": hromada.oblast,
        }
        if settlement is not None:
            detail["settlement"] = {"id": settlement.id, "code": settlement.code, "name": _names(settlement)}
        if team_hromada is not None:
            detail["team_hromada"] = {
                "id": team_hromada.id,
                "code": team_hromada.code,
                "name": _names(team_hromada),
            }
        return RoutingDecision(team=team, kind=rule.kind, detail=detail)

    async def pick_assignee(self, team_id: int) -> Worker | None:
        """The least-loaded on-duty active member (open cases assigned to them); ties by id."""
        # Count only this team's members' open cases (ix_cases_assignee_queue), not every
        # open case in the database.
        members = select(TeamMember.worker_id).where(
            TeamMember.team_id == team_id, TeamMember.on_duty.is_(True)
        )
        load = (
            select(Case.assignee_worker_id.label("worker_id"), func.count(Case.id).label("n"))
            .where(Case.assignee_worker_id.in_(members), Case.status.in_(OPEN_STATUSES))
            .group_by(Case.assignee_worker_id)
            .subquery()
        )
        worker: Worker | None = await self.session.scalar(
            select(Worker)
            .join(TeamMember, TeamMember.worker_id == Worker.id)
            .outerjoin(load, load.c.worker_id == Worker.id)
            .where(TeamMember.team_id == team_id, TeamMember.on_duty.is_(True), Worker.active.is_(True))
            .order_by(func.coalesce(load.c.n, 0), Worker.id)
            .limit(1)
        )
        return worker

    async def on_duty_members(self, team_id: int) -> list[Worker]:
        rows = await self.session.scalars(
            select(Worker)
            .join(TeamMember, TeamMember.worker_id == Worker.id)
            .where(TeamMember.team_id == team_id, TeamMember.on_duty.is_(True), Worker.active.is_(True))
            .order_by(Worker.id)
        )
        return list(rows.all())
