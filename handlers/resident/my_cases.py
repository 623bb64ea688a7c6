"""My requests (issue 3): a paged list, one case with its history, and the resident's actions
on it — write to the worker, add a document, cancel (with confirmation).

Callback data only names a case; every press goes through `CaseActions.resident_case`, which
treats someone else's case exactly like a missing one.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import MyCaseCb
from handlers.kit.filters import MenuButton, prune_callbacks
from handlers.kit.keyboards import consent_keyboard
from handlers.kit.render import routing_reason
from handlers.kit.filters import NotMenuText
from infra.settings import Settings
from models import Case, CaseEvent, Hromada, Service, Settlement, Team, User
from models.cases import CLOSED_STATUSES
from services.case_actions import CaseActions, CaseError, NotFound
from services.cases import ResidentCases
from services.clock import Clock
from services.users import UserService

PAGE_SIZE = 5
HISTORY_LIMIT = 15
MESSAGES_LIMIT = 5
MESSAGE_MAX = 2000
EXCERPT = 300


class MyCaseForm(StatesGroup):
    message = State()
    document = State()


# -- rendering -------------------------------------------------------------------------------------
def _when(at: datetime, settings: Settings) -> str:
    return at.astimezone(settings.locale.tz).strftime("%d.%m.%Y %H:%M")


def _short(text: str, limit: int = EXCERPT) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(text)


async def _list_screen(
    session: AsyncSession, user: User, page: int, locale: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    resident = await UserService(session).resident(user)
    if resident is None:
        return _("mycases.empty"), None
    total, cases = await ResidentCases(session).page(resident.id, page, PAGE_SIZE)
    if total == 0:
        return _("mycases.empty"), None
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(max(page, 0), pages - 1)
    if not cases:
        total, cases = await ResidentCases(session).page(resident.id, page, PAGE_SIZE)
    builder = InlineKeyboardBuilder()
    lines = [_("mycases.title") % {"count": _("requests.count", "requests.count", total) % {"n": total}}, ""]
    for case in cases:
        status = _("case.status." + case.status)
        lines.append(f"<b>{case.number}</b> · {html.escape(case.service.name(locale))} · {status}")
        builder.button(
            text=f"{case.number} · {status}",
            callback_data=MyCaseCb(action="open", case_id=case.id, page=page),
        )
    builder.adjust(1)
    nav = []
    if page > 0:
        nav.append(("mycases.btn.prev", page - 1))
    if page < pages - 1:
        nav.append(("mycases.btn.next", page + 1))
    if nav:
        builder.row(
            *[
                InlineKeyboardButton(text=_(key), callback_data=MyCaseCb(action="page", page=p).pack())
                for key, p in nav
            ]
        )
    if pages > 1:
        lines.append("")
        lines.append(_("mycases.page") % {"page": page + 1, "pages": pages})
    return "\n".join(lines), builder.as_markup()


async def _event_line(event: CaseEvent, session: AsyncSession, locale: str, settings: Settings) -> str:
    when = _when(event.at, settings)
    if event.kind == "created":
        text = _("mycases.event.created")
    elif event.kind == "status" and event.to_status:
        text = _("mycases.event.status") % {"status": _("case.status." + event.to_status)}
        if event.reason:
            text += " — " + _short(event.reason, 200)
    elif event.kind == "assigned":
        text = _("mycases.event.assigned")
    elif event.kind == "transferred":
        team = await session.get(Team, (event.data or {}).get("to_team") or 0)
        text = _("mycases.event.transferred") % {"team": html.escape(team.name(locale)) if team else "—"}
    else:
        text = _("mycases.event.other")
    return f"{when} — {text}"


async def _case_screen(
    case: Case, actions: CaseActions, session: AsyncSession, i18n: I18n, settings: Settings, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    locale = i18n.current_locale
    service = await session.get(Service, case.service_id)
    team = await session.get(Team, case.team_id)
    hromada = await session.get(Hromada, case.hromada_id)
    settlement = await session.get(Settlement, case.settlement_id) if case.settlement_id else None
    place = hromada.name(locale) if hromada else ""
    if settlement is not None:
        place = f"{place}, {settlement.name(locale)}"
    lines = [
        _("mycases.card")
        % {
            "number": case.number,
            "service": html.escape(service.name(locale)) if service else "—",
            "status": _("case.status." + case.status),
            "team": html.escape(team.name(locale)) if team else "—",
            "place": html.escape(place),
            "created": _when(case.created_at, settings),
            "description": _short(case.description),
        },
        "",
        "<i>" + routing_reason(case, locale, i18n) + "</i>",
        "",
        "<b>" + _("mycases.history") + "</b>",
    ]
    events = (await actions.history(case.id))[-HISTORY_LIMIT:]
    for event in events:
        lines.append(await _event_line(event, session, locale, settings))
    messages = await actions.messages(case.id, limit=MESSAGES_LIMIT)
    if messages:
        lines.append("")
        lines.append("<b>" + _("mycases.messages") + "</b>")
        for m in messages:
            who = _("mycases.from_me") if m.from_resident else _("mycases.from_worker")
            lines.append(f"{_when(m.at, settings)} {who}: {_short(m.text, 200)}")
    builder = InlineKeyboardBuilder()
    if case.status not in CLOSED_STATUSES:
        builder.button(
            text=_("mycases.btn.write"), callback_data=MyCaseCb(action="write", case_id=case.id, page=page)
        )
        builder.button(
            text=_("mycases.btn.document"), callback_data=MyCaseCb(action="doc", case_id=case.id, page=page)
        )
        builder.button(
            text=_("mycases.btn.cancel"), callback_data=MyCaseCb(action="cancel", case_id=case.id, page=page)
        )
    builder.button(text=_("mycases.btn.list"), callback_data=MyCaseCb(action="page", page=page))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


async def _edit_or_send(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    message = query.message
    if not isinstance(message, Message):
        return
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest:
        await message.answer(text, reply_markup=markup)


# -- handlers ---------------------------------------------------------------------------------------
async def my_requests(message: Message, session: AsyncSession, user: User, i18n: I18n) -> None:
    if not await UserService(session).has_consent(user):
        await message.answer(
            _("intake.need_consent") + "\n\n" + _("consent.text"), reply_markup=consent_keyboard()
        )
        return
    text, markup = await _list_screen(session, user, 0, i18n.current_locale)
    await message.answer(text, reply_markup=markup)


async def show_page(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
) -> None:
    if await _in_my_form(state):
        await state.clear()
    await query.answer()
    text, markup = await _list_screen(session, user, callback_data.page, i18n.current_locale)
    await _edit_or_send(query, text, markup)


async def open_case(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
    clock: Clock,
    settings: Settings,
) -> None:
    if await _in_my_form(state):
        await state.clear()
    actions = CaseActions(session, clock)
    try:
        case = await actions.resident_case(user, callback_data.case_id)
    except NotFound:
        await query.answer(_("mycases.not_found"), show_alert=True)
        return
    await query.answer()
    text, markup = await _case_screen(case, actions, session, i18n, settings, callback_data.page)
    await _edit_or_send(query, text, markup)


async def _open_case_for_action(
    query: CallbackQuery, callback_data: MyCaseCb, actions: CaseActions, user: User
) -> Case | None:
    try:
        case = await actions.resident_case(user, callback_data.case_id)
    except NotFound:
        await query.answer(_("mycases.not_found"), show_alert=True)
        return None
    if case.status in CLOSED_STATUSES:
        await query.answer(_("case.error.closed"), show_alert=True)
        return None
    return case


def _abort_keyboard(case_id: int, page: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("mycases.btn.back_to_case"), callback_data=MyCaseCb(action="open", case_id=case_id, page=page)
    )
    return builder.as_markup()


async def start_write(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
) -> None:
    case = await _open_case_for_action(query, callback_data, CaseActions(session, clock), user)
    if case is None:
        return
    await state.set_state(MyCaseForm.message)
    await state.set_data({"case_id": case.id, "page": callback_data.page})
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(
            _("mycases.ask_message") % {"number": case.number, "max": MESSAGE_MAX},
            reply_markup=_abort_keyboard(case.id, callback_data.page),
        )


async def message_text(
    message: Message, state: FSMContext, session: AsyncSession, user: User, clock: Clock
) -> None:
    text = (message.text or "").strip()
    if not text:
        await message.answer(_("case.error.empty_text"))
        return
    if len(text) > MESSAGE_MAX:
        await message.answer(_("mycases.message_too_long") % {"n": len(text), "max": MESSAGE_MAX})
        return
    data = await state.get_data()
    await state.clear()
    try:
        await CaseActions(session, clock).resident_message(user, int(data.get("case_id") or 0), text)
    except NotFound:
        await message.answer(_("mycases.not_found"))
        return
    except CaseError as exc:
        await message.answer(_("case.error." + exc.code))
        return
    await message.answer(_("mycases.message_sent"))


async def start_document(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
) -> None:
    case = await _open_case_for_action(query, callback_data, CaseActions(session, clock), user)
    if case is None:
        return
    await state.set_state(MyCaseForm.document)
    await state.set_data({"case_id": case.id, "page": callback_data.page})
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(
            _("mycases.ask_document") % {"number": case.number},
            reply_markup=_abort_keyboard(case.id, callback_data.page),
        )


async def document_received(
    message: Message, state: FSMContext, session: AsyncSession, user: User, clock: Clock
) -> None:
    data = await state.get_data()
    if message.photo:
        photo = message.photo[-1]
        fields: dict[str, Any] = {
            "kind": "photo",
            "file_id": photo.file_id,
            "file_unique_id": photo.file_unique_id,
        }
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
    try:
        await CaseActions(session, clock).resident_attachment(user, int(data.get("case_id") or 0), **fields)
    except NotFound:
        await message.answer(_("mycases.not_found"))
        return
    except CaseError as exc:
        await message.answer(_("case.error." + exc.code))
        return
    # The state stays: more files may follow; "Back to the request" ends it.
    await message.answer(
        _("mycases.document_added"),
        reply_markup=_abort_keyboard(int(data["case_id"]), int(data.get("page") or 0)),
    )


async def document_expected(message: Message) -> None:
    await message.answer(_("mycases.document_expected"))


async def message_expected(message: Message) -> None:
    await message.answer(_("intake.text_expected"))


async def ask_cancel(
    query: CallbackQuery, callback_data: MyCaseCb, session: AsyncSession, user: User, clock: Clock
) -> None:
    case = await _open_case_for_action(query, callback_data, CaseActions(session, clock), user)
    if case is None:
        return
    await query.answer()
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("mycases.btn.cancel_yes"),
        callback_data=MyCaseCb(action="cancel_yes", case_id=case.id, page=callback_data.page),
    )
    builder.button(
        text=_("mycases.btn.cancel_no"),
        callback_data=MyCaseCb(action="open", case_id=case.id, page=callback_data.page),
    )
    builder.adjust(1)
    await _edit_or_send(query, _("mycases.cancel_confirm") % {"number": case.number}, builder.as_markup())


async def do_cancel(
    query: CallbackQuery,
    callback_data: MyCaseCb,
    session: AsyncSession,
    user: User,
    i18n: I18n,
    clock: Clock,
    settings: Settings,
) -> None:
    actions = CaseActions(session, clock)
    try:
        case = await actions.cancel_by_resident(user, callback_data.case_id, _("mycases.cancel_reason"))
    except NotFound:
        await query.answer(_("mycases.not_found"), show_alert=True)
        return
    except CaseError as exc:
        await query.answer(_("case.error." + exc.code), show_alert=True)
        return
    await query.answer(_("mycases.cancelled"))
    text, markup = await _case_screen(case, actions, session, i18n, settings, callback_data.page)
    await _edit_or_send(query, text, markup)


async def stale(query: CallbackQuery) -> None:
    await query.answer(_("errors.stale_button"), show_alert=True)


async def _in_my_form(state: FSMContext) -> bool:
    current = await state.get_state()
    return bool(current and current.startswith(f"{MyCaseForm.__name__}:"))


class _Action(Filter):
    def __init__(self, action: str) -> None:
        self.inner = MyCaseCb.filter()
        self.action = action

    async def __call__(self, query: CallbackQuery) -> bool | dict[str, Any]:
        result = await self.inner(query)
        if isinstance(result, dict) and result["callback_data"].action == self.action:
            return result
        return False


class _HasFile(Filter):
    async def __call__(self, message: Message) -> bool:
        return bool(message.photo or message.document)


class _NonText(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.text is None


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, MyCaseCb)
    router.message.register(my_requests, Command("my"))
    router.message.register(my_requests, MenuButton("menu.my_requests"))
    cb = router.callback_query
    cb.register(show_page, _Action("page"))
    cb.register(open_case, _Action("open"))
    cb.register(start_write, _Action("write"))
    cb.register(start_document, _Action("doc"))
    cb.register(ask_cancel, _Action("cancel"))
    cb.register(do_cancel, _Action("cancel_yes"))
    cb.register(stale, MyCaseCb.filter())
    router.message.register(message_text, MyCaseForm.message, NotMenuText())
    router.message.register(message_expected, MyCaseForm.message, _NonText())
    router.message.register(document_received, MyCaseForm.document, _HasFile())
    router.message.register(document_expected, MyCaseForm.document, NotMenuText())
    router.message.register(document_expected, MyCaseForm.document, _NonText())
    return router
