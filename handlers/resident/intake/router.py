"""The new-request form's handlers: place (a town or village, or a hromada) → settlement (only
after a hromada) → service → vulnerability →
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
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
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
from handlers.kit.keyboards import consent_keyboard
from handlers.kit.messages import edit_or_send
from handlers.resident.intake import screens
from handlers.resident.intake.flow import FormFlow, inject_flow
from handlers.resident.intake.phone import (
    contact_back,
    contact_cancel,
    contact_other,
    contact_shared,
    use_saved_phone,
)
from handlers.resident.intake.place import (
    hromada_search,
    pick_hromada,
    pick_place,
    pick_settlement,
    settlement_page,
    settlement_typed,
)
from handlers.resident.intake.spoken import markers_typed, on_behalf_typed, service_typed
from handlers.resident.intake.steps import (
    ACTIVE,
    BUTTON_STEPS,
    TEXT_STEPS,
    IntakeForm,
    Step,
    StepIn,
    current,
    has_answers,
    previous,
)
from models import User
from services.cases import (
    MAX_ATTACHMENTS,
    VULNERABILITY_MARKERS,
    AttachmentDraft,
    CaseDraft,
    IntakeRefused,
)
from services.errors import StaleAction
from services.text import clean_file_name, clean_mime_type, tidy

log = logging.getLogger(__name__)


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


# -- entry, cancel, back -------------------------------------------------------------------------
async def new_request(message: Message, state: FSMContext, flow: FormFlow) -> None:
    if await flow.services.users.consented_resident(flow.user) is None:
        await message.answer(screens.need_consent_text(), reply_markup=consent_keyboard())
        return
    data = await state.get_data()
    if await state.get_state() == ACTIVE and data.get("draft_id"):
        await flow.show(current(data), prefix=_("intake.resume"))
        return
    draft = {"draft_id": uuid.uuid4().hex[:16], "vulnerability": [], "attachments": []}
    await flow.show(Step.hromada, updates=draft, fresh=True, prefix=_("intake.intro"))


async def on_cancel(query: CallbackQuery, state: FSMContext, flow: FormFlow) -> None:
    if has_answers(await state.get_data()):
        await edit_or_send(query, *screens.cancel_question())
        return
    await flow.cancel()


async def cancel_confirmed(query: CallbackQuery, flow: FormFlow) -> None:
    await flow.cancel()


async def cancel_withdrawn(query: CallbackQuery, state: FSMContext, flow: FormFlow) -> None:
    await flow.show(current(await state.get_data()))


async def on_back(query: CallbackQuery, state: FSMContext, flow: FormFlow) -> None:
    data = await state.get_data()
    back_to = previous(data.get("step") or "", data)
    if back_to is None:
        await flow.cancel()
        return
    await flow.show(back_to)


# -- service, markers ---------------------------------------------------------------------------
async def pick_service(query: CallbackQuery, callback_data: IntakeCb, flow: FormFlow) -> None:
    value = callback_data.value
    service = await flow.services.catalogue.service(int(value)) if value.isdigit() else None
    if service is None:
        raise StaleAction()
    await flow.advance(Step.service, {"service_id": service.id})


async def all_services(query: CallbackQuery, flow: FormFlow) -> None:
    await flow.show(Step.service)


async def toggle_marker(
    query: CallbackQuery, callback_data: IntakeCb, state: FSMContext, flow: FormFlow
) -> None:
    code = callback_data.value
    if code not in VULNERABILITY_MARKERS:
        raise StaleAction()
    chosen = set((await state.get_data()).get("vulnerability") or []) ^ {code}
    await flow.show(
        Step.vulnerability, updates={"vulnerability": [c for c in VULNERABILITY_MARKERS if c in chosen]}
    )


async def markers_done(query: CallbackQuery, flow: FormFlow) -> None:
    await flow.advance(Step.vulnerability)


# -- description, files ------------------------------------------------------------------------------
async def description_text(message: Message, flow: FormFlow) -> None:
    text = tidy(message.text, multiline=True)
    problem = screens.description_problem(text)
    if problem is not None:
        await message.answer(problem)
        return
    await flow.advance(Step.description, {"description": text})


async def description_kept(query: CallbackQuery, state: FSMContext, flow: FormFlow) -> None:
    """ "Keep this text": the description already in the draft, checked again."""
    text = str((await state.get_data()).get("description") or "")
    problem = screens.description_problem(text)
    if problem is not None:
        if isinstance(query.message, Message):
            await query.message.answer(problem)
        return
    await flow.advance(Step.description)


async def text_expected(message: Message) -> None:
    await message.answer(_("intake.text_expected"))


async def attachment_added(message: Message, state: FSMContext) -> None:
    if message.photo:
        photo = message.photo[-1]
        item = AttachmentDraft("photo", photo.file_id, photo.file_unique_id)
    else:
        doc = message.document
        assert doc is not None
        item = AttachmentDraft(
            "document",
            doc.file_id,
            doc.file_unique_id,
            clean_file_name(doc.file_name),
            clean_mime_type(doc.mime_type),
        )
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


async def attachments_done(query: CallbackQuery, flow: FormFlow) -> None:
    await flow.advance(Step.attachments)


# -- on whose behalf ---------------------------------------------------------------------------------
async def pick_on_behalf(query: CallbackQuery, callback_data: IntakeCb, flow: FormFlow) -> None:
    if callback_data.value == "self":
        updates = {"on_behalf": False, "on_behalf_name": None, "on_behalf_relation": None}
    elif callback_data.value == "other":
        updates = {"on_behalf": True}
    else:
        raise StaleAction()
    await flow.advance(Step.on_behalf, updates)


async def other_name(message: Message, flow: FormFlow) -> None:
    text = tidy(message.text)
    problem = screens.name_problem(text)
    if problem is not None:
        await message.answer(problem)
        return
    await flow.advance(Step.on_behalf_name, {"on_behalf_name": text})


async def other_relation(message: Message, flow: FormFlow) -> None:
    text = tidy(message.text)
    problem = screens.relation_problem(text)
    if problem is not None:
        await message.answer(problem)
        return
    await flow.advance(Step.on_behalf_relation, {"on_behalf_relation": text})


# -- confirm -----------------------------------------------------------------------------------------
async def confirm(
    query: CallbackQuery,
    callback_data: IntakeCb,
    state: FSMContext,
    flow: FormFlow,
    callback_answer: CallbackAnswer,
) -> None:
    services, user = flow.services, flow.user
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
    # A refusal raises before the draft is cleared (and the update is rolled back): the draft
    # stays for another try. Clearing it and filing the case commit together.
    filed = await services.intake.submit(resident, draft, key, flow.locale)
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
        text = screens.filed_text(case, team, flow.locale, flow.i18n)
        await query.message.answer(text, reply_markup=await flow.menu())


# -- wrong input at a step -------------------------------------------------------------------------------
async def use_buttons(message: Message) -> None:
    await message.answer(_("intake.use_buttons"))


async def stale_intake_button(query: CallbackQuery) -> None:
    raise StaleAction()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, IntakeCb)
    inject_flow(router)
    m, cb = router.message, router.callback_query
    m.register(new_request, Command("new"))
    m.register(new_request, MenuButton("menu.new_request"))

    in_form = InStates(IntakeForm)
    cb.register(confirm, Action(IntakeCb, "confirm"))
    cb.register(on_cancel, Action(IntakeCb, "cancel"), in_form)
    cb.register(cancel_confirmed, Action(IntakeCb, "cancel_yes"), in_form)
    cb.register(cancel_withdrawn, Action(IntakeCb, "cancel_no"), in_form)
    cb.register(on_back, Action(IntakeCb, "back"), in_form)
    cb.register(pick_hromada, Action(IntakeCb, "h"), StepIn(Step.hromada))
    cb.register(pick_place, Action(IntakeCb, "ps"), StepIn(Step.hromada))
    cb.register(pick_settlement, Action(IntakeCb, "st"), StepIn(Step.settlement))
    cb.register(settlement_page, Action(IntakeCb, "stp"), StepIn(Step.settlement))
    cb.register(pick_service, Action(IntakeCb, "sv"), StepIn(Step.service))
    cb.register(all_services, Action(IntakeCb, "svall"), StepIn(Step.service))
    cb.register(toggle_marker, Action(IntakeCb, "vul"), StepIn(Step.vulnerability))
    cb.register(markers_done, Action(IntakeCb, "vdone"), StepIn(Step.vulnerability))
    cb.register(attachments_done, Action(IntakeCb, "adone"), StepIn(Step.attachments))
    cb.register(description_kept, Action(IntakeCb, "dkeep"), StepIn(Step.description))
    cb.register(pick_on_behalf, Action(IntakeCb, "beh"), StepIn(Step.on_behalf))
    cb.register(stale_intake_button, IntakeCb.filter())

    not_menu, not_menu_button = NotMenuText(), NotMenuButton()
    m.register(hromada_search, StepIn(Step.hromada), not_menu)
    m.register(settlement_typed, StepIn(Step.settlement), not_menu)
    m.register(service_typed, StepIn(Step.service), not_menu)
    m.register(on_behalf_typed, StepIn(Step.on_behalf), not_menu)
    m.register(markers_typed, StepIn(Step.vulnerability), not_menu)
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
