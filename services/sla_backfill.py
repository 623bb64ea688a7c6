"""Upgrade day: open cases filed before the service levels existed get their due times.

The due times are counted on the team's calendar from each case's filing moment, as if the policy
had applied from the start (`hromada-bot sla-backfill`, also run after `seed` loads policies).
What a case already missed is recorded — its state, the breach flag, the steps passed marked as
taken — but not announced case by case: a coordinator would otherwise get hundreds of messages in
the first minute. Instead each coordinator of a team with overdue backfilled cases gets one
summary notice with the counts; the steps still ahead (the next check) run through the sweep as
for any case.

Choices for what the old rows do not say:
- a case no longer `new` was answered: its first response is the first thing a worker did on it
  (the earliest event with an actor), else its filing moment (unknown, so not counted late);
- a case waiting for the resident is paused from the backfill on (its clocks stand still, and
  it keeps whatever working time it had left then).

Cases are read by primary key in batches (`after_id`), each batch in its own transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseEvent, SlaPolicy, TeamMember, User, Worker
from models.cases import NEW, OPEN_STATUSES
from models.people import ROLE_COORDINATOR
from services.calendar import team_calendars
from services.clock import Clock
from services.outbox import enqueue_many
from services.sla import BREACHED, PAUSING_STATUSES, SlaService, live_state

BACKFILL_BATCH = 500


@dataclass
class BackfillBatch:
    """What one batch did: the last case id read (the next batch starts after it), and per
    team how many cases got due times and how many of those are already breached."""

    last_id: int | None = None
    started: Counter[int] = field(default_factory=Counter)
    breached: Counter[int] = field(default_factory=Counter)


def pick_policy(policies: Sequence[SlaPolicy], service_id: int, priority: int) -> SlaPolicy | None:
    """The service's policy with the highest `min_priority` not above the priority (as
    `SlaService.policy`, on rows read once)."""
    fitting = [p for p in policies if p.service_id == service_id and p.min_priority <= priority]
    return max(fitting, key=lambda p: p.min_priority, default=None)


async def backfill_batch(
    session: AsyncSession, clock: Clock, zone: tzinfo, *, after_id: int = 0, batch: int = BACKFILL_BATCH
) -> BackfillBatch:
    """Give due times to up to `batch` open cases without them (ids above `after_id`)."""
    policies = (await session.scalars(select(SlaPolicy))).all()
    result = BackfillBatch()
    if not policies:
        return result
    cases = (
        await session.scalars(
            select(Case)
            .where(
                Case.id > after_id,
                Case.status.in_(OPEN_STATUSES),
                Case.sla_state.is_(None),
                Case.first_response_due_at.is_(None),
                Case.resolution_due_at.is_(None),
                Case.service_id.in_({p.service_id for p in policies}),
            )
            .order_by(Case.id)
            .limit(batch)
        )
    ).all()
    if not cases:
        return result
    result.last_id = cases[-1].id
    now = clock.now()
    answered = [c.id for c in cases if c.status != NEW]
    first_action: dict[int, datetime] = {}
    if answered:
        rows = await session.execute(
            select(CaseEvent.case_id, func.min(CaseEvent.at))
            .where(CaseEvent.case_id.in_(answered), CaseEvent.actor_user_id.is_not(None))
            .group_by(CaseEvent.case_id)
        )
        first_action = {case_id: at for case_id, at in rows.all()}
    sla = SlaService(session, clock, zone)
    sla.preload(await team_calendars(session, zone), {c.team_id for c in cases})
    events: list[dict[str, Any]] = []
    with session.no_autoflush:
        for case in cases:
            policy = pick_policy(policies, case.service_id, case.priority)
            if policy is None:
                continue
            calendar = await sla.calendar(case.team_id)
            case.first_response_due_at = calendar.add_working(
                case.created_at, timedelta(minutes=policy.first_response_minutes)
            )
            case.resolution_due_at = calendar.add_working(
                case.created_at, timedelta(minutes=policy.resolution_minutes)
            )
            if case.status != NEW:
                case.first_responded_at = first_action.get(case.id, case.created_at)
            case.sla_escalation_step = 0
            if case.status in PAUSING_STATUSES:
                case.sla_paused_at = now
                case.sla_next_check_at = None
                case.sla_state = live_state(case, calendar, now)
            else:
                # The steps already passed are marked taken and not performed (see above).
                await sla.refresh(case)
            case.sla_breached = case.sla_state == BREACHED
            result.started[case.team_id] += 1
            if case.sla_breached:
                result.breached[case.team_id] += 1
                events.append(
                    {
                        "case_id": case.id,
                        "at": now,
                        "actor_user_id": None,
                        "kind": "sla_breached",
                        "data": {"step": "breached", "backfill": True, "recipients": 0},
                    }
                )
    await session.flush()
    if events:
        await session.execute(insert(CaseEvent), events)
    return result


async def notify_backfill(
    session: AsyncSession, now: datetime, zone: tzinfo, started: Counter[int], breached: Counter[int]
) -> int:
    """One summary per coordinator of each team with breached backfilled cases; once a day."""
    teams = [team_id for team_id, count in breached.items() if count]
    if not teams:
        return 0
    rows = await session.execute(
        select(TeamMember.team_id, User.id, User.telegram_id)
        .join(Worker, Worker.id == TeamMember.worker_id)
        .join(User, User.id == Worker.user_id)
        .where(
            TeamMember.team_id.in_(teams),
            TeamMember.role == ROLE_COORDINATOR,
            Worker.active.is_(True),
        )
        .order_by(TeamMember.team_id, User.id)
    )
    today = now.astimezone(zone).date()
    messages = [
        {
            "user_id": user_id,
            "chat_id": chat_id,
            "kind": "sla_backfill",
            "payload": {
                "team_id": team_id,
                "cases": started[team_id],
                "breached": breached[team_id],
            },
            "due_at": now,
            "dedupe_key": f"sla_backfill:{today:%Y%m%d}:{team_id}:{user_id}",
        }
        for team_id, user_id, chat_id in rows.all()
    ]
    return await enqueue_many(session, messages)
