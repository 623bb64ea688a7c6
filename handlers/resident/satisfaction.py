"""A resident rates their resolved case: 1–5 from the outbox question, then an optional comment.

Each press re-checks that the case is the presser's, resolved and not rated yet (the service
refuses an old button or a second press politely). The comment is one typed step: too long or
without words, the step stays with the reason; "Skip" ends it."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import RateCb
from handlers.kit.filters import NotCommand, NotMenuButton, PlainText, prune_callbacks
from handlers.kit.render import refusal_text
from models import User
from services.hub import Services
from services.satisfaction import RatingError

CASE_KEY = "rating_case"


class RatingForm(StatesGroup):
    comment = State()  # data: rating_case


def skip_markup(case_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("rating.btn.skip"), callback_data=RateCb(action="skip", case_id=case_id))
    return builder.as_markup()


async def on_rate(
    query: CallbackQuery,
    callback_data: RateCb,
    services: Services,
    user: User,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    rating = await services.satisfaction.rate(user, callback_data.case_id, callback_data.score)
    callback_answer.text = _("rating.thanks_toast")
    if not isinstance(query.message, Message):
        return
    await query.message.edit_reply_markup(reply_markup=None)
    current = await state.get_state()
    if current is not None and current != RatingForm.comment.state:
        # In the middle of another form (a new request): the rating counts, the form is not
        # interrupted by a comment step.
        await query.message.answer(_("rating.thanks"))
        return
    await query.message.answer(
        _("rating.ask_comment") % {"score": rating.rating}, reply_markup=skip_markup(rating.case_id)
    )
    await state.set_state(RatingForm.comment)
    await state.update_data({CASE_KEY: rating.case_id})


async def on_skip(
    query: CallbackQuery, callback_data: RateCb, state: FSMContext, callback_answer: CallbackAnswer
) -> None:
    data = await state.get_data()
    if data.get(CASE_KEY) == callback_data.case_id:
        await state.set_state(None)
        await state.set_data({k: v for k, v in data.items() if k != CASE_KEY})
    callback_answer.text = _("rating.thanks")
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)


async def on_comment(message: Message, services: Services, user: User, state: FSMContext) -> None:
    data = await state.get_data()
    case_id = int(data.get(CASE_KEY, 0))
    try:
        await services.satisfaction.comment(user, case_id, message.text)
    except RatingError as refusal:
        if refusal.code in ("comment_too_long", "comment_words"):
            raise  # the step stays: the error router says why
        # Rated or gone meanwhile: the step ends here (raising would roll that back).
        await state.set_state(None)
        await message.answer(refusal_text(refusal))
        return
    await state.set_state(None)
    await state.set_data({k: v for k, v in data.items() if k != CASE_KEY})
    await message.answer(_("rating.comment_saved"))


async def comment_not_text(message: Message) -> None:
    """A sticker, photo or voice where the comment is expected: say so, keep the step."""
    await message.answer(_("rating.text_only"))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, RateCb)
    router.callback_query.register(on_rate, RateCb.filter(F.action == "rate"))
    router.callback_query.register(on_skip, RateCb.filter(F.action == "skip"))
    router.message.register(on_comment, StateFilter(RatingForm.comment), PlainText(), NotMenuButton())
    router.message.register(comment_not_text, StateFilter(RatingForm.comment), NotCommand(), NotMenuButton())
    return router
