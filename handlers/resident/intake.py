"""New request form (issue 3): hromada → settlement → service → vulnerability → description →
files → on whose behalf → phone → summary → confirm.

Everything the resident entered lives in the FSM data (JSON, kept in the database), so a draft
survives a restart. Every step has Back and Cancel; every value from a button is re-checked
against the draft and the database; the confirm button carries the draft id, which is also the
idempotency key of the case (a double tap files one case).
"""

from __future__ import annotations

import html
import logging
import uuid
from typing import Any

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import IntakeCb
from handlers.kit.filters import MenuButton, prune_callbacks
from handlers.kit.keyboards import MAIN_MENU_KEYS, consent_keyboard, main_menu
from handlers.kit.render import routing_reason
from infra.i18n import LANGUAGES
from models import Hromada, Resident, Service, Settlement, Team, User
from services.cases import (
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    MAX_ATTACHMENTS,
    VULNERABILITY_MARKERS,
    AttachmentDraft,
    CaseDraft,
    IntakeService,
    InvalidDraft,
    normalise_phone,
)
from services.catalogue import CatalogueService
from services.clock import Clock
from services.routing import HromadaNotAccepting, RoutingError
from services.users import UserService
from services.workers import WorkerService

__all__ = ["IntakeForm", "create_router", "routing_reason"]

log = logging.getLogger(__name__)

SEARCH_MIN, SEARCH_MAX = 2, 60
NAME_MIN, NAME_MAX = 2, 120
RELATION_MIN, RELATION_MAX = 2, 60
HROMADA_MATCHES = 8


class IntakeForm(StatesGroup):
    """One FSM state for the whole form; the current step is `data["step"]`, so moving on is
    one storage write (data) instead of two (data and state)."""

    active = State()


class S:
    """Step names (values of `data["step"]`)."""

    hromada = "hromada"
    settlement = "settlement"
    service = "service"
    vulnerability = "vulnerability"
    description = "description"
    attachments = "attachments"
    on_behalf = "on_behalf"
    on_behalf_name = "on_behalf_name"
    on_behalf_relation = "on_behalf_relation"
    contact = "contact"
    confirm = "confirm"


ACTIVE = IntakeForm.active.state
TEXT_STEPS = (S.hromada, S.description, S.on_behalf_name, S.on_behalf_relation)
BUTTON_STEPS = (S.settlement, S.service, S.vulnerability, S.on_behalf, S.confirm)


def _previous(step: str, data: dict[str, Any]) -> str | None:
    if step == S.contact:
        return S.on_behalf_relation if data.get("on_behalf") else S.on_behalf
    order = {
        S.settlement: S.hromada,
        S.service: S.settlement,
        S.vulnerability: S.service,
        S.description: S.vulnerability,
        S.attachments: S.description,
        S.on_behalf: S.attachments,
        S.on_behalf_name: S.on_behalf,
        S.on_behalf_relation: S.on_behalf_name,
        S.confirm: S.contact,
    }
    return order.get(step)


# -- filters -----------------------------------------------------------------------------------
class NotMenuText(Filter):
    """Text that is neither a command nor a main-menu button (those keep working in the
    middle of the form; the draft stays)."""

    async def __call__(self, message: Message, i18n: I18n) -> bool:
        text = message.text
        if text is None or text.startswith("/"):
            return False
        keys = (*MAIN_MENU_KEYS, "menu.worker_panel", "menu.give_consent")
        return all(text != i18n.gettext(key, locale=lang) for key in keys for lang in LANGUAGES)


class HasContact(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.contact is not None


class HasFile(Filter):
    async def __call__(self, message: Message) -> bool:
        return bool(message.photo or message.document)


# -- keyboards -----------------------------------------------------------------------------------
def _nav(builder: InlineKeyboardBuilder, *, back: bool = True) -> None:
    row = []
    if back:
        row.append(("intake.btn.back", IntakeCb(action="back")))
    row.append(("intake.btn.cancel", IntakeCb(action="cancel")))
    builder.row(*[_button(key, cb) for key, cb in row])


def _button(key: str, cb: IntakeCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_(key), callback_data=cb.pack())


def _contact_keyboard(saved_phone: str | None) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(text=_("intake.btn.share_phone"), request_contact=True)]]
    if saved_phone:
        rows.append([KeyboardButton(text=_("intake.btn.use_saved_phone"))])
    rows.append([KeyboardButton(text=_("intake.btn.back")), KeyboardButton(text=_("intake.btn.cancel"))])
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, one_time_keyboard=True)


async def _menu(session: AsyncSession, user: User) -> ReplyKeyboardMarkup:
    is_worker = await WorkerService(session).is_active_worker(user)
    return main_menu(with_personal=True, is_worker=is_worker)


# -- step screens ----------------------------------------------------------------------------------
Screen = tuple[str, InlineKeyboardMarkup | ReplyKeyboardMarkup]


async def _resident(session: AsyncSession, user: User) -> Resident | None:
    resident = await UserService(session).resident(user)
    if resident is None or resident.consent_at is None or resident.erased_at is not None:
        return None
    return resident


def _saved_phone(resident: Resident | None) -> str | None:
    if resident is not None and resident.phone and resident.phone_verified_at is not None:
        return resident.phone
    return None


async def _screen(step: str, data: dict[str, Any], session: AsyncSession, user: User, locale: str) -> Screen:
    builder = InlineKeyboardBuilder()
    if step == S.hromada:
        resident = await _resident(session, user)
        last = (
            await session.get(Hromada, resident.last_hromada_id)
            if resident and resident.last_hromada_id
            else None
        )
        current = await session.get(Hromada, data["hromada_id"]) if data.get("hromada_id") else None
        offered = [h for h in (current, last) if h is not None]
        seen: set[int] = set()
        for h in offered:
            if h.id not in seen:
                seen.add(h.id)
                builder.row(_button_text(f"📍 {h.name(locale)}", IntakeCb(action="h", value=str(h.id))))
        _nav(builder, back=False)
        return _("intake.ask_hromada") % {"min": SEARCH_MIN}, builder.as_markup()
    if step == S.settlement:
        hromada = await session.get(Hromada, data["hromada_id"])
        settlements = await CatalogueService(session).settlements(data["hromada_id"])
        for st in settlements:
            builder.button(text=st.name(locale), callback_data=IntakeCb(action="st", value=str(st.id)))
        builder.adjust(2)
        _nav(builder)
        name = html.escape(hromada.name(locale)) if hromada else ""
        return _("intake.ask_settlement") % {"hromada": name}, builder.as_markup()
    if step == S.service:
        lines = [_("intake.ask_service"), ""]
        for group, services in await CatalogueService(session).services_by_group():
            lines.append(f"<b>{_('service_group.' + group)}</b>")
            for service in services:
                lines.append(
                    f"• {html.escape(service.name(locale))} — {html.escape(service.description(locale))}"
                )
                builder.row(_button_text(service.name(locale), IntakeCb(action="sv", value=str(service.id))))
        _nav(builder)
        return "\n".join(lines), builder.as_markup()
    if step == S.vulnerability:
        chosen = set(data.get("vulnerability") or [])
        for code in VULNERABILITY_MARKERS:
            mark = "✅" if code in chosen else "▫️"
            builder.row(
                _button_text(f"{mark} {_('intake.marker.' + code)}", IntakeCb(action="vul", value=code))
            )
        builder.row(_button("intake.btn.done", IntakeCb(action="vdone")))
        _nav(builder)
        return _("intake.ask_vulnerability"), builder.as_markup()
    if step == S.description:
        _nav(builder)
        return _("intake.ask_description") % {
            "min": DESCRIPTION_MIN,
            "max": DESCRIPTION_MAX,
        }, builder.as_markup()
    if step == S.attachments:
        count = len(data.get("attachments") or [])
        builder.row(
            _button("intake.btn.files_done" if count else "intake.btn.no_files", IntakeCb(action="adone"))
        )
        _nav(builder)
        return _("intake.ask_attachments") % {"max": MAX_ATTACHMENTS, "n": count}, builder.as_markup()
    if step == S.on_behalf:
        builder.row(_button("intake.btn.for_me", IntakeCb(action="beh", value="self")))
        builder.row(_button("intake.btn.for_other", IntakeCb(action="beh", value="other")))
        _nav(builder)
        return _("intake.ask_on_behalf"), builder.as_markup()
    if step == S.on_behalf_name:
        _nav(builder)
        return _("intake.ask_other_name"), builder.as_markup()
    if step == S.on_behalf_relation:
        _nav(builder)
        return _("intake.ask_other_relation"), builder.as_markup()
    if step == S.contact:
        saved = _saved_phone(await _resident(session, user))
        text = _("intake.ask_phone")
        if saved:
            text += "\n" + _("intake.ask_phone_saved") % {"phone": html.escape(saved)}
        return text, _contact_keyboard(saved)
    # confirm
    builder.row(_button("intake.btn.confirm", IntakeCb(action="confirm", value=data["draft_id"])))
    _nav(builder)
    return await _summary(data, session, locale), builder.as_markup()


def _button_text(text: str, cb: IntakeCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=cb.pack())


async def _summary(data: dict[str, Any], session: AsyncSession, locale: str) -> str:
    hromada = await session.get(Hromada, data["hromada_id"])
    settlement = await session.get(Settlement, data["settlement_id"]) if data.get("settlement_id") else None
    service = await session.get(Service, data["service_id"])
    markers = ", ".join(_("intake.marker." + c) for c in data.get("vulnerability") or []) or "—"
    if data.get("on_behalf"):
        who = _("intake.summary.for_other") % {
            "name": html.escape(data.get("on_behalf_name") or ""),
            "relation": html.escape(data.get("on_behalf_relation") or ""),
        }
    else:
        who = _("intake.summary.for_me")
    return _("intake.summary") % {
        "hromada": html.escape(hromada.name(locale)) if hromada else "—",
        "settlement": html.escape(settlement.name(locale)) if settlement else "—",
        "service": html.escape(service.name(locale)) if service else "—",
        "markers": markers,
        "description": html.escape(data.get("description") or ""),
        "files": len(data.get("attachments") or []),
        "who": who,
        "phone": html.escape(data.get("contact_phone") or "—"),
    }


async def _show(
    event: Message | CallbackQuery,
    step: str,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
    *,
    updates: dict[str, Any] | None = None,
    fresh: bool = False,
    prefix: str | None = None,
) -> None:
    """Go to `step` (saving `updates` into the draft in the same write) and show its screen:
    edit the pressed message when possible."""
    data = {} if fresh else await state.get_data()
    data.update(updates or {})
    data["step"] = step
    await state.set_data(data)
    if fresh or await state.get_state() != ACTIVE:
        await state.set_state(IntakeForm.active)
    text, markup = await _screen(step, data, session, user, i18n.current_locale)
    if prefix:
        text = f"{prefix}\n\n{text}"
    if isinstance(event, CallbackQuery):
        message = event.message
        if isinstance(markup, InlineKeyboardMarkup) and isinstance(message, Message):
            try:
                await message.edit_text(text, reply_markup=markup)
                return
            except TelegramBadRequest as exc:
                if "not modified" in str(exc):  # a repeated tap: the screen is already right
                    return
                # Too old (or no longer there) to edit: send it as a new message below.
        elif isinstance(message, Message):
            await message.edit_reply_markup(reply_markup=None)
        if isinstance(message, Message):
            await message.answer(text, reply_markup=markup)
        return
    await event.answer(text, reply_markup=markup)


# -- entry, cancel, back -------------------------------------------------------------------------
async def new_request(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    if await _resident(session, user) is None:
        await message.answer(
            _("intake.need_consent") + "\n\n" + _("consent.text"), reply_markup=consent_keyboard()
        )
        return
    current = await state.get_state()
    data = await state.get_data()
    if current == ACTIVE and data.get("draft_id"):
        step = data.get("step") or S.hromada
        await _show(message, step, state, session, user, i18n, prefix=_("intake.resume"))
        return
    draft = {"draft_id": uuid.uuid4().hex[:16], "vulnerability": [], "attachments": []}
    await _show(
        message, S.hromada, state, session, user, i18n, updates=draft, fresh=True, prefix=_("intake.intro")
    )


async def _cancel(
    event: Message | CallbackQuery, state: FSMContext, session: AsyncSession, user: User
) -> None:
    await state.clear()
    menu = await _menu(session, user)
    if isinstance(event, CallbackQuery):
        await event.answer()
        if isinstance(event.message, Message):
            await event.message.edit_reply_markup(reply_markup=None)
            await event.message.answer(_("intake.cancelled"), reply_markup=menu)
        return
    await event.answer(_("intake.cancelled"), reply_markup=menu)


async def on_cancel(query: CallbackQuery, state: FSMContext, session: AsyncSession, user: User) -> None:
    await _cancel(query, state, session, user)


async def on_back(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    data = await state.get_data()
    previous = _previous(data.get("step") or "", data)
    if previous is None:
        await _cancel(query, state, session, user)
        return
    await query.answer()
    await _show(query, previous, state, session, user, i18n)


# -- hromada -------------------------------------------------------------------------------------
async def hromada_search(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    query = (message.text or "").strip()
    builder = InlineKeyboardBuilder()
    if not SEARCH_MIN <= len(query) <= SEARCH_MAX:
        _nav(builder, back=False)
        await message.answer(
            _("intake.hromada_query_bad") % {"min": SEARCH_MIN, "max": SEARCH_MAX},
            reply_markup=builder.as_markup(),
        )
        return
    hits = await CatalogueService(session).search_hromadas(query, limit=HROMADA_MATCHES)
    locale = i18n.current_locale
    for h in hits:
        builder.row(_button_text(h.name(locale), IntakeCb(action="h", value=str(h.id))))
    _nav(builder, back=False)
    text = (
        _("intake.hromada_found") if hits else _("intake.hromada_not_found") % {"query": html.escape(query)}
    )
    await message.answer(text, reply_markup=builder.as_markup())


async def pick_hromada(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
) -> None:
    hromada = await session.get(Hromada, int(callback_data.value)) if callback_data.value.isdigit() else None
    if hromada is None:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    if not hromada.accepts_requests:
        await query.answer(
            _("intake.hromada_occupied") % {"hromada": hromada.name(i18n.current_locale)}, show_alert=True
        )
        return
    data = await state.get_data()
    updates = {"hromada_id": hromada.id}
    if data.get("hromada_id") != hromada.id:
        updates["settlement_id"] = None
    await query.answer()
    await _show(query, S.settlement, state, session, user, i18n, updates=updates)


async def pick_settlement(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
) -> None:
    data = await state.get_data()
    settlement = (
        await session.get(Settlement, int(callback_data.value)) if callback_data.value.isdigit() else None
    )
    if settlement is None or settlement.hromada_id != data.get("hromada_id"):
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    await query.answer()
    await _show(query, S.service, state, session, user, i18n, updates={"settlement_id": settlement.id})


async def pick_service(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
) -> None:
    service = await session.get(Service, int(callback_data.value)) if callback_data.value.isdigit() else None
    if service is None:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    await query.answer()
    await _show(query, S.vulnerability, state, session, user, i18n, updates={"service_id": service.id})


async def toggle_marker(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
) -> None:
    code = callback_data.value
    if code not in VULNERABILITY_MARKERS:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    chosen = list((await state.get_data()).get("vulnerability") or [])
    if code in chosen:
        chosen.remove(code)
    else:
        chosen.append(code)
    await query.answer()
    markers = [c for c in VULNERABILITY_MARKERS if c in chosen]
    await _show(query, S.vulnerability, state, session, user, i18n, updates={"vulnerability": markers})


async def markers_done(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    await query.answer()
    await _show(query, S.description, state, session, user, i18n)


# -- description -----------------------------------------------------------------------------------
async def description_text(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    text = (message.text or "").strip()
    if len(text) < DESCRIPTION_MIN:
        await message.answer(_("intake.description_too_short") % {"n": len(text), "min": DESCRIPTION_MIN})
        return
    if len(text) > DESCRIPTION_MAX:
        await message.answer(_("intake.description_too_long") % {"n": len(text), "max": DESCRIPTION_MAX})
        return
    await _show(message, S.attachments, state, session, user, i18n, updates={"description": text})


async def text_expected(message: Message) -> None:
    await message.answer(_("intake.text_expected"))


# -- attachments -----------------------------------------------------------------------------------
async def attachment_added(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    if message.photo:
        photo = message.photo[-1]
        item = AttachmentDraft("photo", photo.file_id, photo.file_unique_id)
    else:
        doc = message.document
        assert doc is not None
        item = AttachmentDraft("document", doc.file_id, doc.file_unique_id, doc.file_name, doc.mime_type)
    # An album arrives as several updates at once: take the draft's row lock first (a write),
    # then read, so that one person's files are appended one after another, none lost.
    await state.set_state(IntakeForm.active)
    items = list((await state.get_data()).get("attachments") or [])
    if len(items) >= MAX_ATTACHMENTS:
        await message.answer(_("intake.attachments_full") % {"max": MAX_ATTACHMENTS})
        return
    if all(i["file_unique_id"] != item.file_unique_id for i in items):
        items.append(item.__dict__)
        await state.update_data(attachments=items)
    builder = InlineKeyboardBuilder()
    builder.row(_button("intake.btn.files_done", IntakeCb(action="adone")))
    _nav(builder)
    await message.answer(
        _("intake.attachment_added") % {"n": len(items), "max": MAX_ATTACHMENTS},
        reply_markup=builder.as_markup(),
    )


async def attachments_other(message: Message) -> None:
    await message.answer(_("intake.attachments_expected"))


async def attachments_done(
    query: CallbackQuery, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    await query.answer()
    await _show(query, S.on_behalf, state, session, user, i18n)


# -- on whose behalf ---------------------------------------------------------------------------------
async def pick_on_behalf(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
) -> None:
    if callback_data.value == "self":
        await query.answer()
        updates = {"on_behalf": False, "on_behalf_name": None, "on_behalf_relation": None}
        await _show(query, S.contact, state, session, user, i18n, updates=updates)
    elif callback_data.value == "other":
        await query.answer()
        await _show(query, S.on_behalf_name, state, session, user, i18n, updates={"on_behalf": True})
    else:
        await query.answer(_("errors.stale_button"), show_alert=True)


async def other_name(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    text = " ".join((message.text or "").split())
    if not NAME_MIN <= len(text) <= NAME_MAX:
        await message.answer(_("intake.name_bad") % {"min": NAME_MIN, "max": NAME_MAX, "n": len(text)})
        return
    await _show(message, S.on_behalf_relation, state, session, user, i18n, updates={"on_behalf_name": text})


async def other_relation(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    text = " ".join((message.text or "").split())
    if not RELATION_MIN <= len(text) <= RELATION_MAX:
        await message.answer(
            _("intake.relation_bad") % {"min": RELATION_MIN, "max": RELATION_MAX, "n": len(text)}
        )
        return
    await _show(message, S.contact, state, session, user, i18n, updates={"on_behalf_relation": text})


# -- phone ---------------------------------------------------------------------------------------------
async def contact_shared(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
    clock: Clock,
) -> None:
    contact = message.contact
    assert contact is not None
    if message.from_user is None or contact.user_id != message.from_user.id:
        await message.answer(_("intake.contact_not_own"))
        return
    resident = await _resident(session, user)
    if resident is None:
        await _cancel(message, state, session, user)
        return
    phone = normalise_phone(contact.phone_number)
    await _phone_done(message, phone, state, session, user, i18n)
    await IntakeService(session, clock).remember_phone(resident, phone)


async def use_saved_phone(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    phone = _saved_phone(await _resident(session, user))
    if phone is None:
        await message.answer(_("intake.contact_use_button"))
        return
    await _phone_done(message, phone, state, session, user, i18n)


async def _phone_done(
    message: Message, phone: str, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    # The reply keyboard goes back to the menu; the summary comes with its inline buttons.
    await message.answer(
        _("intake.phone_saved") % {"phone": html.escape(phone)}, reply_markup=await _menu(session, user)
    )
    await _show(message, S.confirm, state, session, user, i18n, updates={"contact_phone": phone})


async def contact_back(
    message: Message, state: FSMContext, session: AsyncSession, user: User, i18n: I18n
) -> None:
    previous = _previous(S.contact, await state.get_data())
    assert previous is not None
    await message.answer(_("intake.going_back"), reply_markup=await _menu(session, user))
    await _show(message, previous, state, session, user, i18n)


async def contact_cancel(message: Message, state: FSMContext, session: AsyncSession, user: User) -> None:
    await _cancel(message, state, session, user)


async def contact_other(message: Message) -> None:
    await message.answer(_("intake.contact_use_button"))


# -- confirm -----------------------------------------------------------------------------------------
def _draft(data: dict[str, Any]) -> CaseDraft:
    return CaseDraft(
        hromada_id=int(data["hromada_id"]),
        settlement_id=data.get("settlement_id"),
        service_id=int(data["service_id"]),
        description=data.get("description") or "",
        contact_phone=data.get("contact_phone"),
        vulnerability=list(data.get("vulnerability") or []),
        on_behalf_name=data.get("on_behalf_name") if data.get("on_behalf") else None,
        on_behalf_relation=data.get("on_behalf_relation") if data.get("on_behalf") else None,
        attachments=[AttachmentDraft(**a) for a in data.get("attachments") or []],
    )


async def _restore(state: FSMContext, data: dict[str, Any]) -> None:
    await state.set_data(data)
    await state.set_state(IntakeForm.active)


def idempotency_key(user: User, draft_id: str) -> str:
    return f"intake:{user.id}:{draft_id[:32]}"


async def confirm(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    i18n: I18n,
    clock: Clock,
) -> None:
    intake = IntakeService(session, clock)
    key = idempotency_key(user, callback_data.value)
    data = await state.get_data()
    ready = (
        await state.get_state() == ACTIVE
        and data.get("step") == S.confirm
        and data.get("draft_id") == callback_data.value
    )
    if not ready:
        existing = await intake.by_idempotency_key(key)
        if existing is not None:
            await query.answer(_("intake.already_filed") % {"number": existing.number}, show_alert=True)
        else:
            await query.answer(_("errors.stale_button"), show_alert=True)
        return
    resident = await _resident(session, user)
    if resident is None:
        await query.answer(_("intake.need_consent"), show_alert=True)
        return
    # The FSM shares this update's transaction, so clearing the draft and filing the case
    # commit together. A refusal below puts the draft back.
    await state.clear()
    try:
        filed = await intake.file(resident, _draft(data), key)
    except HromadaNotAccepting:
        await _restore(state, data)
        hromada = await session.get(Hromada, data.get("hromada_id") or 0)
        name = hromada.name(i18n.current_locale) if hromada else ""
        await query.answer(_("intake.hromada_occupied") % {"hromada": name}, show_alert=True)
        return
    except RoutingError:
        await _restore(state, data)
        await query.answer(_("intake.no_route"), show_alert=True)
        return
    except (InvalidDraft, KeyError, TypeError, ValueError):
        await _restore(state, data)
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    except Exception:
        await session.rollback()
        await _restore(state, data)
        raise
    case = filed.case
    if not filed.created:
        await query.answer(_("intake.already_filed") % {"number": case.number}, show_alert=True)
        return
    log.info("case %s filed by user %s (routing %s)", case.id, user.id, case.routing_kind)
    await query.answer()
    locale = i18n.current_locale
    team = await session.get(Team, case.team_id)
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
        await query.message.answer(
            _("intake.filed")
            % {
                "number": case.number,
                "team": html.escape(team.name(locale)) if team else "",
                "reason": routing_reason(case, locale, i18n),
            },
            reply_markup=await _menu(session, user),
        )


# -- wrong input at a step -------------------------------------------------------------------------------
async def use_buttons(message: Message) -> None:
    await message.answer(_("intake.use_buttons"))


async def stale_intake_button(query: CallbackQuery) -> None:
    await query.answer(_("errors.stale_button"), show_alert=True)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, IntakeCb)
    m, cb = router.message, router.callback_query
    m.register(new_request, Command("new"))
    m.register(new_request, MenuButton("menu.new_request"))

    cb.register(confirm, _action("confirm"))
    cb.register(on_cancel, _action("cancel"), _in_form())
    cb.register(on_back, _action("back"), _in_form())
    cb.register(pick_hromada, _action("h"), _StepIn((S.hromada,)))
    cb.register(pick_settlement, _action("st"), _StepIn((S.settlement,)))
    cb.register(pick_service, _action("sv"), _StepIn((S.service,)))
    cb.register(toggle_marker, _action("vul"), _StepIn((S.vulnerability,)))
    cb.register(markers_done, _action("vdone"), _StepIn((S.vulnerability,)))
    cb.register(attachments_done, _action("adone"), _StepIn((S.attachments,)))
    cb.register(pick_on_behalf, _action("beh"), _StepIn((S.on_behalf,)))
    cb.register(stale_intake_button, IntakeCb.filter())

    not_menu = NotMenuText()
    m.register(hromada_search, _StepIn((S.hromada,)), not_menu)
    m.register(description_text, _StepIn((S.description,)), not_menu)
    m.register(other_name, _StepIn((S.on_behalf_name,)), not_menu)
    m.register(other_relation, _StepIn((S.on_behalf_relation,)), not_menu)
    m.register(attachment_added, HasFile(), _StepIn((S.attachments,)))
    m.register(contact_shared, HasContact(), _StepIn((S.contact,)))
    m.register(use_saved_phone, MenuButton("intake.btn.use_saved_phone"), _StepIn((S.contact,)))
    m.register(contact_back, MenuButton("intake.btn.back"), _StepIn((S.contact,)))
    m.register(contact_cancel, MenuButton("intake.btn.cancel"), _StepIn((S.contact,)))
    m.register(contact_other, _StepIn((S.contact,)), _NotMenuOrNonText())
    m.register(attachments_other, _StepIn((S.attachments,)), _NotMenuOrNonText())
    m.register(use_buttons, _StepIn(BUTTON_STEPS), _NotMenuOrNonText())
    # Stickers, voice, photos ... at a text step: a polite answer, the state stays.
    m.register(text_expected, _StepIn(TEXT_STEPS), _NonText())
    return router


class _Action(Filter):
    def __init__(self, action: str) -> None:
        self.inner = IntakeCb.filter()
        self.action = action

    async def __call__(self, query: CallbackQuery) -> bool | dict[str, Any]:
        result = await self.inner(query)
        if isinstance(result, dict) and result["callback_data"].action == self.action:
            return result
        return False


def _action(action: str) -> _Action:
    return _Action(action)


class _StepIn(Filter):
    """The form is at one of these steps (the FSM data is read once per update, then cached)."""

    def __init__(self, steps: tuple[str, ...]) -> None:
        self.steps = frozenset(steps)

    async def __call__(self, event: Any, state: FSMContext, raw_state: str | None = None) -> bool:
        if raw_state != ACTIVE:
            return False
        return (await state.get_data()).get("step") in self.steps


class _InForm(Filter):
    async def __call__(self, event: Any, raw_state: str | None = None) -> bool:
        return raw_state == ACTIVE


def _in_form() -> _InForm:
    return _InForm()


class _NonText(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.text is None


class _NotMenuOrNonText(Filter):
    async def __call__(self, message: Message, i18n: I18n) -> bool:
        if message.text is None:
            return True
        return await NotMenuText()(message, i18n)
