"""Reports for coordinators and the oblast level: /reports or "📊 Звіти" in the worker panel →
a period (this or last week or month, or typed dates) → the short summary, charts as photos,
and buttons for the XLSX workbook and the CSV files.

Each press works out the presser's scope again (services/report_service.py); a button carries
only a period. Charts and workbooks are drawn in a worker thread so the event loop keeps
answering other people meanwhile.
"""

from __future__ import annotations

import asyncio

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import ReportCb
from handlers.kit.filters import ActiveWorker, NotCommand, NotMenuButton, PlainText, prune_callbacks
from handlers.kit.reports import export_markup, period_markup, period_text, summary_text, translate
from models import Worker
from services.hub import Services
from services.report_charts import bar_chart_png
from services.report_exports import csv_zip_bytes, xlsx_bytes
from services.report_service import (
    NAMED_PERIODS,
    ReportAccess,
    ReportRefused,
    pack_period,
    parse_period,
    unpack_period,
)
from services.report_tables import Period, ReportTable

# The sections drawn as charts, in this order.
CHART_TABLES = ("reports.t.by_service", "reports.t.by_settlement")


class ReportForm(StatesGroup):
    period = State()  # waiting for "dd.mm.yyyy–dd.mm.yyyy"


async def menu(message: Message, services: Services, worker: Worker) -> None:
    await services.reports.access(worker)
    await message.answer(_("reports.choose_period"), reply_markup=period_markup())


async def menu_button(query: CallbackQuery, services: Services, worker: Worker) -> None:
    await services.reports.access(worker)
    if isinstance(query.message, Message):
        await query.message.answer(_("reports.choose_period"), reply_markup=period_markup())


async def named(
    query: CallbackQuery, callback_data: ReportCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    access = await services.reports.access(worker)
    period = services.reports.named_period(callback_data.value)
    if isinstance(query.message, Message):
        await _send_report(query.message, services, access, period, i18n.current_locale)


async def open_period(
    query: CallbackQuery, callback_data: ReportCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    """The weekly notice's "open the report" button."""
    access = await services.reports.access(worker)
    if isinstance(query.message, Message):
        await _send_report(
            query.message, services, access, unpack_period(callback_data.value), i18n.current_locale
        )


async def ask_custom(query: CallbackQuery, services: Services, worker: Worker, state: FSMContext) -> None:
    await services.reports.access(worker)
    await state.set_state(ReportForm.period)
    if isinstance(query.message, Message):
        await query.message.answer(_("reports.ask_dates"))


async def custom_step(
    message: Message, services: Services, worker: Worker, state: FSMContext, i18n: I18n
) -> None:
    access = await services.reports.access(worker)
    period = parse_period(message.text or "", services.reports.today())
    if period is None:
        await message.answer(_("reports.error.dates"))
        return
    await state.clear()
    await _send_report(message, services, access, period, i18n.current_locale)


async def custom_not_text(message: Message) -> None:
    await message.answer(_("reports.error.not_text"))


async def export(
    query: CallbackQuery, callback_data: ReportCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    access = await services.reports.access(worker)
    period = unpack_period(callback_data.value)
    tables = await services.reports.build(access, period, i18n.current_locale)
    if not isinstance(query.message, Message):
        return
    stem = f"report_{period.start:%Y%m%d}_{period.end:%Y%m%d}"
    if callback_data.action == "xlsx":
        content = await asyncio.to_thread(xlsx_bytes, tables, translate)
        name = f"{stem}.xlsx"
    else:
        content = await asyncio.to_thread(csv_zip_bytes, tables, translate)
        name = f"{stem}_csv.zip"
    await query.message.answer_document(
        BufferedInputFile(content, filename=name),
        caption=_("reports.export_caption") % {"period": period_text(period)},
    )


async def _send_report(
    message: Message, services: Services, access: ReportAccess, period: Period, locale: str
) -> None:
    tables = await services.reports.build(access, period, locale)
    place = await _place(services, access, locale)
    await message.answer(summary_text(tables, period, place, locale))
    charts = await asyncio.to_thread(_charts, tables)
    for png in charts:
        await message.answer_photo(BufferedInputFile(png, filename="report.png"))
    await message.answer(_("reports.exports"), reply_markup=export_markup(pack_period(period)))


def _charts(tables: list[ReportTable]) -> list[bytes]:
    by_key = {t.key: t for t in tables}
    charts = []
    for key in CHART_TABLES:
        png = bar_chart_png(by_key[key], translate, title=translate(key))
        if png is not None:
            charts.append(png)
    return charts


async def _place(services: Services, access: ReportAccess, locale: str) -> str:
    names = await services.reports.hromada_names(access.scope, locale)
    if access.oblast_level:
        return _("reports.place.oblast") % {"count": len(names)}
    return ", ".join(names)


async def not_allowed(message: Message) -> None:
    raise ReportRefused()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, ReportCb)
    router.message.register(menu, Command("reports"), ActiveWorker())
    router.message.register(not_allowed, Command("reports"))
    router.message.register(custom_step, StateFilter(ReportForm.period), PlainText(), ActiveWorker())
    router.message.register(custom_not_text, StateFilter(ReportForm.period), NotCommand(), NotMenuButton())
    router.callback_query.register(menu_button, ReportCb.filter(F.action == "menu"), ActiveWorker())
    router.callback_query.register(
        named, ReportCb.filter((F.action == "period") & F.value.in_(NAMED_PERIODS)), ActiveWorker()
    )
    router.callback_query.register(open_period, ReportCb.filter(F.action == "open"), ActiveWorker())
    router.callback_query.register(ask_custom, ReportCb.filter(F.action == "custom"), ActiveWorker())
    router.callback_query.register(export, ReportCb.filter(F.action.in_({"xlsx", "csv"})), ActiveWorker())
    return router
