"""Scheduling home visits from the case card, moving/cancelling them, documents received (issue 4).

Flow: VisitNewCb → month calendar (prev/next) → day → time window → who comes (text or skip)
→ what to prepare (text or skip) → VisitService.schedule. Moving a visit reuses the calendar and
stops after the time. Every press re-checks that the presser may act on the case.
"""

from __future__ import annotations

import calendar
import html
from datetime import date, datetime, time, timedelta
from typing import Any

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler import DeliveryRuntime, kick
from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import DocsReceivedCb, VisitAnswerCb, VisitCalCb, VisitNewCb, VisitWorkerCb
from handlers.kit.filters import prune_callbacks
from handlers.kit.steps import typed_text
from infra.settings import Settings
from models import DocumentRequest, User, Worker
from services.clock import Clock
from services.documents import DocumentError, DocumentService
from services.reminders import ReminderRules
from services.visits import PREPARE_MAX, WHO_MAX, VisitError, VisitService
from services.workers import WorkerService

WINDOW_HOURS = tuple(range(8, 19))  # one-hour windows 08:00–09:00 … 18:00–19:00


class VisitForm(StatesGroup):
    who = State()
    prepare = State()


def resident_buttons(visit_id: int) -> list[list[list[str]]]:
    return [
        [
            ["visit.btn.confirm", VisitAnswerCb(action="confirm", visit_id=visit_id).pack()],
            ["visit.btn.reschedule", VisitAnswerCb(action="reschedule", visit_id=visit_id).pack()],
        ],
        [["visit.btn.cancel", VisitAnswerCb(action="cancel", visit_id=visit_id).pack()]],
    ]


def worker_buttons(visit_id: int) -> list[list[list[str]]]:
    return [
        [
            ["visit.btn.move", VisitWorkerCb(action="move", visit_id=visit_id).pack()],
            ["visit.btn.cancel_worker", VisitWorkerCb(action="cancel", visit_id=visit_id).pack()],
        ]
    ]


def _rules(settings: Settings) -> ReminderRules:
    return ReminderRules.from_settings(settings)


async def _worker(session: AsyncSession, user: User | None) -> Worker | None:
    if user is None:
        return None
    worker = await WorkerService(session).worker_for(user)
    return worker if worker is not None and worker.active else None


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


def _time_markup(case_id: int, visit_id: int, day: date, now_local: datetime) -> InlineKeyboardMarkup:
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


def _skip_markup(case_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("visit.btn.skip"), callback_data=VisitCalCb(action="skip", case_id=case_id))
    return builder.as_markup()


async def start_new(
    query: CallbackQuery,
    callback_data: VisitNewCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    state: FSMContext,
) -> None:
    worker = await _worker(session, user)
    if worker is None:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    try:
        case = await VisitService(session, clock, _rules(settings)).case_for_worker(
            worker, callback_data.case_id
        )
    except VisitError as exc:
        await query.answer(_(f"visit.error.{exc.code}"), show_alert=True)
        return
    await state.set_state(None)
    today = _rules(settings).local(clock.now()).date()
    await query.answer()
    await query.message.answer(
        f"<b>{html.escape(case.number)}</b>\n" + _("visit.cal.title") % {"month": f"{today:%m.%Y}"},
        reply_markup=calendar_markup(case.id, 0, today.replace(day=1), today),
    )


async def on_calendar(
    query: CallbackQuery,
    callback_data: VisitCalCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    state: FSMContext,
    delivery: DeliveryRuntime | None = None,
) -> None:
    rules = _rules(settings)
    worker = await _worker(session, user)
    if worker is None:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    visits = VisitService(session, clock, rules)
    try:
        if callback_data.visit_id:
            visit, case = await visits.visit_for_worker(worker, callback_data.visit_id)
            if visit.case_id != callback_data.case_id:
                raise VisitError("not_found")
        else:
            case = await visits.case_for_worker(worker, callback_data.case_id)
    except VisitError as exc:
        await query.answer(_(f"visit.error.{exc.code}"), show_alert=True)
        return
    now_local = rules.local(clock.now())
    today = now_local.date()
    action, value = callback_data.action, callback_data.value
    if action == "noop":
        await query.answer()
        return
    if action == "month":
        try:
            month = datetime.strptime(value, "%Y%m").date()
        except ValueError:
            await query.answer(_("errors.stale_button"), show_alert=True)
            return
        month = max(month, today.replace(day=1))
        await query.answer()
        await query.message.edit_text(
            f"<b>{html.escape(case.number)}</b>\n" + _("visit.cal.title") % {"month": f"{month:%m.%Y}"},
            reply_markup=calendar_markup(case.id, callback_data.visit_id, month, today),
        )
        return
    if action == "day":
        try:
            day = datetime.strptime(value, "%Y%m%d").date()
        except ValueError:
            day = None
        if day is None or day < today:
            await query.answer(_("visit.error.in_past"), show_alert=True)
            return
        await query.answer()
        await query.message.edit_text(
            _("visit.ask_time") % {"date": f"{day:%d.%m.%Y}"},
            reply_markup=_time_markup(case.id, callback_data.visit_id, day, now_local),
        )
        return
    if action == "time":
        try:
            moment = datetime.strptime(value, "%Y%m%d%H")
        except ValueError:
            await query.answer(_("errors.stale_button"), show_alert=True)
            return
        starts = rules.at_local(moment.date(), time(moment.hour))
        ends = starts + timedelta(hours=1)
        if callback_data.visit_id:
            try:
                visit = await visits.reschedule(visit, case, worker, starts, ends)
            except VisitError as exc:
                await query.answer(_(f"visit.error.{exc.code}"), show_alert=True)
                return
            kick(delivery)
            await query.answer()
            await query.message.edit_text(_("visit.rescheduled") % _summary(visits, visit, case.number))
            return
        if starts <= clock.now():
            await query.answer(_("visit.error.in_past"), show_alert=True)
            return
        await state.set_state(VisitForm.who)
        await state.update_data(
            visit_case=case.id, visit_starts=starts.isoformat(), visit_ends=ends.isoformat()
        )
        await query.answer()
        await query.message.edit_text(_("visit.ask_who"), reply_markup=_skip_markup(case.id))
        return
    if action == "skip":
        current = await state.get_state()
        data = await state.get_data()
        if data.get("visit_case") != case.id or current not in (VisitForm.who.state, VisitForm.prepare.state):
            await query.answer(_("errors.stale_button"), show_alert=True)
            return
        await query.answer()
        await query.message.edit_reply_markup(reply_markup=None)
        if current == VisitForm.who.state:
            await state.update_data(visit_who="")
            await state.set_state(VisitForm.prepare)
            await query.message.answer(_("visit.ask_prepare"), reply_markup=_skip_markup(case.id))
            return
        await _finish(query.message, session, user, clock, settings, state, prepare="", delivery=delivery)
        return
    await query.answer(_("errors.stale_button"), show_alert=True)


async def on_who(message: Message, state: FSMContext) -> None:
    text = await typed_text(message, WHO_MAX, "visit.error.who_too_long")
    if text is None:
        return
    data = await state.get_data()
    await state.update_data(visit_who=text)
    await state.set_state(VisitForm.prepare)
    await message.answer(_("visit.ask_prepare"), reply_markup=_skip_markup(int(data.get("visit_case", 0))))


async def on_prepare(
    message: Message,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    state: FSMContext,
    delivery: DeliveryRuntime | None = None,
) -> None:
    text = await typed_text(message, PREPARE_MAX, "visit.error.prepare_too_long")
    if text is None:
        return
    await _finish(message, session, user, clock, settings, state, prepare=text, delivery=delivery)


async def _finish(
    message: Message,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    state: FSMContext,
    *,
    prepare: str,
    delivery: DeliveryRuntime | None = None,
) -> None:
    data = await state.get_data()
    worker = await _worker(session, user)
    visits = VisitService(session, clock, _rules(settings))
    try:
        if worker is None:
            raise VisitError("not_found")
        case = await visits.case_for_worker(worker, int(data.get("visit_case", 0)))
        starts = datetime.fromisoformat(data["visit_starts"])
        ends = datetime.fromisoformat(data["visit_ends"])
        visit = await visits.schedule(case, worker, starts, ends, data.get("visit_who", ""), prepare)
    except VisitError as exc:
        await state.set_state(None)
        await message.answer(_(f"visit.error.{exc.code}"))
        return
    except (KeyError, ValueError):
        await state.set_state(None)
        await message.answer(_("errors.stale_button"))
        return
    await state.set_state(None)
    await state.set_data({k: v for k, v in data.items() if not k.startswith("visit_")})
    kick(delivery)
    await message.answer(_("visit.scheduled") % _summary(visits, visit, case.number))


def _summary(visits: VisitService, visit: Any, number: str) -> dict[str, str]:
    view = visits.view(visit, number, "")
    return {
        "date": view.date,
        "time_from": view.time_from,
        "time_to": view.time_to,
        "number": html.escape(number),
    }


async def on_visit_action(
    query: CallbackQuery,
    callback_data: VisitWorkerCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    delivery: DeliveryRuntime | None = None,
) -> None:
    rules = _rules(settings)
    worker = await _worker(session, user)
    visits = VisitService(session, clock, rules)
    try:
        if worker is None:
            raise VisitError("not_found")
        visit, case = await visits.visit_for_worker(worker, callback_data.visit_id)
        if callback_data.action == "move":
            if visit.status in ("cancelled", "done"):
                raise VisitError("not_open")
            today = rules.local(clock.now()).date()
            await query.answer()
            await query.message.answer(
                f"<b>{html.escape(case.number)}</b>\n" + _("visit.cal.title") % {"month": f"{today:%m.%Y}"},
                reply_markup=calendar_markup(case.id, visit.id, today.replace(day=1), today),
            )
            return
        if callback_data.action == "cancel":
            await visits.cancel_by_worker(visit, case, worker)
            kick(delivery)
            await query.answer(_("visit.cancelled_by_worker"), show_alert=True)
            await query.message.edit_reply_markup(reply_markup=None)
            return
    except VisitError as exc:
        await query.answer(_(f"visit.error.{exc.code}"), show_alert=True)
        return
    await query.answer(_("errors.stale_button"), show_alert=True)


async def on_docs_received(
    query: CallbackQuery,
    callback_data: DocsReceivedCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
) -> None:
    worker = await _worker(session, user)
    request = await session.get(DocumentRequest, callback_data.request_id)
    try:
        if worker is None or request is None:
            raise VisitError("not_found")
        await VisitService(session, clock, _rules(settings)).case_for_worker(worker, request.case_id)
    except VisitError:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    try:
        await DocumentService(session, clock, _rules(settings)).mark_received(request.id, worker)
    except DocumentError as exc:
        await query.answer(_(f"docs.error.{exc.code}"), show_alert=True)
        return
    await query.answer(_("docs.received_done"), show_alert=True)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, VisitNewCb, VisitCalCb, VisitWorkerCb, DocsReceivedCb)
    router.callback_query.register(start_new, VisitNewCb.filter())
    router.callback_query.register(on_calendar, VisitCalCb.filter())
    router.callback_query.register(on_visit_action, VisitWorkerCb.filter())
    router.callback_query.register(on_docs_received, DocsReceivedCb.filter())
    router.message.register(on_who, StateFilter(VisitForm.who))
    router.message.register(on_prepare, StateFilter(VisitForm.prepare))
    return router
