"""Report views shared by the coordinator's router and the weekly notice: the short summary
text, number formats, and the menus. Pure functions of report tables and plain values."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import ReportCb
from services.report_exports import cell_text
from services.report_tables import Period, ReportTable
from services.report_weekly import summary_values
from services.reports import LONG_WAIT_DAYS

NONE = "—"
# How many rows of a table the summary lists (the rest are in the charts and the workbook).
SUMMARY_ROWS = 5


def translate(key: str) -> str:
    return _(key)


def report_number(value: Any, locale: str) -> str:
    """A published figure: "<5", an integer, or one decimal (a decimal comma in Ukrainian)."""
    if value is None:
        return NONE
    if isinstance(value, float):
        text = f"{value:.1f}".removesuffix(".0")
        return text if locale == "en" else text.replace(".", ",")
    return html.escape(str(value))


def period_text(period: Period) -> str:
    return f"{period.start:%d.%m.%Y}–{period.end:%d.%m.%Y}"


def period_markup() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for name in ("w0", "w1", "m0", "m1"):
        builder.button(text=_(f"reports.period.{name}"), callback_data=ReportCb(action="period", value=name))
    builder.button(text=_("reports.period.custom"), callback_data=ReportCb(action="custom"))
    builder.adjust(2, 2, 1)
    return builder.as_markup()


def export_markup(packed_period: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("reports.btn.xlsx"), callback_data=ReportCb(action="xlsx", value=packed_period))
    builder.button(text=_("reports.btn.csv"), callback_data=ReportCb(action="csv", value=packed_period))
    builder.button(text=_("reports.btn.other_period"), callback_data=ReportCb(action="menu"))
    builder.adjust(2, 1)
    return builder.as_markup()


def figures_text(figures: Mapping[str, Any], locale: str) -> str:
    values = {k: report_number(figures.get(k), locale) for k in REPORT_FIGURES}
    return _("reports.summary.figures") % {**values, "days": LONG_WAIT_DAYS}


REPORT_FIGURES = (
    "requests",
    "fallback",
    "rejected",
    "long_waits",
    "visits_done",
    "lookups",
    "first_median",
    "first_p90",
    "on_time",
    "resolution_median",
    "resolution_p90",
)


def _top_rows(table: ReportTable, locale: str) -> list[str]:
    lines = []
    for row in table.published()[:SUMMARY_ROWS]:
        label = html.escape(str(cell_text(row[0], translate)))
        lines.append(f"• {label} — {report_number(row[1], locale)}")
    return lines


def summary_text(tables: Sequence[ReportTable], period: Period, place: str, locale: str) -> str:
    """The short summary: period and place, the main figures, the largest services and
    settlements. Everything else is in the charts and the exports."""
    by_key = {t.key: t for t in tables}
    lines = [_("reports.summary.title") % {"period": period_text(period), "place": html.escape(place)}, ""]
    lines.append(figures_text(summary_values(tables), locale))
    for key in ("reports.t.by_service", "reports.t.by_settlement"):
        rows = _top_rows(by_key[key], locale)
        if rows:
            lines += ["", f"<b>{html.escape(_(key))}</b>", *rows]
    return "\n".join(lines)
