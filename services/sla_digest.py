"""The morning digest: at 08:00 local on each worker's working days (their team's calendar), one
message with the cases assigned to them that fall due today, their breached cases, and how many
unassigned cases of their teams fall due today — once per worker and day (dedupe key), through
the outbox.

Today's visits are listed in the 07:30 visit agenda (services/visits.py); the digest gives only
their count and points there, so nothing is listed twice, and visits alone send no digest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, TeamMember, User, Worker
from models.cases import OPEN_STATUSES
from services.calendar import load_calendar
from services.outbox import enqueue
from services.reminders import ReminderRules
from services.visits import agenda_by_worker

DIGEST_AT = time(8, 0)
# After noon a missed morning digest is no longer useful.
DIGEST_UNTIL = time(12, 0)
DIGEST_ITEMS = 20


def due_between(start: datetime, end: datetime) -> ColumnElement[bool]:
    """The running clock of an open, unpaused, not yet breached case falls due in [start, end)."""
    return and_(
        Case.status.in_(OPEN_STATUSES),
        Case.sla_breached.is_(False),
        Case.sla_paused_at.is_(None),
        or_(
            and_(
                Case.first_responded_at.is_(None),
                Case.first_response_due_at >= start,
                Case.first_response_due_at < end,
            ),
            and_(
                Case.first_responded_at.is_not(None),
                Case.resolution_due_at >= start,
                Case.resolution_due_at < end,
            ),
        ),
    )


async def unassigned_due_by_team(
    session: AsyncSession, team_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, int]:
    """Per team: its unassigned cases falling due in [start, end), in one grouped read."""
    rows = await session.execute(
        select(Case.team_id, func.count())
        .where(Case.team_id.in_(set(team_ids)), Case.assignee_worker_id.is_(None), due_between(start, end))
        .group_by(Case.team_id)
    )
    return {team_id: count for team_id, count in rows.all()}


async def plan_morning_digests(session: AsyncSession, now: datetime, rules: ReminderRules) -> int:
    today = rules.local(now).date()
    if not rules.quiet_over(rules.at_local(today, DIGEST_AT)) <= now < rules.at_local(today, DIGEST_UNTIL):
        return 0
    start, end = rules.at_local(today, time(0)), rules.at_local(today + timedelta(days=1), time(0))
    teams_of: dict[int, list[int]] = defaultdict(list)
    for worker_id, team_id in (
        await session.execute(
            select(TeamMember.worker_id, TeamMember.team_id)
            .join(Worker, Worker.id == TeamMember.worker_id)
            .where(Worker.active.is_(True))
            .order_by(TeamMember.worker_id, TeamMember.team_id)
        )
    ).all():
        teams_of[worker_id].append(team_id)
    # A worker in several teams gets the digest on the working days of the first one.
    first_team = {worker_id: teams[0] for worker_id, teams in teams_of.items()}
    unassigned = await unassigned_due_by_team(
        session, {t for teams in teams_of.values() for t in teams}, start, end
    )
    added = 0
    calendars: dict[int, bool] = {}
    for worker_id, team_id in sorted(first_team.items()):
        if team_id not in calendars:
            calendars[team_id] = (await load_calendar(session, team_id, rules.tz)).is_working_day(today)
        if not calendars[team_id]:
            continue
        worker = await session.get(Worker, worker_id)
        user = await session.get(User, worker.user_id) if worker else None
        if user is None:
            continue
        visits = (
            await agenda_by_worker(session, today, rules, user.language or "uk", worker_id=worker_id)
        ).get(worker_id, [])
        mine = and_(Case.assignee_worker_id == worker_id, Case.status.in_(OPEN_STATUSES))
        due_today = (
            await session.execute(
                select(
                    Case.number, Case.first_response_due_at, Case.resolution_due_at, Case.first_responded_at
                )
                .where(mine, due_between(start, end))
                .order_by(Case.id)
                .limit(DIGEST_ITEMS)
            )
        ).all()
        breached = (
            await session.scalars(
                select(Case.number)
                .where(mine, Case.sla_breached.is_(True))
                .order_by(Case.id)
                .limit(DIGEST_ITEMS)
            )
        ).all()
        unassigned_today = sum(unassigned.get(team_id, 0) for team_id in teams_of[worker_id])
        if not due_today and not breached and not unassigned_today:
            continue
        payload: dict[str, Any] = {
            "date": today.isoformat(),
            "visits_count": len(visits),
            "due": [
                {
                    "number": number,
                    "time": rules.local(first_due if responded is None else resolution_due).strftime("%H:%M"),
                }
                for number, first_due, resolution_due, responded in due_today
            ],
            "breached": list(breached),
            "unassigned_due": unassigned_today,
        }
        row = await enqueue(
            session,
            user=user,
            kind="sla_digest",
            payload=payload,
            due_at=now,
            dedupe_key=f"sla_digest:{worker_id}:{today:%Y%m%d}",
        )
        added += row is not None
    return added
