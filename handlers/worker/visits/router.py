"""Scheduling home visits from the case card, moving and cancelling them.

Flow: VisitNewCb → month calendar (prev/next) → day → time window → who comes (text or skip)
→ what to prepare (text or skip) → VisitService.schedule. Moving a visit reuses the calendar and
stops after the time. Every press re-checks that the presser may act on the case."""

from __future__ import annotations

import html
from datetime import datetime, time, timedelta
from typing import Any

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import VisitCalCb, VisitNewCb, VisitWorkerCb
from handlers.kit.filters import Action, ActiveWorker, prune_callbacks
from handlers.kit.steps import typed_text
from handlers.worker.visits.screens import (
    calendar_markup,
    calendar_title,
    skip_markup,
    time_markup,
)
from models import Worker
from models.visits import Visit
from services.errors import DomainError, StaleAction
from services.hub import Services
from services.visits import PREPARE_MAX, WHO_MAX, VisitError, VisitService


class VisitForm(StatesGroup):
    who = State()
    prepare = State()


def _message(query: CallbackQuery) -> Message:
    if not isinstance(query.message, Message):
        raise StaleAction()  # too old a message to edit: open the card again
    return query.message


async def start_new(
    query: CallbackQuery, callback_data: VisitNewCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    case = await services.visits.case_for_worker(worker, callback_data.case_id)
    await state.set_state(None)
    today = services.rules.local(services.clock.now()).date()
    await _message(query).answer(
        calendar_title(case.number, today),
        reply_markup=calendar_markup(case.id, 0, today.replace(day=1), today),
    )


async def calendar_noop(
    query: CallbackQuery, callback_data: VisitCalCb, services: Services, worker: Worker
) -> None:
    await services.visits.calendar_case(worker, callback_data.case_id, callback_data.visit_id)


async def calendar_month(
    query: CallbackQuery, callback_data: VisitCalCb, services: Services, worker: Worker
) -> None:
    _visit, case = await services.visits.calendar_case(worker, callback_data.case_id, callback_data.visit_id)
    today = services.rules.local(services.clock.now()).date()
    try:
        month = datetime.strptime(callback_data.value, "%Y%m").date()
    except ValueError:
        raise StaleAction() from None
    month = max(month, today.replace(day=1))
    await _message(query).edit_text(
        calendar_title(case.number, month),
        reply_markup=calendar_markup(case.id, callback_data.visit_id, month, today),
    )


async def calendar_day(
    query: CallbackQuery, callback_data: VisitCalCb, services: Services, worker: Worker
) -> None:
    _visit, case = await services.visits.calendar_case(worker, callback_data.case_id, callback_data.visit_id)
    now_local = services.rules.local(services.clock.now())
    try:
        day = datetime.strptime(callback_data.value, "%Y%m%d").date()
    except ValueError:
        day = None
    if day is None or day < now_local.date():
        raise VisitError("in_past")
    await _message(query).edit_text(
        _("visit.ask_time") % {"date": f"{day:%d.%m.%Y}"},
        reply_markup=time_markup(case.id, callback_data.visit_id, day, now_local),
    )


async def calendar_time(
    query: CallbackQuery, callback_data: VisitCalCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    visits = services.visits
    visit, case = await visits.calendar_case(worker, callback_data.case_id, callback_data.visit_id)
    try:
        moment = datetime.strptime(callback_data.value, "%Y%m%d%H")
    except ValueError:
        raise StaleAction() from None
    starts = services.rules.at_local(moment.date(), time(moment.hour))
    ends = starts + timedelta(hours=1)
    if visit is not None:
        visit = await visits.reschedule(visit, case, worker, starts, ends)
        await _message(query).edit_text(_("visit.rescheduled") % _summary(visits, visit, case.number))
        return
    if starts <= services.clock.now():
        raise VisitError("in_past")
    await state.set_state(VisitForm.who)
    await state.update_data(visit_case=case.id, visit_starts=starts.isoformat(), visit_ends=ends.isoformat())
    await _message(query).edit_text(_("visit.ask_who"), reply_markup=skip_markup(case.id))


async def calendar_skip(
    query: CallbackQuery, callback_data: VisitCalCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    _visit, case = await services.visits.calendar_case(worker, callback_data.case_id, callback_data.visit_id)
    current = await state.get_state()
    data = await state.get_data()
    if data.get("visit_case") != case.id or current not in (VisitForm.who.state, VisitForm.prepare.state):
        raise StaleAction()
    message = _message(query)
    await message.edit_reply_markup(reply_markup=None)
    if current == VisitForm.who.state:
        await state.update_data(visit_who="")
        await state.set_state(VisitForm.prepare)
        await message.answer(_("visit.ask_prepare"), reply_markup=skip_markup(case.id))
        return
    await _finish(message, services, worker, state, prepare="")


async def calendar_unknown(query: CallbackQuery) -> None:
    raise StaleAction()


async def on_who(message: Message, state: FSMContext) -> None:
    text = await typed_text(message, WHO_MAX, "visit.error.who_too_long")
    if text is None:
        return
    data = await state.get_data()
    await state.update_data(visit_who=text)
    await state.set_state(VisitForm.prepare)
    await message.answer(_("visit.ask_prepare"), reply_markup=skip_markup(int(data.get("visit_case", 0))))


async def on_prepare(message: Message, services: Services, worker: Worker, state: FSMContext) -> None:
    text = await typed_text(message, PREPARE_MAX, "visit.error.prepare_too_long")
    if text is None:
        return
    await _finish(message, services, worker, state, prepare=text)


async def prepare_not_a_worker(message: Message, state: FSMContext) -> None:
    await state.set_state(None)
    await message.answer(_("visit.error.not_found"))


async def _finish(
    message: Message, services: Services, worker: Worker, state: FSMContext, *, prepare: str
) -> None:
    data = await state.get_data()
    await state.set_state(None)  # the form is over, even when the visit is refused below
    visits = services.visits
    try:
        case = await visits.case_for_worker(worker, int(data.get("visit_case", 0)))
        starts = datetime.fromisoformat(data["visit_starts"])
        ends = datetime.fromisoformat(data["visit_ends"])
        visit = await visits.schedule(case, worker, starts, ends, data.get("visit_who", ""), prepare)
    except (KeyError, ValueError):
        await message.answer(_("errors.stale_button"))
        return
    except DomainError as error:
        # Answered here, not by the error router: raising would roll back the ended form.
        await message.answer(_(error.message_key))
        return
    await state.set_data({k: v for k, v in data.items() if not k.startswith("visit_")})
    await message.answer(_("visit.scheduled") % _summary(visits, visit, case.number))


def _summary(visits: VisitService, visit: Visit, number: str) -> dict[str, Any]:
    view = visits.view(visit, number, "")
    return {
        "date": view.date,
        "time_from": view.time_from,
        "time_to": view.time_to,
        "number": html.escape(number),
    }


async def move_visit(
    query: CallbackQuery, callback_data: VisitWorkerCb, services: Services, worker: Worker
) -> None:
    visit, case = await services.visits.movable_visit(worker, callback_data.visit_id)
    today = services.rules.local(services.clock.now()).date()
    await _message(query).answer(
        calendar_title(case.number, today),
        reply_markup=calendar_markup(case.id, visit.id, today.replace(day=1), today),
    )


async def cancel_visit(
    query: CallbackQuery,
    callback_data: VisitWorkerCb,
    services: Services,
    worker: Worker,
    callback_answer: CallbackAnswer,
) -> None:
    visit, case = await services.visits.visit_for_worker(worker, callback_data.visit_id)
    await services.visits.cancel_by_worker(visit, case, worker)
    callback_answer.text = _("visit.cancelled_by_worker")
    callback_answer.show_alert = True
    await _message(query).edit_reply_markup(reply_markup=None)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, VisitNewCb, VisitCalCb, VisitWorkerCb)
    router.callback_query.filter(ActiveWorker())
    presses = router.callback_query
    presses.register(start_new, VisitNewCb.filter())
    presses.register(calendar_noop, Action(VisitCalCb, "noop"))
    presses.register(calendar_month, Action(VisitCalCb, "month"))
    presses.register(calendar_day, Action(VisitCalCb, "day"))
    presses.register(calendar_time, Action(VisitCalCb, "time"))
    presses.register(calendar_skip, Action(VisitCalCb, "skip"))
    presses.register(calendar_unknown, VisitCalCb.filter())
    presses.register(move_visit, Action(VisitWorkerCb, "move"))
    presses.register(cancel_visit, Action(VisitWorkerCb, "cancel"))
    router.message.register(on_who, StateFilter(VisitForm.who))
    router.message.register(on_prepare, StateFilter(VisitForm.prepare), ActiveWorker())
    router.message.register(prepare_not_a_worker, StateFilter(VisitForm.prepare))
    return router
