"""The case card's buttons: open, take, change status, request documents, write to the
resident, transfer, assign, files; and the typed steps they start.

Every press re-loads the case through the services, which check the presser's rights; a
forged or stale button is refused by a domain error (answered by the error router) and
changes nothing."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n, get_i18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import AssignCb, CaseCb, DocPickCb, DocsReceivedCb, StatusCb, TransferCb
from handlers.kit.filters import Action, ActiveWorker, NotCommand, PlainText, prune_callbacks
from handlers.worker.cases import screens, template_screens
from handlers.worker.cases.card import build_card, send_card, show_card
from handlers.worker.cases.steps import (
    CaseForm,
    not_a_worker,
    reason_step,
    text_required,
    transfer_step,
    write_step,
)
from handlers.worker.cases.templates import docs_note, docs_note_key
from infra.settings import Settings
from models import Worker
from services.case_actions import required_text
from services.cases import case_number
from services.documents import DEADLINE_DAYS
from services.errors import NotAllowed, StaleAction
from services.hub import Services
from services.phones import normalize_phone
from services.queues import HISTORY_MAX


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


def _refuse_softly(callback_answer: CallbackAnswer, key: str) -> None:
    """Nothing to offer: an alert, and nothing changes."""
    callback_answer.text = _(key)
    callback_answer.show_alert = True


# -- the card's own buttons (CaseCb) ------------------------------------------------------------


async def open_card(
    query: CallbackQuery, callback_data: CaseCb, services: Services, worker: Worker, settings: Settings
) -> None:
    text, markup = await build_card(services, worker, callback_data.case_id, settings)  # rights first
    if (message := _message(query)) is not None:
        await send_card(message, services, worker, text, markup)


async def take(
    query: CallbackQuery,
    callback_data: CaseCb,
    services: Services,
    worker: Worker,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    await services.case_actions.take(callback_data.case_id, worker)
    callback_answer.text = _("worker.taken")
    if (message := _message(query)) is not None:
        await show_card(message, services, worker, callback_data.case_id, settings)


async def status_menu(
    query: CallbackQuery, callback_data: CaseCb, services: Services, worker: Worker
) -> None:
    case, options = await services.case_actions.status_choices(worker, callback_data.case_id)
    if (message := _message(query)) is not None:
        text, markup = screens.status_menu(case, options)
        await message.answer(text, reply_markup=markup)


async def write(
    query: CallbackQuery, callback_data: CaseCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    case = await services.case_actions.member_open_case(worker, callback_data.case_id)
    await state.set_state(CaseForm.write)
    await state.update_data(case_id=case.id)
    # The team's saved replies, when it keeps any (handlers/worker/cases/templates.py).
    templates = await services.replies.templates(case.team_id)
    if (message := _message(query)) is not None:
        markup = template_screens.templates_button(case.id) if templates else None
        await message.answer(screens.headed(case, "worker.write.ask"), reply_markup=markup)


async def transfer_menu(
    query: CallbackQuery,
    callback_data: CaseCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    case, teams = await services.case_actions.transfer_choices(worker, callback_data.case_id)
    if not teams:
        _refuse_softly(callback_answer, "worker.transfer.none")
        return
    if (message := _message(query)) is not None:
        text, markup = screens.transfer_menu(case, teams, i18n.current_locale)
        await message.answer(text, reply_markup=markup)


async def assign_menu(
    query: CallbackQuery,
    callback_data: CaseCb,
    services: Services,
    worker: Worker,
    callback_answer: CallbackAnswer,
) -> None:
    case, members = await services.case_actions.assign_choices(worker, callback_data.case_id)
    if not members:
        _refuse_softly(callback_answer, "worker.assign.none")
        return
    if (message := _message(query)) is not None:
        text, markup = screens.assign_menu(case, members)
        await message.answer(text, reply_markup=markup)


async def files(
    query: CallbackQuery,
    callback_data: CaseCb,
    services: Services,
    worker: Worker,
    bot: Bot,
    callback_answer: CallbackAnswer,
) -> None:
    case = await services.case_actions.worker_case(worker, callback_data.case_id, refs=False)
    attachments = await services.case_actions.attachments(case.id)
    if not attachments:
        _refuse_softly(callback_answer, "worker.files.none")
        return
    chat_id = query.from_user.id  # files go to the worker's private chat only
    for item in attachments:
        if item.kind == "photo":
            await bot.send_photo(chat_id, item.file_id, caption=case.number)
        elif item.kind == "voice":
            await bot.send_voice(chat_id, item.file_id, caption=case.number)
        elif item.kind == "video_note":  # carries no caption
            await bot.send_video_note(chat_id, item.file_id)
        else:
            await bot.send_document(chat_id, item.file_id, caption=case.number)


async def history(
    query: CallbackQuery,
    callback_data: CaseCb,
    services: Services,
    worker: Worker,
    bot: Bot,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    """The case's whole history and correspondence as a .txt file, to the worker's private chat.
    Rights are checked again: only a member of the case's team gets the messages."""
    case, access = await services.case_actions.worker_case_access(worker, callback_data.case_id)
    if not access.member:
        raise NotAllowed()
    card = await services.queues.card(case, events=HISTORY_MAX, messages=HISTORY_MAX)
    name, content = screens.history_file(case, card, get_i18n().current_locale, settings.locale.tz)
    await bot.send_document(
        query.from_user.id, BufferedInputFile(content, filename=name), caption=case.number
    )
    callback_answer.text = _("worker.history.sent")


async def docs_start(
    query: CallbackQuery,
    callback_data: CaseCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    case = await services.case_actions.member_open_case(worker, callback_data.case_id)
    checklist = await services.documents.checklist(case.service_id)
    if not checklist:
        _refuse_softly(callback_answer, "worker.docs.no_checklist")
        return
    # A new request starts clean: no items, no note left from an abandoned one.
    await state.update_data({f"docs_{case.id}": [], docs_note_key(case.id): None})
    if (message := _message(query)) is not None:
        text, markup = screens.docs_menu(case, checklist, i18n.current_locale)
        await message.answer(text, reply_markup=markup)


# -- menus opened from the card -----------------------------------------------------------------


async def choose_status(
    query: CallbackQuery,
    callback_data: StatusCb,
    state: FSMContext,
    services: Services,
    worker: Worker,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    to = callback_data.to
    case = await services.case_actions.status_target(worker, callback_data.case_id, to)
    needed = required_text(to)
    if needed is not None:
        await state.set_state(CaseForm.reason)
        await state.update_data(case_id=case.id, to_status=to)
        if (message := _message(query)) is not None:
            key = "worker.status.ask_outcome" if needed == "outcome" else "worker.status.ask_reason"
            await message.answer(screens.headed(case, key))
        return
    before = case.status
    await services.case_actions.change_status(case.id, worker, to)
    callback_answer.text = (
        _("worker.status.same")
        if before == to
        else _("worker.status.changed") % {"status": _("case.status." + to)}
    )
    if (message := _message(query)) is not None:
        await show_card(message, services, worker, case.id, settings)


async def choose_transfer_team(
    query: CallbackQuery, callback_data: TransferCb, state: FSMContext, services: Services, worker: Worker
) -> None:
    case = await services.case_actions.transfer_target(worker, callback_data.case_id, callback_data.team_id)
    await state.set_state(CaseForm.transfer_note)
    await state.update_data(case_id=case.id, team_id=callback_data.team_id)
    if (message := _message(query)) is not None:
        await message.answer(screens.headed(case, "worker.transfer.ask_note"))


async def choose_assignee(
    query: CallbackQuery,
    callback_data: AssignCb,
    services: Services,
    worker: Worker,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    case = await services.case_actions.assign(callback_data.case_id, worker, callback_data.worker_id)
    assignee = await services.workers.get(callback_data.worker_id)
    callback_answer.text = _("worker.assign.done") % {"name": assignee.display_name if assignee else ""}
    if (message := _message(query)) is not None:
        await show_card(message, services, worker, case.id, settings)


async def pick_document(
    query: CallbackQuery,
    callback_data: DocPickCb,
    state: FSMContext,
    services: Services,
    worker: Worker,
    settings: Settings,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    """Toggle a checklist item, then `@done` offers the deadlines, then a deadline sends it."""
    case = await services.case_actions.member_open_case(worker, callback_data.case_id)
    key = f"docs_{case.id}"
    chosen: list[str] = list((await state.get_data()).get(key) or [])
    message = _message(query)
    if callback_data.days or callback_data.item == "@done":
        if not chosen:
            _refuse_softly(callback_answer, "worker.docs.none_chosen")
            return
        if callback_data.item == "@done":
            if message is not None:
                templates = bool(await services.replies.templates(case.team_id))
                text, markup = screens.deadline_menu(case, DEADLINE_DAYS, templates=templates)
                await message.edit_text(text, reply_markup=markup)
            return
        note = await docs_note(services, worker, state, i18n, case.id, callback_data.days)
        # Forget the selection first: a double tap then finds nothing to send (and the FSM
        # storage must write before this update's transaction does, for SQLite).
        await state.update_data({key: [], docs_note_key(case.id): None})
        await services.documents.request_from_card(worker, case.id, chosen, callback_data.days, note)
        callback_answer.text = _("worker.docs.sent")
        if message is not None:
            await message.edit_reply_markup(reply_markup=None)
            await show_card(message, services, worker, case.id, settings)
        return
    checklist = await services.documents.checklist(case.service_id)
    if callback_data.item not in {d.code for d in checklist}:
        raise StaleAction()
    if callback_data.item in chosen:
        chosen.remove(callback_data.item)
    else:
        chosen.append(callback_data.item)
    await state.update_data({key: chosen})
    if message is not None:
        await message.edit_reply_markup(
            reply_markup=screens.docs_markup(case.id, checklist, chosen, i18n.current_locale)
        )


async def documents_received(
    query: CallbackQuery,
    callback_data: DocsReceivedCb,
    services: Services,
    worker: Worker,
    callback_answer: CallbackAnswer,
) -> None:
    """A document request's "received" button on the card: its reminders stop."""
    await services.documents.receive_from_card(worker, callback_data.request_id)
    callback_answer.text = _("docs.received_done")
    callback_answer.show_alert = True


async def open_by_number(
    message: Message, command: CommandObject, services: Services, worker: Worker, settings: Settings
) -> None:
    """/case VES-2026-000123: the card of a case someone names (a resident on the phone, a
    colleague), if this worker may see it; any other number gets the same "not found".
    /case 050 123 45 67: the caller's cases in the worker's teams."""
    number = case_number(command.args)
    if number is not None:
        case = await services.case_actions.worker_case_by_number(worker, number)
        await show_card(message, services, worker, case.id, settings)
        return
    phone = normalize_phone(command.args)
    if phone is None:
        await message.answer(_("worker.case_number_hint"))
        return
    cases = await services.case_actions.worker_cases_by_phone(worker, phone)
    text, markup = screens.found_by_phone(cases, get_i18n().current_locale, settings.locale.tz)
    await message.answer(text, reply_markup=markup if cases else None)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, CaseCb, StatusCb, TransferCb, AssignCb, DocPickCb, DocsReceivedCb)
    router.callback_query.filter(ActiveWorker())
    presses = router.callback_query
    router.message.register(open_by_number, Command("case"), ActiveWorker())
    presses.register(open_card, Action(CaseCb, "open"))
    presses.register(take, Action(CaseCb, "take"))
    presses.register(status_menu, Action(CaseCb, "status"))
    presses.register(write, Action(CaseCb, "write"))
    presses.register(transfer_menu, Action(CaseCb, "transfer"))
    presses.register(assign_menu, Action(CaseCb, "assign"))
    presses.register(files, Action(CaseCb, "files"))
    presses.register(history, Action(CaseCb, "history"))
    presses.register(docs_start, Action(CaseCb, "docs"))
    presses.register(choose_status, StatusCb.filter())
    presses.register(choose_transfer_team, TransferCb.filter())
    presses.register(choose_assignee, AssignCb.filter())
    presses.register(pick_document, DocPickCb.filter())
    presses.register(documents_received, DocsReceivedCb.filter())
    steps = StateFilter(CaseForm.reason, CaseForm.write, CaseForm.transfer_note)
    router.message.register(reason_step, StateFilter(CaseForm.reason), PlainText(), ActiveWorker())
    router.message.register(write_step, StateFilter(CaseForm.write), PlainText(), ActiveWorker())
    router.message.register(transfer_step, StateFilter(CaseForm.transfer_note), PlainText(), ActiveWorker())
    router.message.register(not_a_worker, steps, PlainText())
    router.message.register(text_required, steps, NotCommand())
    return router
