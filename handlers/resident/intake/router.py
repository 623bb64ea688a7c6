"""The new-request form's handlers: hromada → settlement → service → vulnerability →
description → files → on whose behalf → phone → summary → confirm.

Everything the resident entered lives in the FSM data (JSON, kept in the database), so a draft
survives a restart. Every step has Back and Cancel; every value from a button is re-checked
against the draft and the database; the confirm button carries the draft id, which is also the
idempotency key of the case (a double tap files one case)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import IntakeCb
from handlers.kit.filters import (
    Action,
    HasContact,
    HasFile,
    InStates,
    MenuButton,
    NonText,
    NotMenuButton,
    NotMenuText,
    prune_callbacks,
)
from handlers.kit.keyboards import consent_keyboard, main_menu
from handlers.resident.intake import screens
from handlers.resident.intake.steps import (
    ACTIVE,
    BUTTON_STEPS,
    TEXT_STEPS,
    IntakeForm,
    Step,
    StepIn,
    current,
    next_step,
    previous,
)
from models import Hromada, User
from services.cases import (
    MAX_ATTACHMENTS,
    VULNERABILITY_MARKERS,
    AttachmentDraft,
    CaseDraft,
    IntakeRefused,
    normalise_phone,
    verified_phone,
)
from services.errors import StaleAction
from services.hub import Services

log = logging.getLogger(__name__)

HROMADA_MATCHES = 8


def idempotency_key(user: User, draft_id: str) -> str:
    return f"intake:{user.id}:{draft_id[:32]}"


def draft_from(data: dict[str, Any]) -> CaseDraft:
    """The case draft in the FSM data; a malformed one is a stale form."""
    try:
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
    except (KeyError, TypeError, ValueError):
        raise StaleAction() from None


def _refuse_if_closed(hromada: Hromada, locale: str) -> None:
    """An occupied or front-line hromada takes no requests: the resident picks where they live now."""
    if not hromada.accepts_requests:
        raise IntakeRefused("hromada_occupied", hromada=hromada.name(locale))


async def _menu(services: Services, user: User) -> ReplyKeyboardMarkup:
    return main_menu(with_personal=True, is_worker=await services.workers.is_active_worker(user))


async def _screen(
    step: Step, data: dict[str, Any], services: Services, user: User, locale: str
) -> screens.Screen:
    """Fetch what the step's screen shows, then render it."""
    if step == Step.hromada:
        resident = await services.users.consented_resident(user)
        suggested = await services.intake.suggested_hromadas(resident, data.get("hromada_id"))
        return screens.hromada_step(suggested, locale)
    if step == Step.settlement:
        hromada = await services.catalogue.hromada(data["hromada_id"])
        settlements = await services.catalogue.settlements(data["hromada_id"])
        return screens.settlement_step(hromada, settlements, locale)
    if step == Step.service:
        return screens.service_step(await services.catalogue.services_by_group(), locale)
    if step == Step.vulnerability:
        return screens.vulnerability_step(data.get("vulnerability") or [])
    if step == Step.description:
        return screens.description_step()
    if step == Step.attachments:
        return screens.attachments_step(len(data.get("attachments") or []))
    if step == Step.on_behalf:
        return screens.on_behalf_step()
    if step == Step.on_behalf_name:
        return screens.on_behalf_name_step()
    if step == Step.on_behalf_relation:
        return screens.on_behalf_relation_step()
    if step == Step.contact:
        return screens.contact_step(verified_phone(await services.users.consented_resident(user)))
    settlement_id = data.get("settlement_id")
    text = screens.summary(
        data,
        await services.catalogue.hromada(data["hromada_id"]),
        await services.catalogue.settlement(settlement_id) if settlement_id else None,
        await services.catalogue.service(data["service_id"]),
        locale,
    )
    return screens.confirm_step(text, data["draft_id"])


async def _show(
    event: Message | CallbackQuery,
    step: Step,
    state: FSMContext,
    services: Services,
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
    data["step"] = step.value
    await state.set_data(data)
    if fresh or await state.get_state() != ACTIVE:
        await state.set_state(IntakeForm.active)
    text, markup = await _screen(step, data, services, user, i18n.current_locale)
    if prefix:
        text = f"{prefix}\n\n{text}"
    if isinstance(event, Message):
        await event.answer(text, reply_markup=markup)
        return
    message = event.message
    if not isinstance(message, Message):
        return
    if isinstance(markup, InlineKeyboardMarkup):
        try:
            await message.edit_text(text, reply_markup=markup)
            return
        except TelegramBadRequest as exc:
            # Local recovery: a repeated tap finds the screen already right ("not modified");
            # a message too old (or gone) to edit gets the screen as a new message below.
            if "not modified" in str(exc):
                return
    else:
        await message.edit_reply_markup(reply_markup=None)
    await message.answer(text, reply_markup=markup)


async def _advance(
    event: Message | CallbackQuery,
    step: Step,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
    updates: dict[str, Any] | None = None,
) -> None:
    """Save `updates` and go to the step after `step` (by the steps table)."""
    data = {**(await state.get_data()), **(updates or {})}
    following = next_step(step, data)
    assert following is not None, f"{step} is the last step"
    await _show(event, following, state, services, user, i18n, updates=updates)


# -- entry, cancel, back -------------------------------------------------------------------------
async def new_request(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    if await services.users.consented_resident(user) is None:
        await message.answer(screens.need_consent_text(), reply_markup=consent_keyboard())
        return
    data = await state.get_data()
    if await state.get_state() == ACTIVE and data.get("draft_id"):
        await _show(message, current(data), state, services, user, i18n, prefix=_("intake.resume"))
        return
    draft = {"draft_id": uuid.uuid4().hex[:16], "vulnerability": [], "attachments": []}
    await _show(
        message,
        Step.hromada,
        state,
        services,
        user,
        i18n,
        updates=draft,
        fresh=True,
        prefix=_("intake.intro"),
    )


async def _cancel(event: Message | CallbackQuery, state: FSMContext, services: Services, user: User) -> None:
    await state.clear()
    menu = await _menu(services, user)
    if isinstance(event, Message):
        await event.answer(_("intake.cancelled"), reply_markup=menu)
    elif isinstance(event.message, Message):
        await event.message.edit_reply_markup(reply_markup=None)
        await event.message.answer(_("intake.cancelled"), reply_markup=menu)


async def on_cancel(query: CallbackQuery, state: FSMContext, services: Services, user: User) -> None:
    await _cancel(query, state, services, user)


async def on_back(
    query: CallbackQuery, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    data = await state.get_data()
    back_to = previous(data.get("step") or "", data)
    if back_to is None:
        await _cancel(query, state, services, user)
        return
    await _show(query, back_to, state, services, user, i18n)


# -- hromada, settlement, service, markers ---------------------------------------------------------
async def hromada_search(message: Message, services: Services, i18n: I18n) -> None:
    query = (message.text or "").strip()
    if not screens.SEARCH_MIN <= len(query) <= screens.SEARCH_MAX:
        text, markup = screens.hromada_query_bad()
    else:
        hits = await services.catalogue.search_hromadas(query, limit=HROMADA_MATCHES)
        text, markup = screens.hromada_hits(query, hits, i18n.current_locale)
    await message.answer(text, reply_markup=markup)


async def pick_hromada(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
) -> None:
    value = callback_data.value
    hromada = await services.catalogue.hromada(int(value)) if value.isdigit() else None
    if hromada is None:
        raise StaleAction()
    _refuse_if_closed(hromada, i18n.current_locale)
    updates: dict[str, Any] = {"hromada_id": hromada.id}
    if (await state.get_data()).get("hromada_id") != hromada.id:
        updates["settlement_id"] = None
    await _advance(query, Step.hromada, state, services, user, i18n, updates)


async def pick_settlement(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
) -> None:
    value = callback_data.value
    hromada_id = (await state.get_data()).get("hromada_id")
    settlement = await services.catalogue.settlement_of(hromada_id, int(value)) if value.isdigit() else None
    if settlement is None:
        raise StaleAction()
    await _advance(query, Step.settlement, state, services, user, i18n, {"settlement_id": settlement.id})


async def pick_service(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
) -> None:
    value = callback_data.value
    service = await services.catalogue.service(int(value)) if value.isdigit() else None
    if service is None:
        raise StaleAction()
    await _advance(query, Step.service, state, services, user, i18n, {"service_id": service.id})


async def toggle_marker(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
) -> None:
    code = callback_data.value
    if code not in VULNERABILITY_MARKERS:
        raise StaleAction()
    chosen = set((await state.get_data()).get("vulnerability") or [])
    chosen ^= {code}
    markers = [c for c in VULNERABILITY_MARKERS if c in chosen]
    await _show(query, Step.vulnerability, state, services, user, i18n, updates={"vulnerability": markers})


async def markers_done(
    query: CallbackQuery, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    await _advance(query, Step.vulnerability, state, services, user, i18n)


# -- description, files ------------------------------------------------------------------------------
async def description_text(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    text = (message.text or "").strip()
    problem = screens.description_problem(text)
    if problem is not None:
        await message.answer(problem)
        return
    await _advance(message, Step.description, state, services, user, i18n, {"description": text})


async def text_expected(message: Message) -> None:
    await message.answer(_("intake.text_expected"))


async def attachment_added(message: Message, state: FSMContext) -> None:
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
    text, markup = screens.attachment_added(len(items))
    await message.answer(text, reply_markup=markup)


async def attachments_other(message: Message) -> None:
    await message.answer(_("intake.attachments_expected"))


async def attachments_done(
    query: CallbackQuery, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    await _advance(query, Step.attachments, state, services, user, i18n)


# -- on whose behalf ---------------------------------------------------------------------------------
async def pick_on_behalf(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
) -> None:
    if callback_data.value == "self":
        updates = {"on_behalf": False, "on_behalf_name": None, "on_behalf_relation": None}
    elif callback_data.value == "other":
        updates = {"on_behalf": True}
    else:
        raise StaleAction()
    await _advance(query, Step.on_behalf, state, services, user, i18n, updates)


async def other_name(message: Message, state: FSMContext, services: Services, user: User, i18n: I18n) -> None:
    text = " ".join((message.text or "").split())
    problem = screens.name_problem(text)
    if problem is not None:
        await message.answer(problem)
        return
    await _advance(message, Step.on_behalf_name, state, services, user, i18n, {"on_behalf_name": text})


async def other_relation(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    text = " ".join((message.text or "").split())
    problem = screens.relation_problem(text)
    if problem is not None:
        await message.answer(problem)
        return
    await _advance(
        message, Step.on_behalf_relation, state, services, user, i18n, {"on_behalf_relation": text}
    )


# -- phone ---------------------------------------------------------------------------------------------
async def contact_shared(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    contact = message.contact
    assert contact is not None
    if message.from_user is None or contact.user_id != message.from_user.id:
        await message.answer(_("intake.contact_not_own"))
        return
    resident = await services.users.consented_resident(user)
    if resident is None:
        await _cancel(message, state, services, user)
        return
    phone = normalise_phone(contact.phone_number)
    await _phone_done(message, phone, state, services, user, i18n)
    await services.intake.remember_phone(resident, phone)


async def use_saved_phone(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    phone = verified_phone(await services.users.consented_resident(user))
    if phone is None:
        await message.answer(_("intake.contact_use_button"))
        return
    await _phone_done(message, phone, state, services, user, i18n)


async def _phone_done(
    message: Message, phone: str, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    # The reply keyboard goes back to the menu; the summary comes with its inline buttons.
    await message.answer(screens.phone_saved_text(phone), reply_markup=await _menu(services, user))
    await _advance(message, Step.contact, state, services, user, i18n, {"contact_phone": phone})


async def contact_back(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    back_to = previous(Step.contact, await state.get_data())
    assert back_to is not None
    await message.answer(_("intake.going_back"), reply_markup=await _menu(services, user))
    await _show(message, back_to, state, services, user, i18n)


async def contact_cancel(message: Message, state: FSMContext, services: Services, user: User) -> None:
    await _cancel(message, state, services, user)


async def contact_other(message: Message) -> None:
    await message.answer(_("intake.contact_use_button"))


# -- confirm -----------------------------------------------------------------------------------------
async def confirm(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    key = idempotency_key(user, callback_data.value)
    data = await state.get_data()
    ready = (
        await state.get_state() == ACTIVE
        and data.get("step") == Step.confirm
        and data.get("draft_id") == callback_data.value
    )
    if not ready:
        await services.intake.refuse_if_filed(key)
    resident = await services.users.consented_resident(user)
    if resident is None:
        raise IntakeRefused("need_consent")
    draft = draft_from(data)
    locale = i18n.current_locale
    hromada = await services.catalogue.hromada(draft.hromada_id)
    if hromada is not None:
        _refuse_if_closed(hromada, locale)
    # A refusal raises before the draft is cleared (and the update is rolled back): the draft
    # stays for another try. Clearing it and filing the case commit together.
    filed = await services.intake.submit(resident, draft, key)
    await state.clear()
    case = filed.case
    if not filed.created:
        callback_answer.text = _("intake.already_filed") % {"number": case.number}
        callback_answer.show_alert = True
        return
    log.info("case %s filed by user %s (routing %s)", case.id, user.id, case.routing_kind)
    team = filed.decision.team if filed.decision else None
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)
        await query.message.answer(
            screens.filed_text(case, team, locale, i18n), reply_markup=await _menu(services, user)
        )


# -- wrong input at a step -------------------------------------------------------------------------------
async def use_buttons(message: Message) -> None:
    await message.answer(_("intake.use_buttons"))


async def stale_intake_button(query: CallbackQuery) -> None:
    raise StaleAction()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, IntakeCb)
    m, cb = router.message, router.callback_query
    m.register(new_request, Command("new"))
    m.register(new_request, MenuButton("menu.new_request"))

    in_form = InStates(IntakeForm)
    cb.register(confirm, Action(IntakeCb, "confirm"))
    cb.register(on_cancel, Action(IntakeCb, "cancel"), in_form)
    cb.register(on_back, Action(IntakeCb, "back"), in_form)
    cb.register(pick_hromada, Action(IntakeCb, "h"), StepIn(Step.hromada))
    cb.register(pick_settlement, Action(IntakeCb, "st"), StepIn(Step.settlement))
    cb.register(pick_service, Action(IntakeCb, "sv"), StepIn(Step.service))
    cb.register(toggle_marker, Action(IntakeCb, "vul"), StepIn(Step.vulnerability))
    cb.register(markers_done, Action(IntakeCb, "vdone"), StepIn(Step.vulnerability))
    cb.register(attachments_done, Action(IntakeCb, "adone"), StepIn(Step.attachments))
    cb.register(pick_on_behalf, Action(IntakeCb, "beh"), StepIn(Step.on_behalf))
    cb.register(stale_intake_button, IntakeCb.filter())

    not_menu, not_menu_button = NotMenuText(), NotMenuButton()
    m.register(hromada_search, StepIn(Step.hromada), not_menu)
    m.register(description_text, StepIn(Step.description), not_menu)
    m.register(other_name, StepIn(Step.on_behalf_name), not_menu)
    m.register(other_relation, StepIn(Step.on_behalf_relation), not_menu)
    m.register(attachment_added, HasFile(), StepIn(Step.attachments))
    m.register(contact_shared, HasContact(), StepIn(Step.contact))
    m.register(use_saved_phone, MenuButton("intake.btn.use_saved_phone"), StepIn(Step.contact))
    m.register(contact_back, MenuButton("intake.btn.back"), StepIn(Step.contact))
    m.register(contact_cancel, MenuButton("intake.btn.cancel"), StepIn(Step.contact))
    m.register(contact_other, StepIn(Step.contact), not_menu_button)
    m.register(attachments_other, StepIn(Step.attachments), not_menu_button)
    m.register(use_buttons, StepIn(*BUTTON_STEPS), not_menu_button)
    # Stickers, voice, photos ... at a text step: a polite answer, the state stays.
    m.register(text_expected, StepIn(*TEXT_STEPS), NonText())
    return router
