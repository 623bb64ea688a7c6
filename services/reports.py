"""Reports for coordinators (their hromadas) and the oblast level (every hromada of an oblast):
for a period, what people asked for, how fast they were answered, what stayed unmet, and what
the hromada did (visits, mobile office trips, status lookups).

Every section is a `ReportTable` of plain values (services/report_tables.py): counts, hours,
names of services and places — never a person. Figures are aggregated in SQL; response and
resolution times are fetched as one bounded row per case of the period and their percentiles
taken in Python (the same code on SQLite, which has no percentile_cont; bench/reports.py shows
an oblast's month is a few thousand rows).

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
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from models import (
    Case,
    CaseEvent,
    CaseMessage,
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

SectionProvider = Callable[[AsyncSession, ReportScope, Period, tzinfo], Awaitable[Sequence[ReportTable]]]

# The label of a pooled row (an i18n id: views translate it like a header).
OTHER = "reports.row.other"
NO_SETTLEMENT = "reports.row.no_settlement"
# A request still open this many days after it was filed is a long wait.
LONG_WAIT_DAYS = 14
# Calendar-time target for a first response; working-time figures come from the SLA section.
FIRST_RESPONSE_TARGET = timedelta(hours=24)
# What counts as a worker's response in the audit trail (besides a message to the resident).
RESPONSE_EVENTS = ("status", "assigned", "transferred", "docs_requested", "visit_planned")


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
        self._service_groups: dict[str, str] | None = None

    def _in_scope(self, query: Select[Any]) -> Select[Any]:
        return query.where(
            Case.hromada_id.in_(self.scope.hromada_ids),
            Case.created_at >= self.begin,
            Case.created_at < self.end,
        )

    def _service_name(self) -> InstrumentedAttribute[str]:
        return Service.name_en if self.locale == "en" else Service.name_uk

    async def _counts(
        self, label: InstrumentedAttribute[str], *conditions: ColumnElement[bool]
    ) -> list[tuple[str, int]]:
        query: Select[Any] = select(label, func.count(Case.id)).select_from(Case)
        if label is not Case.status:
            query = query.join(Service, Service.id == Case.service_id)
        query = self._in_scope(query)
        for condition in conditions:
            query = query.where(condition)
        rows = (await self.session.execute(query.group_by(label))).all()
        return [(str(k), int(n)) for k, n in rows]

    async def totals(self) -> ReportTable:
        total = sum(n for _k, n in await self._counts(Case.status))
        return ReportTable(
            "reports.t.totals",
            (Column("reports.c.measure"), Column("reports.c.count", "count")),
            [("reports.row.requests", total)],
        )

    async def by_service(self) -> ReportTable:
        rows, self._service_groups = pool_small(await self._counts(self._service_name()))
        return ReportTable(
            "reports.t.by_service", (Column("reports.c.service"), Column("reports.c.requests", "count")), rows
        )

    async def by_settlement(self) -> ReportTable:
        name = Settlement.name_en if self.locale == "en" else Settlement.name_uk
        query = self._in_scope(
            select(func.coalesce(name, NO_SETTLEMENT), func.count(Case.id))
            .select_from(Case)
            .outerjoin(Settlement, Settlement.id == Case.settlement_id)
        ).group_by(name)
        counts = [(str(k), int(n)) for k, n in (await self.session.execute(query)).all()]
        rows, _ = pool_small(counts)
        return ReportTable(
            "reports.t.by_settlement",
            (Column("reports.c.settlement"), Column("reports.c.requests", "count")),
            rows,
        )

    async def by_status(self) -> ReportTable:
        counts = dict(await self._counts(Case.status))
        labelled = [(f"reports.status.{s}", counts.get(str(s), 0)) for s in STATUSES]
        rows, _ = pool_small(labelled, other="reports.status.other")
        order = {f"reports.status.{s}": i for i, s in enumerate(STATUSES)}
        rows.sort(key=lambda r: order.get(r[0], len(order)))
        return ReportTable(
            "reports.t.by_status", (Column("reports.c.status"), Column("reports.c.requests", "count")), rows
        )

    async def _durations(self) -> list[tuple[str, float | None, float | None]]:
        """(service, hours to first response, hours to resolution) per case of the period."""
        first_event = (
            select(func.min(CaseEvent.at))
            .where(
                CaseEvent.case_id == Case.id,
                CaseEvent.kind.in_(RESPONSE_EVENTS),
                CaseEvent.actor_user_id.is_not(None),
            )
            .scalar_subquery()
        )
        first_message = (
            select(func.min(CaseMessage.at))
            .where(CaseMessage.case_id == Case.id, CaseMessage.from_resident.is_(False))
            .scalar_subquery()
        )
        query = self._in_scope(
            select(
                self._service_name(), Case.created_at, first_event, first_message, Case.closed_at, Case.status
            )
            .select_from(Case)
            .join(Service, Service.id == Case.service_id)
        )
        out: list[tuple[str, float | None, float | None]] = []
        for service, created, event_at, message_at, closed_at, status in (
            await self.session.execute(query)
        ).all():
            created = _aware(created)
            answers = [_aware(a) for a in (event_at, message_at) if a is not None]
            first = (min(answers) - created).total_seconds() / 3600 if answers else None
            resolved = (
                (_aware(closed_at) - created).total_seconds() / 3600
                if status == "resolved" and closed_at is not None
                else None
            )
            out.append((str(service), first, resolved))
        return out

    async def times(self) -> ReportTable:
        if self._service_groups is None:
            await self.by_service()
        groups = self._service_groups or {}
        first: dict[str, list[float]] = defaultdict(list)
        resolution: dict[str, list[float]] = defaultdict(list)
        for service, first_h, resolved_h in await self._durations():
            group = groups.get(service, OTHER)
            if first_h is not None:
                first[group].append(first_h)
            if resolved_h is not None:
                resolution[group].append(resolved_h)
        labels = sorted(set(first) | set(resolution), key=lambda k: (k == OTHER, k))
        rows: list[tuple[Cell, ...]] = []
        for label in labels:
            rows.append((label, *_stats(first[label]), _on_time(first[label]), *_stats(resolution[label])))
        everything_first = [h for v in first.values() for h in v]
        everything_resolved = [h for v in resolution.values() for h in v]
        rows.append(
            (
                "reports.row.all",
                *_stats(everything_first),
                _on_time(everything_first),
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
        fallback = sum(n for _k, n in await self._counts(Case.status, Case.routing_kind == "fallback"))
        rejected = sum(n for _k, n in await self._counts(Case.status, Case.status == "rejected"))
        # Long waits: open now and filed at least LONG_WAIT_DAYS before the period's end.
        long_waits = await self.session.scalar(
            select(func.count(Case.id)).where(
                Case.hromada_id.in_(self.scope.hromada_ids),
                Case.status.in_(OPEN_STATUSES),
                Case.created_at < self.end - timedelta(days=LONG_WAIT_DAYS),
            )
        )
        return ReportTable(
            "reports.t.unmet",
            (Column("reports.c.measure"), Column("reports.c.count", "count")),
            [
                ("reports.row.fallback", fallback),
                ("reports.row.rejected", rejected),
                ("reports.row.long_waits", int(long_waits or 0)),
            ],
        )

    async def rejected_by_service(self) -> ReportTable:
        rows, _ = pool_small(await self._counts(self._service_name(), Case.status == "rejected"))
        return ReportTable(
            "reports.t.rejected", (Column("reports.c.service"), Column("reports.c.requests", "count")), rows
        )

    async def fallback_by_service(self) -> ReportTable:
        rows, _ = pool_small(await self._counts(self._service_name(), Case.routing_kind == "fallback"))
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


def _on_time(hours: Sequence[float]) -> float | None:
    if len(hours) < SMALL_COUNT:
        return None
    target = FIRST_RESPONSE_TARGET.total_seconds() / 3600
    return round(100 * sum(1 for h in hours if h <= target) / len(hours), 1)


def _aware(value: datetime) -> datetime:
    # Subquery values bypass the UtcDateTime column type: SQLite gives naive UTC (or a string).
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
