"""Saved replies on a case. While writing to the resident: "📋 Templates" lists the case
team's templates, a pick shows the text filled for this case in the resident's language, then
Send (through `CaseActions.relay_to_resident`, the one path of a team's message), Edit (the
worker types the corrected text into the same "Write to the resident" step) or Back. While
requesting documents (mode `docs`, from the deadline menu): the filled template, or the
worker's corrected text, becomes the request's note, filled with the deadline when it is chosen.

Every press re-checks the worker on the server (a member of the case's team, the case open,
the template its team's); a worker of another team gets an alert and sees nothing. Send only
works inside the write step it was opened from, so a second tap sends nothing twice."""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import ReplyPickCb
from handlers.kit.filters import Action, ActiveWorker, NotCommand, PlainText, prune_callbacks
from handlers.kit.steps import typed_text
from handlers.worker.cases import screens as card_screens
from handlers.worker.cases import template_screens as screens
from handlers.worker.cases.steps import CaseForm
from models import Case, Worker
from services.documents import DEADLINE_DAYS, NOTE_MAX
from services.errors import StaleAction
from services.hub import Services
from services.saved_replies import GAP, Filled, ReplyError

DOCS = screens.DOCS


class TemplateForm(StatesGroup):
    docs_note = State()  # data: case_id — the worker types the note of a document request


def docs_note_key(case_id: int) -> str:
    """Where the note of the document request being made on this case waits for its deadline:
    {"reply_id": id} (filled when the deadline is chosen) or {"text": typed}."""
    return f"docs_note_{case_id}"


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


def _greeting(i18n: I18n) -> Callable[[str], str]:
    """What `{first_name}` becomes in a language: the bot keeps no resident's name."""
    return lambda locale: i18n.gettext("replies.greeting", locale=locale)


async def _filled(services: Services, worker: Worker, i18n: I18n, data: ReplyPickCb) -> tuple[Case, Filled]:
    # For a document request the deadline is not chosen yet: a gap for now, filled on sending.
    deadline = GAP if data.mode == DOCS else None
    return await services.replies.filled(
        worker, data.case_id, data.reply_id, _greeting(i18n), deadline_date=deadline
    )


async def docs_note(
    services: Services, worker: Worker, state: FSMContext, i18n: I18n, case_id: int, days: int
) -> str | None:
    """The note waiting for this case's document request, filled with the deadline `days` ahead."""
    waiting = (await state.get_data()).get(docs_note_key(case_id)) or {}
    if waiting.get("text"):
        return str(waiting["text"])
    if not waiting.get("reply_id") or days not in DEADLINE_DAYS:
        return None
    deadline = services.documents.deadline_after(days).strftime("%d.%m.%Y")
    _case, filled = await services.replies.filled(
        worker, case_id, int(waiting["reply_id"]), _greeting(i18n), deadline_date=deadline
    )
    return filled.text


async def _show_deadlines(target: Message, case: Case, note: str) -> None:
    text, markup = card_screens.deadline_menu(
        case, DEADLINE_DAYS, templates=True, note=screens.note_line(note)
    )
    await target.answer(text, reply_markup=markup)


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
    if callback_data.mode != DOCS:
        # Back in the write step of this case: a typed text or a template, whichever comes first.
        await state.set_state(CaseForm.write)
        await state.update_data(case_id=case.id)
    if (message := _message(query)) is not None:
        text, markup = screens.template_list(case, templates, i18n.current_locale, callback_data.mode)
        await message.answer(text, reply_markup=markup)


async def pick(
    query: CallbackQuery, callback_data: ReplyPickCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    case, filled = await _filled(services, worker, i18n, callback_data)
    if (message := _message(query)) is not None:
        text, markup = screens.filled_screen(case, callback_data.reply_id, filled, callback_data.mode)
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
    await state.set_state(TemplateForm.docs_note if callback_data.mode == DOCS else CaseForm.write)
    await state.update_data(case_id=case.id)
    if (message := _message(query)) is not None:
        await message.answer(screens.edit_hint(case, filled, callback_data.mode))


async def note(
    query: CallbackQuery,
    callback_data: ReplyPickCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
) -> None:
    """The filled template becomes the note of the document request being made."""
    case, filled = await _filled(services, worker, i18n, callback_data)
    if len(filled.text) > NOTE_MAX:
        raise ReplyError("note_too_long", limit=NOTE_MAX)
    await state.update_data({docs_note_key(case.id): {"reply_id": callback_data.reply_id}})
    if (message := _message(query)) is not None:
        await message.edit_reply_markup(reply_markup=None)
        await _show_deadlines(message, case, filled.text)


async def docs_note_step(message: Message, state: FSMContext, services: Services, worker: Worker) -> None:
    text = await typed_text(message, NOTE_MAX, "case.error.text_too_long")
    if text is None:
        return
    case_id = int((await state.get_data()).get("case_id") or 0)
    await state.set_state(None)
    case = await services.case_actions.member_open_case(worker, case_id)
    await state.update_data({docs_note_key(case.id): {"text": text}})
    await _show_deadlines(message, case, text)


async def text_required(message: Message) -> None:
    await message.answer(_("worker.text_only"))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, ReplyPickCb)
    router.callback_query.filter(ActiveWorker())
    presses = router.callback_query
    presses.register(list_templates, Action(ReplyPickCb, "list"))
    presses.register(pick, Action(ReplyPickCb, "pick"))
    presses.register(send, Action(ReplyPickCb, "send"))
    presses.register(edit, Action(ReplyPickCb, "edit"))
    presses.register(note, Action(ReplyPickCb, "note"))
    step = StateFilter(TemplateForm.docs_note)
    router.message.register(docs_note_step, step, PlainText(), ActiveWorker())
    router.message.register(text_required, step, NotCommand())
    return router
