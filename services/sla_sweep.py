"""The periodic SLA sweep: cases whose next check has come get their state brought up to date
and their escalation steps taken — each step once per clock, audited, through the outbox.

The sweep reads `ix_cases_sla_next_check` (partial index: open, unpaused cases with a next check)
as a range scan `sla_next_check_at <= now`, so a run when nothing is due reads no row. On
PostgreSQL claimed rows are locked with SKIP LOCKED, and the scheduler runs the job at one
instance at a time anyway; the outbox dedupe key (case, clock, step, recipient) makes a repeated
step a no-op.

Who hears what (in their own language: the deliverer renders each row for its recipient):
- due soon: the assignee (else the team's on-duty members, else all of them) — not urgent;
- breached: the team's coordinators — urgent for a priority case, else it waits for morning;
- long breach, delegated service: the coordinators of the hromada that delegated it;
- long breach, then: the oblast fallback team's coordinators.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseEvent, Hromada, Team, TeamMember, User, Worker
from models.people import ROLE_COORDINATOR
from services.clock import Clock
from services.outbox import enqueue
from services.sla import (
    FIRST_RESPONSE,
    STEP_BREACHED,
    STEP_DUE_SOON,
    STEP_OBLAST,
    STEP_PARTNER,
    SlaService,
    Step,
)

SWEEP_BATCH = 500
STEP_NAMES = {
    STEP_DUE_SOON: "due_soon",
    STEP_BREACHED: "breached",
    STEP_PARTNER: "partner",
    STEP_OBLAST: "oblast",
}
STEP_EVENTS = {
    STEP_DUE_SOON: "sla_due_soon",
    STEP_BREACHED: "sla_breached",
    STEP_PARTNER: "sla_escalated",
    STEP_OBLAST: "sla_escalated",
}


def due_cases_statement(now: datetime, limit: int, *, lock: bool) -> Select[tuple[Case]]:
    query = (
        select(Case)
        .where(Case.sla_next_check_at.is_not(None), Case.sla_next_check_at <= now)
        .order_by(Case.sla_next_check_at)
        .limit(limit)
    )
    if lock:
        query = query.with_for_update(skip_locked=True)
    return query


async def sweep_sla(
    session: AsyncSession, clock: Clock, zone: tzinfo, *, batch: int = SWEEP_BATCH
) -> tuple[int, int]:
    """One sweep: (cases looked at, outbox rows queued). Runs in the caller's transaction."""
    now = clock.now()
    sla = SlaService(session, clock, zone)
    postgres = session.get_bind().dialect.name == "postgresql"
    cases = (await session.scalars(due_cases_statement(now, batch, lock=postgres))).all()
    queued = 0
    # Who hears a step depends on the team, hromada and assignee only: asked once per sweep.
    recipients: dict[tuple[int, int, int, int | None], Sequence[User]] = {}
    for case in cases:
        for step in await sla.refresh(case):
            key = (
                step.step,
                case.team_id,
                case.hromada_id,
                case.assignee_worker_id if step.step == STEP_DUE_SOON else None,
            )
            if key not in recipients:
                recipients[key] = await _recipients(session, case, step.step)
            queued += await _take_step(session, case, step, now, zone, recipients[key])
    await session.flush()
    return len(cases), queued


async def _take_step(
    session: AsyncSession, case: Case, step: Step, now: datetime, zone: tzinfo, users: Sequence[User]
) -> int:
    due = case.first_response_due_at if step.clock == FIRST_RESPONSE else case.resolution_due_at
    payload = {
        "case_id": case.id,
        "number": case.number,
        "clock": step.clock,
        "step": STEP_NAMES[step.step],
        # Local wall-clock time, as every notice payload carries times.
        "due": due.astimezone(zone).isoformat(timespec="minutes") if due else None,
    }
    kind = STEP_EVENTS[step.step]
    queued = 0
    for user in users:
        row = await enqueue(
            session,
            user=user,
            kind=kind,
            payload=payload,
            due_at=now,
            urgent=step.step >= STEP_BREACHED and case.priority > 0,
            dedupe_key=f"sla:{case.id}:{step.clock}:{step.step}:{user.id}",
            case_id=case.id,
        )
        queued += row is not None
    session.add(
        CaseEvent(
            case_id=case.id,
            at=now,
            actor_user_id=None,
            kind=STEP_EVENTS[step.step],
            data={"clock": step.clock, "step": STEP_NAMES[step.step], "recipients": len(users)},
        )
    )
    return queued


async def _recipients(session: AsyncSession, case: Case, step: int) -> Sequence[User]:
    active = (
        select(User)
        .join(Worker, Worker.user_id == User.id)
        .join(TeamMember, TeamMember.worker_id == Worker.id)
        .where(Worker.active.is_(True))
        .order_by(User.id)
        .distinct()
    )
    if step == STEP_DUE_SOON:
        if case.assignee_worker_id is not None:
            assignee = (
                await session.scalars(
                    select(User)
                    .join(Worker, Worker.user_id == User.id)
                    .where(Worker.id == case.assignee_worker_id, Worker.active.is_(True))
                )
            ).all()
            if assignee:
                return assignee
        team = active.where(TeamMember.team_id == case.team_id)
        on_duty = (await session.scalars(team.where(TeamMember.on_duty.is_(True)))).all()
        return on_duty or (await session.scalars(team)).all()
    coordinators = active.where(TeamMember.role == ROLE_COORDINATOR)
    if step == STEP_BREACHED:
        return (await session.scalars(coordinators.where(TeamMember.team_id == case.team_id))).all()
    if step == STEP_PARTNER:
        partner_teams = select(Team.id).where(Team.hromada_id == case.hromada_id, Team.id != case.team_id)
        return (await session.scalars(coordinators.where(TeamMember.team_id.in_(partner_teams)))).all()
    oblast = select(Hromada.oblast).where(Hromada.id == case.hromada_id).scalar_subquery()
    fallback = select(Team.id).where(Team.is_oblast_fallback.is_(True), Team.oblast == oblast)
    return (await session.scalars(coordinators.where(TeamMember.team_id.in_(fallback)))).all()
