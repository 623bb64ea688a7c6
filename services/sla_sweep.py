"""The periodic SLA sweep: cases whose next check has come get their state brought up to date
and their escalation steps taken — each step once per clock, audited, through the outbox.

The sweep reads `ix_cases_sla_next_check` (partial index: open, unpaused cases with a next check)
as a range scan `sla_next_check_at <= now`, so a run when nothing is due reads no row. On
PostgreSQL claimed rows are locked with SKIP LOCKED, and the scheduler runs the job at one
instance at a time anyway; the outbox dedupe key (case, clock, step, recipient) makes a repeated
step a no-op.

A busy run costs a fixed number of statements, not a few per case: the due cases (at most
SWEEP_BATCH; the next minute takes the rest), the calendars, the people who may hear of them,
then the state changes, the notices and the audit events written in bulk.

Who hears what (in their own language: the deliverer renders each row for its recipient):
- due soon: the assignee (else the team's on-duty members, else all of them) — not urgent;
- breached: the team's coordinators — urgent for a priority case, else it waits for morning;
- long breach, delegated service: the coordinators of the hromada that delegated it;
- long breach, then: the oblast fallback team's coordinators.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Select, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from models import Case, CaseEvent, Hromada, Team, TeamMember, User, Worker
from models.people import ROLE_COORDINATOR, ROLE_OBLAST
from services.calendar import team_calendars
from services.clock import Clock
from services.outbox import enqueue_many
from services.oversight import oversees_hromada
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

# What bringing a case up to date may change (services/sla.py `refresh`).
SWEPT_COLUMNS = ("sla_state", "sla_breached", "sla_escalation_step", "sla_next_check_at")
# (user id, telegram chat id) of a recipient.
Recipient = tuple[int, int]


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
    postgres = session.get_bind().dialect.name == "postgresql"
    cases = (await session.scalars(due_cases_statement(now, batch, lock=postgres))).all()
    if not cases:
        return 0, 0
    sla = SlaService(session, clock, zone)
    sla.preload(await team_calendars(session, zone), {case.team_id for case in cases})
    # The calendars are in memory: bringing each case up to date reads nothing.
    with session.no_autoflush:
        taken = [(case, step) for case in cases for step in await sla.refresh(case)]
    for case in cases:
        # Every case writes the same columns, so the flush sends one UPDATE for all of them
        # (the unit of work batches only consecutive rows with the same changed columns).
        for column in SWEPT_COLUMNS:
            flag_modified(case, column)
    if not taken:
        await session.flush()
        return len(cases), 0
    people = await Recipients.load(session, taken)
    messages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for case, step in taken:
        users = people.of(case, step.step)
        messages.extend(_messages(case, step, now, zone, users))
        events.append(
            {
                "case_id": case.id,
                "at": now,
                "actor_user_id": None,
                "kind": STEP_EVENTS[step.step],
                "data": {"clock": step.clock, "step": STEP_NAMES[step.step], "recipients": len(users)},
            }
        )
    await session.flush()  # the cases' new state: one executemany per set of changed columns
    queued = await enqueue_many(session, messages)
    await session.execute(insert(CaseEvent), events)
    return len(cases), queued


def _messages(
    case: Case, step: Step, now: datetime, zone: tzinfo, users: list[Recipient]
) -> Iterable[dict[str, Any]]:
    due = case.first_response_due_at if step.clock == FIRST_RESPONSE else case.resolution_due_at
    payload = {
        "case_id": case.id,
        "number": case.number,
        "clock": step.clock,
        "step": STEP_NAMES[step.step],
        # Local wall-clock time, as every notice payload carries times.
        "due": due.astimezone(zone).isoformat(timespec="minutes") if due else None,
    }
    for user_id, chat_id in users:
        yield {
            "user_id": user_id,
            "chat_id": chat_id,
            "kind": STEP_EVENTS[step.step],
            "payload": payload,
            "due_at": now,
            "urgent": step.step >= STEP_BREACHED and case.priority > 0,
            "dedupe_key": f"sla:{case.id}:{step.clock}:{step.step}:{user_id}",
            "case_id": case.id,
        }


@dataclass
class Recipients:
    """Everyone a batch of steps may reach, read in a few statements: the active members of
    the cases' teams, of the partner teams of their hromadas and of the oblast fallback teams,
    and the assignees."""

    # team id → (user id, chat id, role, on duty) of its active members
    members: dict[int, list[tuple[int, int, str, bool]]] = field(default_factory=dict)
    assignees: dict[int, Recipient] = field(default_factory=dict)
    teams_of_hromada: dict[int, list[int]] = field(default_factory=dict)
    fallback_of_oblast: dict[str, list[int]] = field(default_factory=dict)
    oblast_of_hromada: dict[int, str] = field(default_factory=dict)

    @classmethod
    async def load(cls, session: AsyncSession, taken: list[tuple[Case, Step]]) -> Recipients:
        people = cls()
        assignee_ids = {
            c.assignee_worker_id
            for c, s in taken
            if s.step == STEP_DUE_SOON and c.assignee_worker_id is not None
        }
        if assignee_ids:
            rows = await session.execute(
                select(Worker.id, User.id, User.telegram_id)
                .join(User, User.id == Worker.user_id)
                .where(Worker.id.in_(assignee_ids), Worker.active.is_(True))
            )
            people.assignees = {worker_id: (user_id, chat) for worker_id, user_id, chat in rows.all()}
        team_ids = {c.team_id for c, _ in taken}
        partner_hromadas = {c.hromada_id for c, s in taken if s.step == STEP_PARTNER}
        oblast_hromadas = {c.hromada_id for c, s in taken if s.step == STEP_OBLAST}
        if oblast_hromadas:
            rows = await session.execute(
                select(Hromada.id, Hromada.oblast).where(Hromada.id.in_(oblast_hromadas))
            )
            people.oblast_of_hromada = {hromada_id: oblast for hromada_id, oblast in rows.all()}
        if partner_hromadas or oblast_hromadas:
            rows = await session.execute(
                select(Team.id, Team.hromada_id, Team.oblast, Team.is_oblast_fallback).where(
                    or_(
                        # A partner agency's team in the hromada is not its coordinator.
                        Team.hromada_id.in_(partner_hromadas) & oversees_hromada(),
                        Team.is_oblast_fallback.is_(True)
                        & Team.oblast.in_(set(people.oblast_of_hromada.values())),
                    )
                )
            )
            teams_of_hromada, fallback_of_oblast = defaultdict(list), defaultdict(list)
            for team_id, hromada_id, oblast, fallback in rows.all():
                team_ids.add(team_id)
                if fallback:
                    fallback_of_oblast[oblast].append(team_id)
                if hromada_id is not None:
                    teams_of_hromada[hromada_id].append(team_id)
            people.teams_of_hromada, people.fallback_of_oblast = teams_of_hromada, fallback_of_oblast
        rows = await session.execute(
            select(TeamMember.team_id, User.id, User.telegram_id, TeamMember.role, TeamMember.on_duty)
            .join(Worker, Worker.id == TeamMember.worker_id)
            .join(User, User.id == Worker.user_id)
            .where(TeamMember.team_id.in_(team_ids), Worker.active.is_(True))
        )
        members: dict[int, list[tuple[int, int, str, bool]]] = defaultdict(list)
        for team_id, user_id, chat, role, on_duty in rows.all():
            members[team_id].append((user_id, chat, role, on_duty))
        people.members = members
        return people

    def of(self, case: Case, step: int) -> list[Recipient]:
        """Who hears this step of this case, by user id, each once."""
        if step == STEP_DUE_SOON:
            if case.assignee_worker_id in self.assignees:
                return [self.assignees[case.assignee_worker_id]]
            team = self.members.get(case.team_id, [])
            on_duty = [(user, chat) for user, chat, _, duty in team if duty]
            return _distinct(on_duty or [(user, chat) for user, chat, _, _ in team])
        roles: tuple[str, ...] = (ROLE_COORDINATOR,)
        if step == STEP_BREACHED:
            teams = [case.team_id]
        elif step == STEP_PARTNER:
            teams = [t for t in self.teams_of_hromada.get(case.hromada_id, []) if t != case.team_id]
        else:
            oblast = self.oblast_of_hromada.get(case.hromada_id)
            teams = self.fallback_of_oblast.get(oblast, []) if oblast is not None else []
            # The oblast department's coordinators and those who answer for the oblast's figures.
            roles = (ROLE_COORDINATOR, ROLE_OBLAST)
        return _distinct(
            [
                (user, chat)
                for team in teams
                for user, chat, role, _ in self.members.get(team, [])
                if role in roles
            ]
        )


def _distinct(users: list[Recipient]) -> list[Recipient]:
    return sorted(set(users))
