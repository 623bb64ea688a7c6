"""The visit form's screens: a month calendar, the time windows of a day, a "skip" button;
and the buttons put on visit notices. Pure: values in, markup out."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from html import escape as html_escape

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import VisitCalCb

WINDOW_HOURS = tuple(range(8, 19))  # one-hour windows 08:00–09:00 … 18:00–19:00


def calendar_markup(case_id: int, visit_id: int, month: date, today: date) -> InlineKeyboardMarkup:
    """A month grid: past days are blank (noop), prev/next pages, today's month at most 12 ahead."""
    builder = InlineKeyboardBuilder()
    noop = VisitCalCb(action="noop", case_id=case_id, visit_id=visit_id)
    for name in _("visit.cal.weekdays").split():
        builder.button(text=name, callback_data=noop)
    first_weekday, days = calendar.monthrange(month.year, month.month)
    for _blank in range(first_weekday):
        builder.button(text=" ", callback_data=noop)
    for day in range(1, days + 1):
        current = month.replace(day=day)
        if current < today:
            builder.button(text="·", callback_data=noop)
        else:
            builder.button(
                text=str(day),
                callback_data=VisitCalCb(
                    action="day", case_id=case_id, visit_id=visit_id, value=f"{current:%Y%m%d}"
                ),
            )
    trailing = (-(first_weekday + days)) % 7
    for _blank in range(trailing):
        builder.button(text=" ", callback_data=noop)
    prev_month = (month.replace(day=1) - timedelta(days=1)).replace(day=1)
    next_month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    nav = []
    if prev_month >= today.replace(day=1):
        nav.append(
            (
                _("visit.btn.prev"),
                VisitCalCb(action="month", case_id=case_id, visit_id=visit_id, value=f"{prev_month:%Y%m}"),
            )
        )
    if next_month <= (today.replace(day=1) + timedelta(days=366)):
        nav.append(
            (
                _("visit.btn.next"),
                VisitCalCb(action="month", case_id=case_id, visit_id=visit_id, value=f"{next_month:%Y%m}"),
            )
        )
    for text, data in nav:
        builder.button(text=text, callback_data=data)
    rows = [7] * (1 + (first_weekday + days + trailing) // 7)
    if nav:
        rows.append(len(nav))
    builder.adjust(*rows)
    return builder.as_markup()


def calendar_title(number: str, month: date) -> str:
    return f"<b>{html_escape(number)}</b>\n" + _("visit.cal.title") % {"month": f"{month:%m.%Y}"}


def time_markup(case_id: int, visit_id: int, day: date, now_local: datetime) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for hour in WINDOW_HOURS:
        if day == now_local.date() and hour <= now_local.hour:
            continue
        builder.button(
            text=f"{hour:02d}:00–{hour + 1:02d}:00",
            callback_data=VisitCalCb(
                action="time", case_id=case_id, visit_id=visit_id, value=f"{day:%Y%m%d}{hour:02d}"
            ),
        )
    builder.button(
        text=_("visit.btn.back"),
        callback_data=VisitCalCb(action="month", case_id=case_id, visit_id=visit_id, value=f"{day:%Y%m}"),
    )
    builder.adjust(3)
    return builder.as_markup()


def skip_markup(case_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("visit.btn.skip"), callback_data=VisitCalCb(action="skip", case_id=case_id))
    return builder.as_markup()
