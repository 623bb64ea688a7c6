"""Saved replies while writing to a resident: "📋 Templates" lists the case team's templates,
a pick shows the text filled for this case in the resident's language, then Send (through
`CaseActions.relay_to_resident`, the one path of a team's message), Edit (the worker types the
corrected text into the same "Write to the resident" step) or Back.

Every press re-checks the worker on the server (a member of the case's team, the case open,
the template its team's); a worker of another team gets an alert and sees nothing. Send only
works inside the write step it was opened from, so a second tap sends nothing twice."""

from __future__ import annotations

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import ReplyPickCb
from handlers.kit.filters import Action, ActiveWorker, prune_callbacks
from handlers.worker.cases import template_screens as screens
from handlers.worker.cases.steps import CaseForm
from models import Case, Worker
from services.errors import StaleAction
from services.hub import Services
from services.saved_replies import Filled


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


async def _filled(services: Services, worker: Worker, i18n: I18n, data: ReplyPickCb) -> tuple[Case, Filled]:
    return await services.replies.filled(
        worker, data.case_id, data.reply_id, lambda locale: i18n.gettext("replies.greeting", locale=locale)
    )


async def _in_write_step(state: FSMContext, case_id: int) -> bool:
    if await state.get_state() != CaseForm.write.state:
        return False
    return (await state.get_data()).get("case_id") == case_id


async def list_templates(
    query: CallbackQuery,
    callback_data: ReplyPickCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    case, templates = await services.replies.for_case(worker, callback_data.case_id)
    if not templates:
        callback_answer.text = _("replies.pick.none")
        callback_answer.show_alert = True
        return
    # Back in the write step of this case: a typed text or a template, whichever comes first.
    await state.set_state(CaseForm.write)
    await state.update_data(case_id=case.id)
    if (message := _message(query)) is not None:
        text, markup = screens.template_list(case, templates, i18n.current_locale)
        await message.answer(text, reply_markup=markup)


async def pick(
    query: CallbackQuery, callback_data: ReplyPickCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    case, filled = await _filled(services, worker, i18n, callback_data)
    if (message := _message(query)) is not None:
        text, markup = screens.filled_screen(case, callback_data.reply_id, filled)
        await message.edit_text(text, reply_markup=markup)


async def send(
    query: CallbackQuery,
    callback_data: ReplyPickCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    case, filled = await _filled(services, worker, i18n, callback_data)  # rights first
    if not await _in_write_step(state, case.id):
        raise StaleAction()  # sent already, or the step was left
    if filled.missing:
        raise StaleAction()  # the screen offered Edit only
    await state.set_state(None)
    await services.case_actions.relay_to_resident(case.id, worker, filled.text)
    callback_answer.text = _("worker.write.sent")
    if (message := _message(query)) is not None:
        await message.edit_reply_markup(reply_markup=None)
        await message.answer(_("worker.write.sent"))


async def edit(
    query: CallbackQuery,
    callback_data: ReplyPickCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
) -> None:
    case, filled = await _filled(services, worker, i18n, callback_data)
    await state.set_state(CaseForm.write)
    await state.update_data(case_id=case.id)
    if (message := _message(query)) is not None:
        await message.answer(screens.edit_hint(case, filled))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, ReplyPickCb)
    router.callback_query.filter(ActiveWorker())
    presses = router.callback_query
    presses.register(list_templates, Action(ReplyPickCb, "list"))
    presses.register(pick, Action(ReplyPickCb, "pick"))
    presses.register(send, Action(ReplyPickCb, "send"))
    presses.register(edit, Action(ReplyPickCb, "edit"))
    return router
