"""Who may see which report, the periods people choose, and the reports service handlers use.

A coordinator reports on the hromadas of the teams they coordinate; a member of an oblast
fallback team with the `oblast` role on every hromada of that oblast; an admin on all. The
scope is worked out again on every press: a button names a period, never a hromada.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Hromada, Team, TeamMember, Worker
from models.people import ROLE_COORDINATOR, ROLE_OBLAST
from services.clock import Clock
from services.errors import DomainError
from services.oversight import oversees_hromada
from services.report_tables import Period, ReportScope, ReportTable
from services.reports import SectionProvider, build_report

# The longest period one may ask for: a year (an oblast's year is still a bounded read).
MAX_PERIOD_DAYS = 366
EARLIEST = date(2020, 1, 1)
_RANGE = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*[-–—]+\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*$")
# Named periods a button may carry.
NAMED_PERIODS = ("w0", "w1", "m0", "m1")


class ReportRefused(DomainError):
    """Reports are for coordinators and the oblast level (`reports.not_allowed`); a period
    that is not one (`reports.bad_period`)."""

    prefix = "reports"
    code = "not_allowed"


@dataclass(frozen=True)
class ReportAccess:
    """Who may see which report: a coordinator's hromadas, or an oblast's."""

    scope: ReportScope
    oblast_level: bool


async def report_access(session: AsyncSession, worker: Worker) -> ReportAccess | None:
    """The widest scope the worker may report on; None for a plain worker.

    An `oblast` member of an oblast fallback team sees every hromada of that oblast; a
    coordinator sees the hromadas of the teams they coordinate; an admin sees everything."""
    if not worker.active:
        return None
    if worker.is_admin:
        ids = (await session.scalars(select(Hromada.id).order_by(Hromada.id))).all()
        return ReportAccess(ReportScope(tuple(ids)), oblast_level=True)
    rows = (
        await session.execute(
            select(
                TeamMember.role,
                # A partner agency's team reports on its hromada no more than it sees its cases.
                case((oversees_hromada(), Team.hromada_id), else_=None),
                Team.oblast,
                Team.is_oblast_fallback,
            )
            .join(Team, Team.id == TeamMember.team_id)
            .where(TeamMember.worker_id == worker.id)
        )
    ).all()
    oblasts = sorted({o for role, _h, o, fallback in rows if fallback and role == ROLE_OBLAST})
    if oblasts:
        ids = (
            await session.scalars(select(Hromada.id).where(Hromada.oblast.in_(oblasts)).order_by(Hromada.id))
        ).all()
        return ReportAccess(ReportScope(tuple(ids), oblast=oblasts[0]), oblast_level=True)
    hromadas = sorted({h for role, h, _o, _f in rows if role == ROLE_COORDINATOR and h is not None})
    if not hromadas:
        return None
    return ReportAccess(ReportScope(tuple(hromadas)), oblast_level=False)


class ReportService:
    def __init__(
        self, session: AsyncSession, clock: Clock, zone: tzinfo, extra: Sequence[SectionProvider] = ()
    ) -> None:
        self.session = session
        self.clock = clock
        self.zone = zone
        self.extra = extra

    def today(self) -> date:
        return self.clock.now().astimezone(self.zone).date()

    async def access(self, worker: Worker) -> ReportAccess:
        access = await report_access(self.session, worker)
        if access is None:
            raise ReportRefused()
        return access

    async def may_report(self, worker: Worker) -> bool:
        return await report_access(self.session, worker) is not None

    async def build(self, access: ReportAccess, period: Period, locale: str) -> list[ReportTable]:
        return await build_report(
            self.session, access.scope, period, self.zone, locale=locale, extra=self.extra
        )

    async def hromada_names(self, scope: ReportScope, locale: str) -> list[str]:
        name = Hromada.name_en if locale == "en" else Hromada.name_uk
        rows = await self.session.scalars(
            select(name).where(Hromada.id.in_(scope.hromada_ids)).order_by(name)
        )
        return list(rows.all())

    def named_period(self, name: str) -> Period:
        today = self.today()
        if name == "w0":
            return week_period(today)
        if name == "w1":
            return week_period(today, 1)
        if name == "m0":
            return month_period(today)
        if name == "m1":
            return month_period(today, 1)
        raise ReportRefused("bad_period")


def parse_period(text: str, today: date) -> Period | None:
    """ "dd.mm.yyyy–dd.mm.yyyy" (any dash) as a period of at most a year, not in the future."""
    match = _RANGE.match(text)
    if match is None:
        return None
    d1, m1, y1, d2, m2, y2 = (int(g) for g in match.groups())
    try:
        start, end = date(y1, m1, d1), date(y2, m2, d2)
    except ValueError:
        return None
    if end < start or start < EARLIEST or start > today or (end - start).days + 1 > MAX_PERIOD_DAYS:
        return None
    return Period(start, end)


def pack_period(period: Period) -> str:
    return f"{period.start:%Y%m%d}-{period.end:%Y%m%d}"


def unpack_period(value: str) -> Period:
    """A period a button carries; anything else is a refused (stale or forged) press."""
    match = re.fullmatch(r"(\d{8})-(\d{8})", value)
    if match is None:
        raise ReportRefused("bad_period")
    try:
        start = date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
        end = date(int(value[9:13]), int(value[13:15]), int(value[15:17]))
        period = Period(start, end)
    except ValueError:
        raise ReportRefused("bad_period") from None
    if period.days > MAX_PERIOD_DAYS or start < EARLIEST:
        raise ReportRefused("bad_period")
    return period


def week_period(today: date, weeks_back: int = 0) -> Period:
    """Monday to Sunday of this week (0) or of a week `weeks_back` weeks before it."""
    monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks_back)
    return Period(monday, monday + timedelta(days=6))


def month_period(today: date, months_back: int = 0) -> Period:
    year, month = today.year, today.month - months_back
    while month < 1:
        month += 12
        year -= 1
    start = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return Period(start, following - timedelta(days=1))
