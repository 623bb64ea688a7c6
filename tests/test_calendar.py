"""Working-calendar arithmetic (services/calendar.py): lunch breaks, weekends, public holidays on
and off, dated exceptions, daylight saving time, and properties checked by hypothesis."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.calendar import (
    STANDARD_WEEK,
    CalendarError,
    WorkingCalendar,
    parse_periods,
    parse_week,
)

KYIV = ZoneInfo("Europe/Kyiv")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=KYIV)  # type: ignore[misc]


def calendar(**kwargs) -> WorkingCalendar:
    return WorkingCalendar(week=STANDARD_WEEK, zone=KYIV, **kwargs)


def test_friday_evening_rolls_over_the_weekend() -> None:
    cal = calendar()
    # 16:55: five minutes left on Friday, the other 55 on Monday morning.
    assert cal.add_working(local(2026, 11, 27, 16, 55), timedelta(hours=1)) == local(2026, 11, 30, 8, 55)
    # 17:55: the office is closed, the hour starts on Monday.
    assert cal.add_working(local(2026, 11, 27, 17, 55), timedelta(hours=1)) == local(2026, 11, 30, 9, 0)
    assert cal.next_working(local(2026, 11, 27, 17, 55)) == local(2026, 11, 30, 8, 0)


def test_lunch_break_is_not_working_time() -> None:
    cal = calendar()
    assert cal.add_working(local(2026, 12, 2, 11, 30), timedelta(hours=1)) == local(2026, 12, 2, 13, 30)
    assert not cal.is_working(local(2026, 12, 2, 12, 30))
    assert cal.next_working(local(2026, 12, 2, 12, 30)) == local(2026, 12, 2, 13, 0)
    assert cal.working_between(local(2026, 12, 2, 11, 0), local(2026, 12, 2, 14, 0)) == timedelta(hours=2)


def test_deadline_at_closing_time_stays_that_day() -> None:
    cal = calendar()
    assert cal.add_working(local(2026, 12, 2, 16, 0), timedelta(hours=1)) == local(2026, 12, 2, 17, 0)


def test_public_holiday_is_skipped_unless_switched_off() -> None:
    # 24.08.2021 (Independence Day, Tuesday) and the bridge day 23.08 were days off before
    # martial law; the `holidays` package knows both.
    friday_evening = local(2021, 8, 20, 16, 0)
    with_holidays = calendar(public_holidays=True)
    assert not with_holidays.is_working_day(date(2021, 8, 24))
    assert not with_holidays.is_working_day(date(2021, 8, 23))
    assert with_holidays.add_working(friday_evening, timedelta(hours=2)) == local(2021, 8, 25, 9, 0)
    martial_law = calendar(public_holidays=False)
    assert martial_law.add_working(friday_evening, timedelta(hours=2)) == local(2021, 8, 23, 9, 0)
    # Since 2022 the package lists no public holidays (martial law): 24.08.2026 is a working day.
    assert with_holidays.is_working_day(date(2026, 8, 24))


def test_dated_exception_closes_or_shortens_a_day() -> None:
    cal = calendar(
        exceptions={date(2026, 12, 31): ((time(8), time(13)),), date(2026, 12, 30): ()},
    )
    assert not cal.is_working_day(date(2026, 12, 30))
    start = local(2026, 12, 29, 16, 0)
    # 1 h on the 29th, nothing on the 30th, 08:00–13:00 on the 31st.
    assert cal.add_working(start, timedelta(hours=3)) == local(2026, 12, 31, 10, 0)
    assert cal.add_working(start, timedelta(hours=7)) == local(2027, 1, 1, 9, 0)


def test_exception_opens_a_saturday() -> None:
    cal = calendar(exceptions={date(2026, 12, 5): ((time(9), time(12)),)})
    assert cal.add_working(local(2026, 12, 4, 17, 0), timedelta(hours=1)) == local(2026, 12, 5, 10, 0)


def test_dst_spring_forward_and_fall_back_keep_wall_clock_hours() -> None:
    cal = calendar()
    # Kyiv moves to summer time on Sunday 29.03.2026: Friday 16:00 + 2 h is Monday 09:00 local.
    assert cal.add_working(local(2026, 3, 27, 16, 0), timedelta(hours=2)) == local(2026, 3, 30, 9, 0)
    # Back on Sunday 25.10.2026: a whole Monday is still eight hours.
    assert cal.working_between(local(2026, 10, 23, 0, 0), local(2026, 10, 27, 0, 0)) == timedelta(hours=16)
    monday = cal.intervals_on(date(2026, 10, 26))[0][0]
    assert monday == datetime(2026, 10, 26, 6, 0, tzinfo=UTC)  # 08:00 at UTC+2
    friday = cal.intervals_on(date(2026, 10, 23))[0][0]
    assert friday == datetime(2026, 10, 23, 5, 0, tzinfo=UTC)  # 08:00 at UTC+3


def test_subtract_is_the_inverse_of_add() -> None:
    cal = calendar()
    start = local(2026, 12, 4, 16, 30)
    due = cal.add_working(start, timedelta(hours=10))
    assert cal.subtract_working(due, timedelta(hours=10)) == start
    assert cal.working_between(start, due) == timedelta(hours=10)
    assert cal.add_working(due, -timedelta(hours=10)) == start


def test_parse_week_and_periods() -> None:
    week = parse_week({"mon-fri": ["08:00-12:00", "13:00-17:00"], "fri": ["08:00-15:45"]})
    assert week[0] == ((time(8), time(12)), (time(13), time(17)))
    assert week[4] == ((time(8), time(15, 45)),)
    assert 5 not in week
    assert parse_periods("closed") == ()
    with pytest.raises(CalendarError):
        parse_periods(["12:00-08:00"])
    with pytest.raises(CalendarError):
        parse_periods(["08:00-12:00", "11:00-14:00"])
    with pytest.raises(CalendarError):
        parse_week({"someday": []})


def test_calendar_without_working_days_refuses() -> None:
    with pytest.raises(CalendarError):
        WorkingCalendar(week={}, zone=KYIV).add_working(local(2026, 1, 1), timedelta(hours=1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        calendar().add_working(datetime(2026, 1, 1, 9), timedelta(hours=1))


# -- properties ------------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2021, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
amounts = st.integers(min_value=0, max_value=60 * 80).map(lambda m: timedelta(minutes=m))
CALENDARS = [
    calendar(public_holidays=True),
    calendar(public_holidays=False, exceptions={date(2026, 12, 31): ((time(8), time(13)),)}),
    WorkingCalendar(week=parse_week({"mon-sat": ["07:30-11:00", "11:45-16:15"]}), zone=KYIV),
]
calendars = st.sampled_from(CALENDARS)


@settings(max_examples=300, deadline=None)
@given(cal=calendars, start=moments, amount=amounts)
def test_deadline_never_lands_in_non_working_time(cal: WorkingCalendar, start: datetime, amount) -> None:
    due = cal.add_working(start, amount)
    if amount:
        # The last moment before the deadline is working time (a deadline may be a closing time).
        assert cal.is_working(due - timedelta(microseconds=1))
        assert cal.working_between(start, due) == amount
    assert due >= start


@settings(max_examples=200, deadline=None)
@given(cal=calendars, start=moments, a=amounts, b=amounts)
def test_more_working_time_never_gives_an_earlier_deadline(cal, start, a, b) -> None:
    small, big = sorted((a, b))
    assert cal.add_working(start, small) <= cal.add_working(start, big)


@settings(max_examples=200, deadline=None)
@given(cal=calendars, a=moments, b=moments)
def test_working_between_is_additive_and_bounded(cal, a, b) -> None:
    a, b = sorted((a, b))
    between = cal.working_between(a, b)
    assert timedelta(0) <= between <= b - a
    middle = a + (b - a) / 2
    assert cal.working_between(a, middle) + cal.working_between(middle, b) == between
