"""The weekly report: on Monday from 08:00 local time, last week's summary to every coordinator
and oblast-level member, through the outbox.

The row carries plain published figures only (counts after the "<5" rule, hours, percents;
no names of people, no free text), so it needs no send-time access check beyond the worker
still being active; its button builds the full report (charts, XLSX) on demand, when the
scope is worked out again. One row per person and week (dedupe key): the hourly job may run
on every instance and at every hour of Monday, and still sends one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Team, TeamMember, User, Worker
from models.people import ROLE_COORDINATOR, ROLE_OBLAST
from services import outbox
from services.report_service import pack_period, report_access, week_period
from services.report_tables import Cell, ReportScope, ReportTable, published_count
from services.reports import build_report

KIND = "weekly_report"
SEND_FROM = time(8, 0)


def summary_values(tables: Sequence[ReportTable]) -> dict[str, Any]:
    """The figures of the short summary, published ("<5" applied), as plain JSON values."""
    by_key = {t.key: t for t in tables}

    def count(table: str, row: str) -> Cell | str:
        for cells in by_key[table].rows:
            if cells[0] == row:
                return published_count(cells[1])
        return 0

    times = next(r for r in by_key["reports.t.times"].rows if r[0] == "reports.row.all")
    return {
        "requests": count("reports.t.totals", "reports.row.requests"),
        "fallback": count("reports.t.unmet", "reports.row.fallback"),
        "rejected": count("reports.t.unmet", "reports.row.rejected"),
        "long_waits": count("reports.t.unmet", "reports.row.long_waits"),
        "visits_done": count("reports.t.activity", "reports.row.visits_done"),
        "lookups": count("reports.t.activity", "reports.row.lookups"),
        "first_median": times[1],
        "first_p90": times[2],
        "on_time": times[3],
        "resolution_median": times[4],
        "resolution_p90": times[5],
    }


async def plan_weekly_reports(session: AsyncSession, now: datetime, zone: tzinfo) -> int:
    """Queue last week's summary for each coordinator and oblast member once, on Monday from
    SEND_FROM local time. Returns how many rows were added."""
    local = now.astimezone(zone)
    if local.weekday() != 0 or local.time() < SEND_FROM:
        return 0
    period = week_period(local.date(), 1)
    workers = (
        await session.scalars(
            select(Worker)
            .join(TeamMember, TeamMember.worker_id == Worker.id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(Worker.active.is_(True), TeamMember.role.in_((ROLE_COORDINATOR, ROLE_OBLAST)))
            .distinct()
            .order_by(Worker.id)
        )
    ).all()
    built: dict[ReportScope, dict[str, Any]] = {}
    added = 0
    for worker in workers:
        access = await report_access(session, worker)
        if access is None:
            continue
        if access.scope not in built:
            tables = await build_report(session, access.scope, period, zone)
            built[access.scope] = summary_values(tables)
        user = await session.get(User, worker.user_id)
        if user is None:
            continue
        row = await outbox.enqueue(
            session,
            user=user,
            kind=KIND,
            payload={
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "period": pack_period(period),
                "hromadas": len(access.scope.hromada_ids),
                **built[access.scope],
            },
            due_at=now,
            dedupe_key=f"{KIND}:{worker.id}:{period.start:%Y%m%d}",
        )
        added += row is not None
    return added
