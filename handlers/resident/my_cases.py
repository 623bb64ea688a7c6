"""My requests: a paged list, one case with its history, and the resident's actions on it —
write to the worker, add a document, cancel (with confirmation).

Callback data only names a case; every press goes through `ResidentCases`, which treats someone
else's case exactly like a missing one. Screens are in `my_cases_screens`."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import MyCaseCb
from handlers.kit.filters import Action, HasFile, MenuButton, NonText, NotMenuText, prune_callbacks
from handlers.kit.keyboards import consent_keyboard
from handlers.kit.messages import edit_or_send
from handlers.kit.render import refusal_text
from handlers.resident import my_cases_screens as screens
from infra.settings import Settings
from models import Case, User
from services.errors import DomainError, StaleAction
from services.hub import Services
from services.text import tidy

PAGE_SIZE = 5
HISTORY_LIMIT = 15
MESSAGES_LIMIT = 5
MESSAGE_MAX = 2000


class MyCaseForm(StatesGroup):
    message = State()
    document = State()


async def _show_list(
    query: CallbackQuery | Message, services: Services, user: User, page: int, i18n: I18n
) -> None:
    listing = await services.resident_cases.list_page(user, page, PAGE_SIZE)
    text, markup = screens.list_screen(listing, i18n.current_locale)
    if isinstance(query, Message):
        await query.answer(text, reply_markup=markup)
    else:
        await edit_or_send(query, text, markup)


async def _show_case(
    query: CallbackQuery, case: Case, services: Services, i18n: I18n, settings: Settings, page: int
) -> None:
    card = await services.resident_cases.card(case, events=HISTORY_LIMIT, messages=MESSAGES_LIMIT)
    text, markup = screens.case_screen(card, i18n, settings.locale.tz, page)
    await edit_or_send(query, text, markup)


async def _leave_my_form(state: FSMContext) -> None:
    current = await state.get_state()
    if current and current.startswith(f"{MyCaseForm.__name__}:"):
        await state.clear()


# -- the list and one case ------------------------------------------------------------------------
async def my_requests(message: Message, services: Services, user: User, i18n: I18n) -> None:
    if not await services.users.has_consent(user):
        await message.answer(
            _("intake.need_consent") + "\n\n" + _("consent.text"), reply_markup=consent_keyboard()
        )
        return
    await _show_list(message, services, user, 0, i18n)


async def show_page(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
) -> None:
    await _leave_my_form(state)
    await _show_list(query, services, user, callback_data.page, i18n)


async def open_case(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
    settings: Settings,
) -> None:
    await _leave_my_form(state)
    case = await services.resident_cases.own(user, callback_data.case_id)
    await _show_case(query, case, services, i18n, settings, callback_data.page)


# -- write to the worker, add a document ----------------------------------------------------------
async def _start_typed_step(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    state: FSMContext,
    services: Services,
    user: User,
    step: State,
) -> Case:
    case = await services.resident_cases.own_open(user, callback_data.case_id)
    await state.set_state(step)
    await state.set_data({"case_id": case.id, "page": callback_data.page})
    return case


async def start_write(
    query: CallbackQuery, callback_data: MyCaseCb, state: FSMContext, services: Services, user: User
) -> None:
    case = await _start_typed_step(query, callback_data, state, services, user, MyCaseForm.message)
    if isinstance(query.message, Message):
        await query.message.answer(
            _("mycases.ask_message") % {"number": case.number, "max": MESSAGE_MAX},
            reply_markup=screens.back_to_case(case.id, callback_data.page),
        )


async def message_text(message: Message, state: FSMContext, services: Services, user: User) -> None:
    text = tidy(message.text, multiline=True)
    if not text:
        await message.answer(_("case.error.empty_text"))
        return
    if len(text) > MESSAGE_MAX:
        await message.answer(_("mycases.message_too_long") % {"n": len(text), "max": MESSAGE_MAX})
        return
    data = await state.get_data()
    await state.clear()
    try:
        await services.resident_cases.write(user, int(data.get("case_id") or 0), text)
    except DomainError as refusal:
        # Local recovery: the typed step ends even when the message is refused (the case was
        # closed or is gone meanwhile), so the next text is not taken for that case again.
        # Raising would roll that state change back with the update.
        await message.answer(refusal_text(refusal))
        return
    await message.answer(_("mycases.message_sent"))


async def start_document(
    query: CallbackQuery, callback_data: MyCaseCb, state: FSMContext, services: Services, user: User
) -> None:
    case = await _start_typed_step(query, callback_data, state, services, user, MyCaseForm.document)
    if isinstance(query.message, Message):
        await query.message.answer(
            _("mycases.ask_document") % {"number": case.number},
            reply_markup=screens.back_to_case(case.id, callback_data.page),
        )


async def document_received(message: Message, state: FSMContext, services: Services, user: User) -> None:
    data = await state.get_data()
    fields: dict[str, Any]
    if message.photo:
        photo = message.photo[-1]
        fields = {"kind": "photo", "file_id": photo.file_id, "file_unique_id": photo.file_unique_id}
    else:
        doc = message.document
        assert doc is not None
        fields = {
            "kind": "document",
            "file_id": doc.file_id,
            "file_unique_id": doc.file_unique_id,
            "file_name": doc.file_name,
            "mime_type": doc.mime_type,
        }
    await services.resident_cases.attach(user, int(data.get("case_id") or 0), **fields)
    # The state stays: more files may follow; "Back to the request" ends it.
    await message.answer(
        _("mycases.document_added"),
        reply_markup=screens.back_to_case(int(data["case_id"]), int(data.get("page") or 0)),
    )


async def document_expected(message: Message) -> None:
    await message.answer(_("mycases.document_expected"))


async def message_expected(message: Message) -> None:
    await message.answer(_("intake.text_expected"))


# -- cancel ------------------------------------------------------------------------------------------
async def ask_cancel(query: CallbackQuery, callback_data: MyCaseCb, services: Services, user: User) -> None:
    case = await services.resident_cases.own_open(user, callback_data.case_id)
    text, markup = screens.cancel_confirm(case.number, case.id, callback_data.page)
    await edit_or_send(query, text, markup)


async def do_cancel(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    services: Services,
    user: User,
    i18n: I18n,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    case = await services.resident_cases.cancel(user, callback_data.case_id, _("mycases.cancel_reason"))
    callback_answer.text = _("mycases.cancelled")
    await _show_case(query, case, services, i18n, settings, callback_data.page)


async def stale(query: CallbackQuery) -> None:
    raise StaleAction()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, MyCaseCb)
    router.message.register(my_requests, Command("my"))
    router.message.register(my_requests, MenuButton("menu.my_requests"))
    cb = router.callback_query
    cb.register(show_page, Action(MyCaseCb, "page"))
    cb.register(open_case, Action(MyCaseCb, "open"))
    cb.register(start_write, Action(MyCaseCb, "write"))
    cb.register(start_document, Action(MyCaseCb, "doc"))
    cb.register(ask_cancel, Action(MyCaseCb, "cancel"))
    cb.register(do_cancel, Action(MyCaseCb, "cancel_yes"))
    cb.register(stale, MyCaseCb.filter())
    router.message.register(message_text, MyCaseForm.message, NotMenuText())
    router.message.register(message_expected, MyCaseForm.message, NonText())
    router.message.register(document_received, MyCaseForm.document, HasFile())
    router.message.register(document_expected, MyCaseForm.document, NotMenuText())
    router.message.register(document_expected, MyCaseForm.document, NonText())
    return router
