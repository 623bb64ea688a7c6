"""Resident answers to home visits (issue 4): confirm, ask for another time, cancel.

The buttons arrive on the outbox message about the visit. Each press re-checks that the presser
is the resident of the visit's case; the worker hears the answer through the outbox.
"""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.scheduler import DeliveryRuntime, kick
from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import VisitAnswerCb
from handlers.kit.filters import prune_callbacks
from handlers.kit.steps import typed_text
from infra.settings import Settings
from models import User
from services.clock import Clock
from services.reminders import ReminderRules
from services.visits import NOTE_MAX, VisitError, VisitService


class VisitReply(StatesGroup):
    reschedule = State()


def _answer_markup(visit_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("visit.btn.confirm"), callback_data=VisitAnswerCb(action="confirm", visit_id=visit_id)
    )
    builder.button(
        text=_("visit.btn.reschedule"), callback_data=VisitAnswerCb(action="reschedule", visit_id=visit_id)
    )
    builder.button(
        text=_("visit.btn.cancel"), callback_data=VisitAnswerCb(action="cancel", visit_id=visit_id)
    )
    builder.adjust(2, 1)
    return builder.as_markup()


def _cancel_markup(visit_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("visit.btn.cancel_yes"), callback_data=VisitAnswerCb(action="cancel_yes", visit_id=visit_id)
    )
    builder.button(
        text=_("visit.btn.cancel_no"), callback_data=VisitAnswerCb(action="cancel_no", visit_id=visit_id)
    )
    builder.adjust(1)
    return builder.as_markup()


async def on_answer(
    query: CallbackQuery,
    callback_data: VisitAnswerCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    state: FSMContext,
    delivery: DeliveryRuntime | None = None,
) -> None:
    visits = VisitService(session, clock, ReminderRules.from_settings(settings))
    action = callback_data.action
    try:
        visit, _case = await visits.visit_for_resident(user, callback_data.visit_id)
        if action == "confirm":
            await visits.confirm(user, visit.id)
            kick(delivery)
            await query.answer(_("visit.confirmed"))
            await query.message.edit_reply_markup(reply_markup=None)
            await query.message.answer(_("visit.confirmed_line"))
            return
        if visit.status not in ("planned", "confirmed", "reschedule_requested"):
            raise VisitError("not_open")
        if action == "reschedule":
            await state.set_state(VisitReply.reschedule)
            await state.update_data(visit_reply=visit.id)
            await query.answer()
            await query.message.answer(_("visit.ask_reschedule"))
            return
        if action == "cancel":
            await query.answer()
            await query.message.edit_reply_markup(reply_markup=_cancel_markup(visit.id))
            return
        if action == "cancel_yes":
            await visits.cancel_by_resident(user, visit.id)
            kick(delivery)
            await query.answer()
            await query.message.edit_reply_markup(reply_markup=None)
            await query.message.answer(_("visit.cancelled"))
            return
        if action == "cancel_no":
            await query.answer(_("visit.kept"))
            await query.message.edit_reply_markup(reply_markup=_answer_markup(visit.id))
            return
    except VisitError as exc:
        await query.answer(_(f"visit.error.{exc.code}"), show_alert=True)
        return
    await query.answer(_("errors.stale_button"), show_alert=True)


async def on_reschedule_text(
    message: Message,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    state: FSMContext,
    delivery: DeliveryRuntime | None = None,
) -> None:
    text = await typed_text(message, NOTE_MAX, "visit.error.note_too_long")
    if text is None:
        return
    data = await state.get_data()
    visit_id = int(data.get("visit_reply", 0))
    visits = VisitService(session, clock, ReminderRules.from_settings(settings))
    try:
        await visits.request_reschedule(user, visit_id, text)
        kick(delivery)
    except VisitError as exc:
        await state.set_state(None)
        await message.answer(_(f"visit.error.{exc.code}"))
        return
    await state.set_state(None)
    await state.set_data({k: v for k, v in data.items() if k != "visit_reply"})
    await message.answer(_("visit.reschedule_sent"))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, VisitAnswerCb)
    router.callback_query.register(on_answer, VisitAnswerCb.filter())
    router.message.register(on_reschedule_text, StateFilter(VisitReply.reschedule))
    return router
