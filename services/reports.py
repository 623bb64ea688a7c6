"""Reports for coordinators (their hromadas) and the oblast level (every hromada of an oblast):
for a period, what people asked for, how fast they were answered, what stayed unmet, and what
the hromada did (visits, mobile office trips, status lookups).

Every section is a `ReportTable` of plain values (services/report_tables.py): counts, hours,
names of services and places — never a person. The requests' sections all come from ONE
pass over the scope's cases of the period (`period_cases_statement`: an index range scan on
(hromada, filing time), streamed in batches): counts are tallied and percentiles taken in
Python, the same code on SQLite, which has no percentile_cont (bench/reports.py: an oblast's
month is a few thousand rows). Response times are calendar hours from `first_responded_at`,
kept by services/sla.py for every case; "on time" is the SLA share where cases have an SLA.

Small counts. A table that splits a total (requests by service, by settlement, by status…)
never lists a category with 1–4: those are pooled into one "other" row (`OTHER`), and when the
pool itself is below five, the smallest listed category joins it. So no "<5" can be recovered by
subtracting the listed rows from the total, and totals are exact. Counts that split nothing
(visits done, lookups) are published with the "<5" rule (`ReportTable.published`). Times are
given only for groups of at least five cases. Rejection reasons are typed freely by workers and
may name people: rejections are counted by service, never by reason text.

Extension point: `build_report(..., extra=[provider, ...])` appends the sections other features
compute (working-time SLA figures, surveys, satisfaction) — a provider is any
`async (session, scope, period, zone) -> Sequence[ReportTable]`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Case,
    MobileOfficeBooking,
    MobileOfficeSchedule,
    Service,
    Settlement,
    StatusLookup,
    Visit,
)
from models.cases import OPEN_STATUSES, STATUSES
from services.mobile_office import trip_days
from services.report_tables import SMALL_COUNT, Cell, Column, Period, ReportScope, ReportTable
from services.sla import MET, MISSED

SectionProvider = Callable[[AsyncSession, ReportScope, Period, tzinfo], Awaitable[Sequence[ReportTable]]]

# The label of a pooled row (an i18n id: views translate it like a header).
OTHER = "reports.row.other"
NO_SETTLEMENT = "reports.row.no_settlement"
# A request still open this many days after it was filed is a long wait.
LONG_WAIT_DAYS = 14
# Calendar-time target for a first response; working-time figures come from the SLA section.
FIRST_RESPONSE_TARGET = timedelta(hours=24)
# Rows fetched per round trip of the one pass over the period's cases.
STREAM_BATCH = 5000


async def build_report(
    session: AsyncSession,
    scope: ReportScope,
    period: Period,
    zone: tzinfo,
    *,
    locale: str = "uk",
    extra: Sequence[SectionProvider] = (),
) -> list[ReportTable]:
    """Every section for the scope and period, the features' `extra` sections last."""
    builder = _Builder(session, scope, period, zone, locale)
    tables = [
        await builder.totals(),
        await builder.by_service(),
        await builder.by_settlement(),
        await builder.by_status(),
        await builder.times(),
        await builder.unmet(),
        await builder.rejected_by_service(),
        await builder.fallback_by_service(),
        await builder.activity(),
        await builder.mobile_office(),
    ]
    for provider in extra:
        tables.extend(await provider(session, scope, period, zone))
    return tables


def pool_small(
    rows: Sequence[tuple[str, int]], *, other: str = OTHER
) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """Rows (label, count) of one split of a total, with categories of 1–4 pooled into `other`
    (and, if the pool is below five, the smallest listed category with them). Returns the
    published rows, largest first, and which label went where."""
    listed = sorted(((k, n) for k, n in rows if n >= SMALL_COUNT), key=lambda r: (-r[1], r[0]))
    small = [(k, n) for k, n in rows if 0 < n < SMALL_COUNT]
    if not small:
        return listed, {k: k for k, _n in listed}
    pool = sum(n for _k, n in small)
    pooled = [k for k, _n in small]
    if pool < SMALL_COUNT and listed:
        key, n = listed.pop()
        pool += n
        pooled.append(key)
    where = {k: k for k, _n in listed} | dict.fromkeys(pooled, other)
    return [*listed, (other, pool)], where


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation, as PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class _Tally:
    """What one pass over the period's cases gives every requests' section: counts by service
    name, settlement id, status and routing, and per service the hours for the times table."""

    by_service: Counter[str] = field(default_factory=Counter)
    by_settlement: Counter[int | None] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    fallback: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    first: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    resolution: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # Closed cases with an SLA: met and missed, per service.
    met: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)


def period_cases_statement(dialect: str, scope: ReportScope, begin: datetime, end: datetime) -> Select[Any]:
    """The one row per case of the scope filed in [begin, end) that the requests' sections are
    counted from: service, settlement, status, routing, hours to the first response and to
    closing (computed by the database: no datetime is built in Python per case), SLA state.
    bench/reports.py prints its plan."""
    return select(
        Case.service_id,
        Case.settlement_id,
        Case.status,
        Case.routing_kind,
        _hours_between(dialect, Case.created_at, Case.first_responded_at),
        _hours_between(dialect, Case.created_at, Case.closed_at),
        Case.sla_state,
    ).where(
        Case.hromada_id.in_(scope.hromada_ids),
        Case.created_at >= begin,
        Case.created_at < end,
    )


class _Builder:
    def __init__(
        self, session: AsyncSession, scope: ReportScope, period: Period, zone: tzinfo, locale: str
    ) -> None:
        self.session = session
        self.scope = scope
        self.period = period
        self.zone = zone
        self.locale = locale
        self.begin, self.end = period.bounds(zone)
        self._tally: _Tally | None = None
        self._service_groups: dict[str, str] = {}

    async def tally(self) -> _Tally:
        """One index range scan over the scope's cases of the period, streamed in batches so a
        long period does not hold every row at once."""
        if self._tally is not None:
            return self._tally
        service_name = Service.name_en if self.locale == "en" else Service.name_uk
        names = dict((await self.session.execute(select(Service.id, service_name))).tuples().all())
        query = period_cases_statement(
            self.session.get_bind().dialect.name, self.scope, self.begin, self.end
        ).execution_options(yield_per=STREAM_BATCH)
        tally = _Tally()
        result = await self.session.stream(query)
        async for rows in result.partitions():
            for service_id, settlement_id, status, routing, first_h, closed_h, sla_state in rows:
                service = str(names.get(service_id, service_id))
                tally.by_service[service] += 1
                tally.by_settlement[settlement_id] += 1
                tally.by_status[status] += 1
                if routing == "fallback":
                    tally.fallback[service] += 1
                if status == "rejected":
                    tally.rejected[service] += 1
                if first_h is not None:
                    tally.first[service].append(float(first_h))
                if status == "resolved" and closed_h is not None:
                    tally.resolution[service].append(float(closed_h))
                if sla_state == MET:
                    tally.met[service] += 1
                elif sla_state == MISSED:
                    tally.missed[service] += 1
        self._tally = tally
        return tally

    async def totals(self) -> ReportTable:
        total = sum((await self.tally()).by_status.values())
        return ReportTable(
            "reports.t.totals",
            (Column("reports.c.measure"), Column("reports.c.count", "count")),
            [("reports.row.requests", total)],
        )

    async def by_service(self) -> ReportTable:
        rows, self._service_groups = pool_small(list((await self.tally()).by_service.items()))
        return ReportTable(
            "reports.t.by_service", (Column("reports.c.service"), Column("reports.c.requests", "count")), rows
        )

    async def by_settlement(self) -> ReportTable:
        per_id = (await self.tally()).by_settlement
        name = Settlement.name_en if self.locale == "en" else Settlement.name_uk
        ids = [i for i in per_id if i is not None]
        names = dict(
            (await self.session.execute(select(Settlement.id, name).where(Settlement.id.in_(ids))))
            .tuples()
            .all()
        )
        # By name, as a reader knows them (two hromadas' villages of one name are one row).
        counts: Counter[str] = Counter()
        for settlement_id, n in per_id.items():
            counts[str(names.get(settlement_id, NO_SETTLEMENT)) if settlement_id else NO_SETTLEMENT] += n
        rows, _ = pool_small(list(counts.items()))
        return ReportTable(
            "reports.t.by_settlement",
            (Column("reports.c.settlement"), Column("reports.c.requests", "count")),
            rows,
        )

    async def by_status(self) -> ReportTable:
        counts = (await self.tally()).by_status
        labelled = [(f"reports.status.{s}", counts.get(str(s), 0)) for s in STATUSES]
        rows, _ = pool_small(labelled, other="reports.status.other")
        order = {f"reports.status.{s}": i for i, s in enumerate(STATUSES)}
        rows.sort(key=lambda r: order.get(r[0], len(order)))
        return ReportTable(
            "reports.t.by_status", (Column("reports.c.status"), Column("reports.c.requests", "count")), rows
        )

    async def times(self) -> ReportTable:
        """Calendar hours to the first response and to the resolution (median, 90th
        percentile), and the share on time: of the closed cases with an SLA, those whose
        deadlines were kept; for a group with no SLA at all, those answered within
        FIRST_RESPONSE_TARGET. Working-hour figures are the SLA section's."""
        tally = await self.tally()
        if not self._service_groups:
            await self.by_service()
        groups = self._service_groups
        first: dict[str, list[float]] = defaultdict(list)
        resolution: dict[str, list[float]] = defaultdict(list)
        met: Counter[str] = Counter()
        missed: Counter[str] = Counter()
        for service, hours in tally.first.items():
            first[groups.get(service, OTHER)].extend(hours)
        for service, hours in tally.resolution.items():
            resolution[groups.get(service, OTHER)].extend(hours)
        for service, n in tally.met.items():
            met[groups.get(service, OTHER)] += n
        for service, n in tally.missed.items():
            missed[groups.get(service, OTHER)] += n
        labels = sorted(set(first) | set(resolution) | set(met) | set(missed), key=lambda k: (k == OTHER, k))
        rows: list[tuple[Cell, ...]] = []
        for label in labels:
            rows.append(
                (
                    label,
                    *_stats(first[label]),
                    _on_time(first[label], met[label], missed[label]),
                    *_stats(resolution[label]),
                )
            )
        everything_first = [h for v in first.values() for h in v]
        everything_resolved = [h for v in resolution.values() for h in v]
        rows.append(
            (
                "reports.row.all",
                *_stats(everything_first),
                _on_time(everything_first, sum(met.values()), sum(missed.values())),
                *_stats(everything_resolved),
            )
        )
        return ReportTable(
            "reports.t.times",
            (
                Column("reports.c.service"),
                Column("reports.c.first_median", "hours"),
                Column("reports.c.first_p90", "hours"),
                Column("reports.c.on_time", "percent"),
                Column("reports.c.resolution_median", "hours"),
                Column("reports.c.resolution_p90", "hours"),
            ),
            rows,
        )

    async def unmet(self) -> ReportTable:
        tally = await self.tally()
        # Long waits: open now and filed at least LONG_WAIT_DAYS before the period's end.
        # count(*), not count(id): an index-only scan of (hromada, status, created_at).
        long_waits = await self.session.scalar(
            select(func.count())
            .select_from(Case)
            .where(
                Case.hromada_id.in_(self.scope.hromada_ids),
                Case.status.in_(OPEN_STATUSES),
                Case.created_at < self.end - timedelta(days=LONG_WAIT_DAYS),
            )
        )
        return ReportTable(
            "reports.t.unmet",
            (Column("reports.c.measure"), Column("reports.c.count", "count")),
            [
                ("reports.row.fallback", sum(tally.fallback.values())),
                ("reports.row.rejected", sum(tally.rejected.values())),
                ("reports.row.long_waits", int(long_waits or 0)),
            ],
        )

    async def rejected_by_service(self) -> ReportTable:
        rows, _ = pool_small(list((await self.tally()).rejected.items()))
        return ReportTable(
            "reports.t.rejected", (Column("reports.c.service"), Column("reports.c.requests", "count")), rows
        )

    async def fallback_by_service(self) -> ReportTable:
        rows, _ = pool_small(list((await self.tally()).fallback.items()))
        return ReportTable(
            "reports.t.fallback", (Column("reports.c.service"), Column("reports.c.requests", "count")), rows
        )

    async def activity(self) -> ReportTable:
        hromadas = self.scope.hromada_ids
        visits = await self.session.scalar(
            select(func.count(Visit.id))
            .join(Case, Case.id == Visit.case_id)
            .where(
                Case.hromada_id.in_(hromadas),
                Visit.status == "done",
                Visit.starts_at >= self.begin,
                Visit.starts_at < self.end,
            )
        )
        lookup_rows = (
            await self.session.execute(
                select(StatusLookup.found, func.count(StatusLookup.id))
                .where(
                    StatusLookup.hromada_id.in_(hromadas),
                    StatusLookup.at >= self.begin,
                    StatusLookup.at < self.end,
                )
                .group_by(StatusLookup.found)
            )
        ).all()
        lookups = {bool(found): int(n) for found, n in lookup_rows}
        return ReportTable(
            "reports.t.activity",
            (Column("reports.c.measure"), Column("reports.c.count", "count")),
            [
                ("reports.row.visits_done", int(visits or 0)),
                ("reports.row.lookups", int(sum(lookups.values()))),
                ("reports.row.lookups_found", int(lookups.get(True, 0))),
            ],
        )

    async def mobile_office(self) -> ReportTable:
        name = Settlement.name_en if self.locale == "en" else Settlement.name_uk
        schedules = (
            await self.session.execute(
                select(MobileOfficeSchedule, name)
                .join(Settlement, Settlement.id == MobileOfficeSchedule.settlement_id)
                .where(
                    Settlement.hromada_id.in_(self.scope.hromada_ids),
                    MobileOfficeSchedule.valid_from <= self.period.end,
                    or_(
                        MobileOfficeSchedule.valid_to.is_(None),
                        MobileOfficeSchedule.valid_to >= self.period.start,
                    ),
                )
            )
        ).all()
        trips: dict[str, int] = defaultdict(int)
        for schedule, settlement in schedules:
            trips[str(settlement)] += len(trip_days(schedule, self.period.start, self.period.end))
        booked = (
            await self.session.execute(
                select(name, func.count(MobileOfficeBooking.id))
                .join(MobileOfficeSchedule, MobileOfficeSchedule.id == MobileOfficeBooking.schedule_id)
                .join(Settlement, Settlement.id == MobileOfficeSchedule.settlement_id)
                .where(
                    Settlement.hromada_id.in_(self.scope.hromada_ids),
                    MobileOfficeBooking.status == "booked",
                    MobileOfficeBooking.trip_date >= self.period.start,
                    MobileOfficeBooking.trip_date <= self.period.end,
                )
                .group_by(name)
            )
        ).all()
        bookings = {str(k): int(n) for k, n in booked}
        rows, where = pool_small([(k, bookings.get(k, 0)) for k in set(trips) | set(bookings)])
        pooled_trips: dict[str, int] = defaultdict(int)
        for settlement, count in trips.items():
            pooled_trips[where.get(settlement, settlement)] += count
        listed = {label for label, _n in rows}
        out: list[tuple[Cell, ...]] = [(label, pooled_trips.get(label, 0), n) for label, n in rows]
        # Settlements with trips and no bookings: trips are not people, listed as they are.
        out += [(s, n, 0) for s, n in sorted(pooled_trips.items()) if s not in listed]
        return ReportTable(
            "reports.t.mobile_office",
            (
                Column("reports.c.settlement"),
                Column("reports.c.trips", "number"),
                Column("reports.c.bookings", "count"),
            ),
            out,
        )


def _stats(hours: Sequence[float]) -> tuple[float | None, float | None]:
    """Median and 90th percentile in hours (one decimal), for at least five cases only."""
    if len(hours) < SMALL_COUNT:
        return None, None
    return round(percentile(hours, 50), 1), round(percentile(hours, 90), 1)


def _on_time(first_hours: Sequence[float], met: int, missed: int) -> float | None:
    """The SLA share (met of met and missed) where the group's closed cases have an SLA; the
    share answered within FIRST_RESPONSE_TARGET (calendar time) where none has."""
    if met + missed:
        return round(100 * met / (met + missed), 1) if met + missed >= SMALL_COUNT else None
    if len(first_hours) < SMALL_COUNT:
        return None
    target = FIRST_RESPONSE_TARGET.total_seconds() / 3600
    return round(100 * sum(1 for h in first_hours if h <= target) / len(first_hours), 1)


def _hours_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """Hours from `start` to `end` (NULL when `end` is)."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 24.0
    return func.extract("epoch", end - start) / 3600.0
