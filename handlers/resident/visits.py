"""Resident answers to home visits: confirm, ask for another time, cancel.

The buttons arrive on the outbox message about the visit. Each press re-checks that the presser
is the resident of the visit's case; the worker hears the answer through the outbox."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import VisitAnswerCb
from handlers.kit.filters import prune_callbacks
from handlers.kit.render import refusal_text
from handlers.kit.steps import typed_text
from models import User
from services.errors import StaleAction
from services.hub import Services
from services.visits import NOTE_MAX, OPEN_VISIT, VisitError


class VisitReply(StatesGroup):
    reschedule = State()


def _answer_markup(visit_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for key, action in (
        ("visit.btn.confirm", "confirm"),
        ("visit.btn.reschedule", "reschedule"),
        ("visit.btn.cancel", "cancel"),
    ):
        builder.button(text=_(key), callback_data=VisitAnswerCb(action=action, visit_id=visit_id))
    builder.adjust(2, 1)
    return builder.as_markup()


def _cancel_markup(visit_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for key, action in (("visit.btn.cancel_yes", "cancel_yes"), ("visit.btn.cancel_no", "cancel_no")):
        builder.button(text=_(key), callback_data=VisitAnswerCb(action=action, visit_id=visit_id))
    builder.adjust(1)
    return builder.as_markup()


async def on_answer(
    query: CallbackQuery,
    callback_data: VisitAnswerCb,
    services: Services,
    user: User,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    visits = services.visits
    action = callback_data.action
    visit, _case = await visits.visit_for_resident(user, callback_data.visit_id)
    message = query.message
    if not isinstance(message, Message):
        raise StaleAction()
    if action == "confirm":
        await visits.confirm(user, visit.id)
        callback_answer.text = _("visit.confirmed")
        await message.edit_reply_markup(reply_markup=None)
        await message.answer(_("visit.confirmed_line"))
        return
    if visit.status not in OPEN_VISIT:
        raise VisitError("not_open")
    if action == "reschedule":
        await state.set_state(VisitReply.reschedule)
        await state.update_data(visit_reply=visit.id)
        await message.answer(_("visit.ask_reschedule"))
    elif action == "cancel":
        await message.edit_reply_markup(reply_markup=_cancel_markup(visit.id))
    elif action == "cancel_yes":
        await visits.cancel_by_resident(user, visit.id)
        await message.edit_reply_markup(reply_markup=None)
        await message.answer(_("visit.cancelled"))
    elif action == "cancel_no":
        callback_answer.text = _("visit.kept")
        await message.edit_reply_markup(reply_markup=_answer_markup(visit.id))
    else:
        raise StaleAction()


async def on_reschedule_text(message: Message, services: Services, user: User, state: FSMContext) -> None:
    text = await typed_text(message, NOTE_MAX, "visit.error.note_too_long")
    if text is None:
        return
    data = await state.get_data()
    visit_id = int(data.get("visit_reply", 0))
    await state.set_state(None)
    try:
        await services.visits.request_reschedule(user, visit_id, text)
    except VisitError as refusal:
        # Local recovery: the typed step ends even when the request is refused (the visit was
        # cancelled or moved meanwhile), so the next message is not taken as a reason again.
        # Raising would roll that state change back with the update.
        await message.answer(refusal_text(refusal))
        return
    await state.set_data({k: v for k, v in data.items() if k != "visit_reply"})
    await message.answer(_("visit.reschedule_sent"))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, VisitAnswerCb)
    router.callback_query.register(on_answer, VisitAnswerCb.filter())
    router.message.register(on_reschedule_text, StateFilter(VisitReply.reschedule))
    return router
