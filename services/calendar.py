"""Working time: the calendar that every SLA deadline is counted on.

A `WorkingCalendar` is pure (no database): local working periods per weekday (several a day, so
a lunch break is a gap), public holidays of Ukraine from the `holidays` package (switched off as
a whole when the hromada works on holidays, as under martial law — the package already leaves out
the holidays suspended since 2022), and dated exceptions that win over both (a date closed, or
open with its own periods). Periods are local wall-clock times in the settings' zone, so a
deadline moves with daylight saving time the way office hours do.

Arithmetic works on UTC instants: `add_working(start, 8h)` is the moment eight working hours after
`start`; it lands on working time (at most at a period's closing moment, never in a gap).
`load_calendar` builds a team's calendar from the reference data (the team's own week, else the
default one).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any

import holidays
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import WorkCalendar

WorkPeriod = tuple[time, time]
DayPeriods = tuple[WorkPeriod, ...]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_CALENDAR_CODE = "default"
# A calendar with no working day in this many days is broken; refuse instead of looping.
SEARCH_DAYS = 3 * 366
ZERO = timedelta(0)


class CalendarError(ValueError):
    """A week or exception that cannot be a working calendar."""


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("UA", years=year, categories=("public",)))


@dataclass(frozen=True)
class WorkingCalendar:
    # weekday (0 = Monday) → local periods, sorted, not overlapping; a missing day is a day off.
    week: Mapping[int, DayPeriods]
    zone: tzinfo
    public_holidays: bool = True
    # A dated exception wins over holidays and the week: () closes the day.
    exceptions: Mapping[date, DayPeriods] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for periods in (*self.week.values(), *self.exceptions.values()):
            _check_periods(periods)

    # -- days ----------------------------------------------------------------------------------
    def periods_on(self, day: date) -> DayPeriods:
        if day in self.exceptions:
            return self.exceptions[day]
        if self.public_holidays and day in _public_holidays(day.year):
            return ()
        return self.week.get(day.weekday(), ())

    def is_working_day(self, day: date) -> bool:
        return bool(self.periods_on(day))

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's working periods as UTC instants [start, end)."""
        return [(self._utc(day, start), self._utc(day, end)) for start, end in self.periods_on(day)]

    def _utc(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.zone).astimezone(UTC)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def _forward(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that end after `at`, in order (the first may have begun before)."""
        day = self.local_date(at) - timedelta(days=1)  # a period may cross the date line in UTC
        for _ in range(SEARCH_DAYS):
            for start, end in self.intervals_on(day):
                if end > at:
                    yield start, end
            day += timedelta(days=1)
        raise CalendarError("no working time within the search horizon")

    def _backward(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals that begin before `at`, newest first."""
        day = self.local_date(at) + timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            for start, end in reversed(self.intervals_on(day)):
                if start < at:
                    yield start, end
            day -= timedelta(days=1)
        raise CalendarError("no working time within the search horizon")

    # -- instants ------------------------------------------------------------------------------
    def is_working(self, at: datetime) -> bool:
        return any(start <= at < end for start, end in self.intervals_on(self.local_date(at)))

    def next_working(self, at: datetime) -> datetime:
        """`at` if it is working time, else the start of the next working period."""
        start, _ = next(self._forward(at))
        return max(start, at)

    def add_working(self, start: datetime, amount: timedelta) -> datetime:
        """The moment `amount` of working time after `start` (`amount` < 0 goes back)."""
        _aware(start)
        if amount < ZERO:
            return self.subtract_working(start, -amount)
        if amount == ZERO:
            return start
        left = amount
        for begin, end in self._forward(start):
            begin = max(begin, start)
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise AssertionError("unreachable")  # pragma: no cover

    def subtract_working(self, end: datetime, amount: timedelta) -> datetime:
        """The moment `amount` of working time before `end`."""
        _aware(end)
        if amount <= ZERO:
            return end
        left = amount
        for begin, finish in self._backward(end):
            finish = min(finish, end)
            if finish - begin >= left:
                return finish - left
            left -= finish - begin
        raise AssertionError("unreachable")  # pragma: no cover

    def working_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in [a, b); negative when b is before a."""
        _aware(a)
        _aware(b)
        if b < a:
            return -self.working_between(b, a)
        total = ZERO
        day, last = self.local_date(a) - timedelta(days=1), self.local_date(b) + timedelta(days=1)
        while day <= last:
            for begin, end in self.intervals_on(day):
                if end > a and begin < b:
                    total += min(end, b) - max(begin, a)
            day += timedelta(days=1)
        return total

    def working_days_between(self, a: datetime, b: datetime) -> int:
        """Whole working days from a's local date to b's (0 on the same day), b after a."""
        day, last, count = self.local_date(a), self.local_date(b), 0
        while day < last and count < SEARCH_DAYS:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def day_length(self, day: date) -> timedelta:
        return sum((end - start for start, end in self.intervals_on(day)), ZERO)


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("calendar arithmetic needs aware datetimes")


def _check_periods(periods: DayPeriods) -> None:
    previous = time.min
    for start, end in periods:
        if not start < end or start < previous:
            raise CalendarError("periods must be increasing and not overlap")
        previous = end


# -- from reference data -------------------------------------------------------------------------


def parse_periods(raw: Any) -> DayPeriods:
    """`["08:00-12:00", "13:00-17:00"]` (or "closed"/[]) → periods."""
    if raw in (None, "closed", "off"):
        return ()
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",")]
    if not isinstance(raw, list):
        raise CalendarError("periods must be a list like ['08:00-12:00', '13:00-17:00']")
    periods: list[WorkPeriod] = []
    for item in raw:
        try:
            start_text, end_text = str(item).split("-")
            periods.append((time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())))
        except ValueError as exc:
            raise CalendarError(f"bad period {item!r}: expected HH:MM-HH:MM") from exc
    result = tuple(periods)
    _check_periods(result)
    return result


def parse_week(raw: Any) -> dict[int, DayPeriods]:
    """`{mon: [...], ..., "mon-fri": [...]}` → weekday → periods (later keys win)."""
    if not isinstance(raw, dict):
        raise CalendarError("week hours must be a mapping of weekdays to periods")
    week: dict[int, DayPeriods] = {}
    for key, value in raw.items():
        first, _, last = str(key).lower().partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise CalendarError(f"unknown weekday {key!r}")
        days = range(WEEKDAYS.index(first), WEEKDAYS.index(last or first) + 1)
        for weekday in days:
            week[weekday] = parse_periods(value)
    return week


def week_to_json(week: Mapping[int, DayPeriods]) -> dict[str, list[str]]:
    return {
        WEEKDAYS[day]: [f"{s:%H:%M}-{e:%H:%M}" for s, e in periods] for day, periods in sorted(week.items())
    }


def exceptions_to_json(exceptions: Mapping[date, DayPeriods]) -> dict[str, list[str]]:
    return {
        day.isoformat(): [f"{s:%H:%M}-{e:%H:%M}" for s, e in periods]
        for day, periods in sorted(exceptions.items())
    }


def calendar_from_json(
    week: Mapping[str, Any], exceptions: Mapping[str, Any], public_holidays: bool, zone: tzinfo
) -> WorkingCalendar:
    return WorkingCalendar(
        week=parse_week(dict(week)),
        zone=zone,
        public_holidays=public_holidays,
        exceptions={date.fromisoformat(day): parse_periods(periods) for day, periods in exceptions.items()},
    )


# Office hours when the reference data names none: Monday to Friday with a lunch break.
STANDARD_WEEK: dict[int, DayPeriods] = {day: ((time(8), time(12)), (time(13), time(17))) for day in range(5)}


async def load_calendar(session: AsyncSession, team_id: int | None, zone: tzinfo) -> WorkingCalendar:
    """The team's calendar: its own week if it has one, else the default week; holidays and
    dated exceptions always come from the default calendar."""
    rows = {
        row.code: row
        for row in (
            await session.scalars(
                select(WorkCalendar).where(
                    (WorkCalendar.code == DEFAULT_CALENDAR_CODE)
                    | (WorkCalendar.team_id == team_id if team_id is not None else False)
                )
            )
        ).all()
    }
    default = rows.pop(DEFAULT_CALENDAR_CODE, None)
    source = next(iter(rows.values()), None) or default
    week = source.week if source is not None else None
    return WorkingCalendar(
        week=parse_week(week) if week else STANDARD_WEEK,
        zone=zone,
        public_holidays=default.public_holidays if default is not None else True,
        exceptions={
            date.fromisoformat(day): parse_periods(periods)
            for day, periods in (default.exceptions if default is not None else {}).items()
        },
    )


async def team_calendars(session: AsyncSession, zone: tzinfo) -> dict[int | None, WorkingCalendar]:
    """Every team with its own week → its calendar, and None → the default one (for sweeps)."""
    default = await load_calendar(session, None, zone)
    calendars: dict[int | None, WorkingCalendar] = {None: default}
    for row in (await session.scalars(select(WorkCalendar).where(WorkCalendar.team_id.is_not(None)))).all():
        if row.team_id is not None:
            calendars[row.team_id] = WorkingCalendar(
                week=parse_week(row.week),
                zone=zone,
                public_holidays=default.public_holidays,
                exceptions=default.exceptions,
            )
    return calendars
