"""Surveys for residents: start or resume from the invitation's button, the menu button
«📝 Опитування» or /start; answer with buttons (multi choice: toggle, then «Готово»; 1–5), or
type a short text; «Пізніше» pauses.

The progress lives in the database (the invitation's current question), so a restart or another
instance resumes where the person stopped. The FSM only marks "the next text is the answer to
question q", for the text step. An old button (of a finished survey or an earlier question) is
answered politely and shows the current question."""

from __future__ import annotations

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import SurveyCb
from handlers.kit.filters import MenuButton, NonText, NotMenuButton, NotMenuText, prune_callbacks
from handlers.kit.surveys import SurveyStates, leave_text_step, show_step, unfinished_screen
from models import User
from services.errors import StaleAction
from services.hub import Services


async def open_menu(message: Message, services: Services, user: User, state: FSMContext) -> None:
    if not await services.users.has_consent(user):
        await message.answer(_("surveys.need_consent"))
        return
    items = await services.surveys.unfinished(user)
    lang = user.language or "uk"
    if len(items) == 1:
        step = await services.surveys.open(user, items[0][0].id)
        await show_step(message, step, state, lang, edit=False)
        return
    text, markup = unfinished_screen(items, lang)
    await message.answer(text, reply_markup=markup)


async def on_button(
    query: CallbackQuery,
    callback_data: SurveyCb,
    services: Services,
    user: User,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    message = query.message
    if not isinstance(message, Message):
        raise StaleAction()
    surveys, data = services.surveys, callback_data
    lang = user.language or "uk"
    if data.action == "later":
        await leave_text_step(state)
        await message.edit_text(_("surveys.paused"))
        return
    if data.action == "open":
        await show_step(message, await surveys.open(user, data.inv), state, lang, edit=False)
        return
    if data.action == "pick":
        step = await surveys.pick(user, data.inv, data.q, data.value)
    elif data.action == "done":
        step = await surveys.finish_multi(user, data.inv, data.q)
    elif data.action == "scale":
        step = await surveys.scale(user, data.inv, data.q, int(data.value) if data.value.isdigit() else 0)
    elif data.action == "skip":
        step = await surveys.skip(user, data.inv, data.q)
    else:
        raise StaleAction()
    if step.stale:
        # An older question's button: the current question comes again as a new message.
        callback_answer.text = _("surveys.old_button")
        await show_step(message, step, state, lang, edit=False)
        return
    await show_step(message, step, state, lang, edit=True)


async def text_answer(message: Message, services: Services, user: User, state: FSMContext) -> None:
    data = await state.get_data()
    step = await services.surveys.text(
        user, int(data.get("inv", 0)), int(data.get("q", 0)), message.text or ""
    )
    if step.stale:
        await message.answer(_("surveys.old_text_step"))
    await show_step(message, step, state, user.language or "uk", edit=False)


async def not_text(message: Message) -> None:
    await message.answer(_("surveys.text_only"))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, SurveyCb)
    router.message.register(open_menu, MenuButton("menu.surveys"))
    router.callback_query.register(on_button, SurveyCb.filter())
    router.message.register(text_answer, SurveyStates.text, NotMenuText())
    router.message.register(not_text, SurveyStates.text, NonText(), NotMenuButton())
    return router
