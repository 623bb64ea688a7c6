"""The SLA section of a hromada's or an oblast's report: per service, the cases whose resolution
fell due in the period, how many were closed in time and late, the share in time, and the median
and 90th percentile of working hours to the first response and to the resolution (pauses while
waiting for the resident not counted). Counts go through the "<5" rule at the edge
(services/report_tables.py); no personal data enters the table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, Service
from services.calendar import WorkingCalendar, load_calendar
from services.report_tables import Column, Period, ReportScope, ReportTable
from services.sla import MET, MISSED

SLA_COLUMNS = (
    Column("sla.report.service", "text"),
    Column("sla.report.due", "count"),
    Column("sla.report.met", "count"),
    Column("sla.report.missed", "count"),
    Column("sla.report.share_on_time", "percent"),
    Column("sla.report.first_response_median", "hours"),
    Column("sla.report.first_response_p90", "hours"),
    Column("sla.report.resolution_median", "hours"),
    Column("sla.report.resolution_p90", "hours"),
)


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-int(share * 100) * len(ordered) // 100))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class _Figures:
    due: int = 0
    met: int = 0
    missed: int = 0
    first: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)


class _DayCache:
    """`WorkingCalendar.working_between` in seconds as a difference of positions on the
    calendar's running count of working time: each local day's intervals and length are worked
    out once, so a report's thousands of spans over the same weeks cost two look-ups each.
    (A day's working periods lie within its local date, so a moment's position is the working
    time before its date plus the part of that date's periods before it.)"""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self._intervals: dict[date, list[tuple[datetime, datetime]]] = {}
        # Working seconds from the first day asked about to the start of each day known.
        self._day_start: dict[date, float] = {}
        self._first = self._last = date.min

    def _periods(self, day: date) -> list[tuple[datetime, datetime]]:
        intervals = self._intervals.get(day)
        if intervals is None:
            intervals = self._intervals[day] = self.calendar.intervals_on(day)
        return intervals

    def _length(self, day: date) -> float:
        return sum((end - begin).total_seconds() for begin, end in self._periods(day))

    def _start_of(self, day: date) -> float:
        if not self._day_start:
            self._day_start[day] = 0.0
            self._first = self._last = day
        while day > self._last:
            self._day_start[self._last + ONE_DAY] = self._day_start[self._last] + self._length(self._last)
            self._last += ONE_DAY
        while day < self._first:
            self._first -= ONE_DAY
            self._day_start[self._first] = self._day_start[self._first + ONE_DAY] - self._length(self._first)
        return self._day_start[day]

    def position(self, at: datetime) -> float:
        """Working seconds from the start of the first day asked about to `at`."""
        day = at.astimezone(self.calendar.zone).date()
        within = 0.0
        for begin, end in self._periods(day):
            if at > begin:
                within += (min(at, end) - begin).total_seconds()
        return self._start_of(day) + within

    def working_seconds(self, a: datetime, b: datetime) -> float:
        return self.position(b) - self.position(a)


ONE_DAY = timedelta(days=1)


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def sla_table(session: AsyncSession, scope: ReportScope, period: Period, zone: tzinfo) -> ReportTable:
    """One row per service with any case due in the period (services in catalogue order); the
    share in time is a percentage of the closed ones (None while none is closed)."""
    begin, end = period.bounds(zone)
    rows = (
        await session.execute(
            select(
                Service.position,
                Service.name_uk,
                Case.team_id,
                Case.created_at,
                Case.first_responded_at,
                Case.closed_at,
                Case.sla_state,
                Case.sla_paused_seconds,
            )
            .join(Service, Service.id == Case.service_id)
            .where(
                Case.hromada_id.in_(scope.hromada_ids or (-1,)),
                Case.resolution_due_at >= begin,
                Case.resolution_due_at < end,
            )
        )
    ).all()
    calendars: dict[int, _DayCache] = {}
    per_service: dict[tuple[int, str], _Figures] = defaultdict(_Figures)
    for position, name, team_id, created, responded, closed, state, paused in rows:
        figures = per_service[(position, name)]
        figures.due += 1
        if state == MET:
            figures.met += 1
        elif state == MISSED:
            figures.missed += 1
        resolved = closed is not None and state in (MET, MISSED)
        if responded is None and not resolved:
            continue
        calendar = calendars.get(team_id)
        if calendar is None:
            calendar = calendars[team_id] = _DayCache(await load_calendar(session, team_id, zone))
        start = calendar.position(created)
        if responded is not None:
            figures.first.append(max(0.0, calendar.position(responded) - start) / 3600)
        if resolved:
            figures.resolution.append(max(0.0, calendar.position(closed) - start - (paused or 0)) / 3600)
    table_rows = []
    for (_, name), f in sorted(per_service.items()):
        closed_count = f.met + f.missed
        table_rows.append(
            (
                name,
                f.due,
                f.met,
                f.missed,
                round(100 * f.met / closed_count, 1) if closed_count else None,
                _hours(statistics.median(f.first) if f.first else None),
                _hours(percentile(f.first, 0.9)),
                _hours(statistics.median(f.resolution) if f.resolution else None),
                _hours(percentile(f.resolution, 0.9)),
            )
        )
    return ReportTable("sla.report.title", SLA_COLUMNS, tuple(table_rows))
