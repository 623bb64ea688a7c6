"""The morning digest: at 08:00 local on each worker's working days (their team's calendar), one
message with today's visits, the cases assigned to them that fall due today, and their breached
cases — once per worker and day (dedupe key), through the outbox."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
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


async def plan_morning_digests(session: AsyncSession, now: datetime, rules: ReminderRules) -> int:
    today = rules.local(now).date()
    if not rules.quiet_over(rules.at_local(today, DIGEST_AT)) <= now < rules.at_local(today, DIGEST_UNTIL):
        return 0
    start, end = rules.at_local(today, time(0)), rules.at_local(today + timedelta(days=1), time(0))
    first_team = {
        worker_id: team_id
        for worker_id, team_id in (
            await session.execute(
                select(TeamMember.worker_id, TeamMember.team_id)
                .join(Worker, Worker.id == TeamMember.worker_id)
                .where(Worker.active.is_(True))
                .order_by(TeamMember.worker_id, TeamMember.team_id.desc())
            )
        ).all()
    }
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
                .where(
                    mine,
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
        if not visits and not due_today and not breached:
            continue
        payload: dict[str, Any] = {
            "date": today.isoformat(),
            "visits": [
                {
                    "time_from": v.time_from,
                    "time_to": v.time_to,
                    "settlement": v.settlement,
                    "number": v.case_number,
                }
                for v in visits[:DIGEST_ITEMS]
            ],
            "due": [
                {
                    "number": number,
                    "time": rules.local(first_due if responded is None else resolution_due).strftime("%H:%M"),
                }
                for number, first_due, resolution_due, responded in due_today
            ],
            "breached": list(breached),
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
