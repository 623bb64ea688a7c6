"""Surveys in a resident's chat, shared by the resident's router and /start (which resumes an
unfinished survey): the pure screens (a question with its buttons, the thanks, the list) and
`show_step`, which shows a step and marks the text step in the FSM."""

from __future__ import annotations

import html
from collections.abc import Sequence

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import SurveyCb
from models import Survey, SurveyInvitation, User
from services.hub import Services
from services.survey_spec import SCALE_MAX, SCALE_MIN
from services.surveys import Step

HINTS = {
    "single": "surveys.hint.single",
    "multi": "surveys.hint.multi",
    "scale": "surveys.hint.scale",
    "text": "surveys.hint.text",
}


def question_screen(step: Step, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    question = step.question
    assert question is not None
    inv, q = step.invitation.id, question.id
    text = "\n".join(
        [
            _("surveys.question_head")
            % {
                "title": html.escape(step.survey.title(lang)),
                "n": step.number,
                "total": step.total,
            },
            "",
            html.escape(question.text(lang)),
            "",
            f"<i>{_(HINTS[question.kind])}</i>",
        ]
    )
    builder = InlineKeyboardBuilder()
    sizes: list[int] = []
    if question.kind in ("single", "multi"):
        for option in question.options:
            label = question.option_label(option["code"], lang)
            if question.kind == "multi":
                label = ("✅ " if option["code"] in step.selected else "▫️ ") + label
            builder.button(
                text=label, callback_data=SurveyCb(action="pick", inv=inv, q=q, value=option["code"])
            )
            sizes.append(1)
        if question.kind == "multi":
            builder.button(text=_("surveys.btn.done"), callback_data=SurveyCb(action="done", inv=inv, q=q))
            sizes.append(1)
    elif question.kind == "scale":
        for value in range(SCALE_MIN, SCALE_MAX + 1):
            builder.button(
                text=str(value), callback_data=SurveyCb(action="scale", inv=inv, q=q, value=str(value))
            )
        sizes.append(SCALE_MAX - SCALE_MIN + 1)
    tail = 0
    if not question.required:
        builder.button(text=_("surveys.btn.skip"), callback_data=SurveyCb(action="skip", inv=inv, q=q))
        tail += 1
    builder.button(text=_("surveys.btn.later"), callback_data=SurveyCb(action="later", inv=inv, q=q))
    tail += 1
    builder.adjust(*sizes, tail)
    return text, builder.as_markup()


def finished_text(step: Step, lang: str) -> str:
    key = "surveys.thanks_anonymous" if step.survey.anonymous else "surveys.thanks"
    return _(key) % {"title": html.escape(step.survey.title(lang))}


def unfinished_screen(
    items: Sequence[tuple[SurveyInvitation, Survey]], lang: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    if not items:
        return _("surveys.none"), None
    builder = InlineKeyboardBuilder()
    for invitation, survey in items:
        builder.button(
            text=f"📝 {survey.title(lang)}", callback_data=SurveyCb(action="open", inv=invitation.id)
        )
    builder.adjust(1)
    return _("surveys.choose"), builder.as_markup()


class SurveyStates(StatesGroup):
    text = State()  # data: inv, q — the text question being answered


async def show_step(message: Message, step: Step, state: FSMContext, lang: str, *, edit: bool) -> None:
    """The step's question (or the thanks), editing the pressed message or as a new one."""
    if step.question is None:
        await leave_text_step(state)
        text = finished_text(step, lang)
        await (message.edit_text(text) if edit else message.answer(text))
        return
    if step.question.kind == "text":
        await state.set_state(SurveyStates.text)
        await state.set_data({"inv": step.invitation.id, "q": step.question.id})
    else:
        await leave_text_step(state)
    text, markup = question_screen(step, lang)
    if edit:
        await message.edit_text(text, reply_markup=markup)
    else:
        await message.answer(text, reply_markup=markup)


async def leave_text_step(state: FSMContext) -> None:
    if await state.get_state() == SurveyStates.text.state:
        await state.clear()


async def resume_on_start(message: Message, services: Services, user: User, state: FSMContext) -> None:
    """/start brings back the question a person stopped at in a survey they began."""
    for invitation, _survey in await services.surveys.unfinished(user):
        if invitation.state == "started":
            await message.answer(_("surveys.resume"))
            await show_step(
                message,
                await services.surveys.open(user, invitation.id),
                state,
                user.language or "uk",
                edit=False,
            )
            return
