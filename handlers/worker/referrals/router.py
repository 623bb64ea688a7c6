"""Referrals to partner agencies: from the case card ("🤝 Направити партнеру") to a partner,
and the partner's answers (accept, decline with a reason, report an outcome).

Every press goes through services/referrals.py, which re-checks the presser: a member of the
case's team for sending, recording an external partner's answer and withdrawing; a member of the
partner team for its answers. The typed steps (subject, reason, outcome) take one text each."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import RefCb
from handlers.kit.filters import Action, ActiveWorker, NotCommand, PlainText, prune_callbacks
from handlers.kit.messages import edit_or_send
from handlers.worker.referrals import screens
from infra.settings import Settings
from models import Worker
from models.referrals import ACCEPTED, DECLINED, OUTCOME
from services.errors import DomainError, StaleAction
from services.hub import Services
from services.referrals import ROLE_PARTNER, ReferralService


class RefForm(StatesGroup):
    subject = State()  # data: ref_case, ref_partner
    confirm = State()  # data: + ref_subject, ref_files, ref_contact
    answer = State()  # data: ref_id, ref_to


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


async def _say_refused(message: Message, error: DomainError) -> None:
    text = _(error.message_key)
    await message.answer(text % error.params if error.params else text)


# -- the referring team ---------------------------------------------------------------------------


async def overview(
    query: CallbackQuery,
    callback_data: RefCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    settings: Settings,
) -> None:
    case, referrals, choices = await services.referrals.overview(worker, callback_data.case_id)
    if (message := _message(query)) is not None:
        text, markup = screens.overview(case, referrals, choices, i18n.current_locale, settings.locale.tz)
        await message.answer(text, reply_markup=markup)


async def pick(
    query: CallbackQuery,
    callback_data: RefCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
) -> None:
    case, partner = await services.referrals.choose_partner(
        worker, callback_data.case_id, callback_data.value
    )
    await state.set_state(RefForm.subject)
    await state.set_data({"ref_case": case.id, "ref_partner": partner.id})
    if (message := _message(query)) is not None:
        await message.answer(screens.ask_subject(case, partner, i18n.current_locale))


async def _confirm_screen(
    services: Services, worker: Worker, data: dict[str, Any], locale: str
) -> tuple[str, Any]:
    case, partner = await services.referrals.choose_partner(
        worker, int(data["ref_case"]), int(data["ref_partner"])
    )
    files = await services.case_actions.attachments(case.id)
    return screens.confirm(
        case.id,
        partner,
        str(data["ref_subject"]),
        files,
        list(data.get("ref_files") or []),
        bool(data.get("ref_contact")),
        locale,
    )


async def subject_step(
    message: Message, state: FSMContext, services: Services, worker: Worker, i18n: I18n
) -> None:
    try:
        subject = ReferralService.check_subject(message.text)
    except DomainError as error:  # the step stays: the worker writes it again
        await _say_refused(message, error)
        return
    data = await state.get_data()
    data.update(ref_subject=subject, ref_files=[], ref_contact=False)
    await state.set_state(RefForm.confirm)
    await state.set_data(data)
    text, markup = await _confirm_screen(services, worker, data, i18n.current_locale)
    await message.answer(text, reply_markup=markup)


async def _draft(state: FSMContext, case_id: int) -> dict[str, Any]:
    """The confirm step's data for this case; anything else is a stale button."""
    data = await state.get_data()
    if await state.get_state() != RefForm.confirm.state or int(data.get("ref_case") or 0) != case_id:
        raise StaleAction()
    return data


async def toggle(
    query: CallbackQuery,
    callback_data: RefCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
) -> None:
    data = await _draft(state, callback_data.case_id)
    if callback_data.action == "contact":
        data["ref_contact"] = not data.get("ref_contact")
    else:
        chosen = list(data.get("ref_files") or [])
        if callback_data.value in chosen:
            chosen.remove(callback_data.value)
        else:
            chosen.append(callback_data.value)
        data["ref_files"] = chosen
    _, markup = await _confirm_screen(services, worker, data, i18n.current_locale)
    await state.set_data(data)
    if (message := _message(query)) is not None:
        await message.edit_reply_markup(reply_markup=markup)


async def send(
    query: CallbackQuery,
    callback_data: RefCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    data = await _draft(state, callback_data.case_id)
    # The draft goes first: a double tap then finds nothing to send.
    await state.set_state(None)
    await state.set_data({})
    referral = await services.referrals.create(
        worker,
        int(data["ref_case"]),
        int(data["ref_partner"]),
        str(data["ref_subject"]),
        [int(x) for x in data.get("ref_files") or []],
        share_contact=bool(data.get("ref_contact")),
    )
    callback_answer.text = _("referral.sent")
    if (message := _message(query)) is not None:
        await message.edit_reply_markup(reply_markup=None)
        await _show(message, services, worker, referral.id, i18n, settings)


async def cancel(query: CallbackQuery, state: FSMContext, callback_answer: CallbackAnswer) -> None:
    if await state.get_state() == RefForm.confirm.state:
        await state.set_state(None)
        await state.set_data({})
    callback_answer.text = _("referral.cancelled")
    if (message := _message(query)) is not None:
        await message.edit_reply_markup(reply_markup=None)


async def close(
    query: CallbackQuery,
    callback_data: RefCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    await services.referrals.close(worker, callback_data.referral_id)
    callback_answer.text = _("referral.closed")
    if (message := _message(query)) is not None:
        await _show(message, services, worker, callback_data.referral_id, i18n, settings)


# -- either side ----------------------------------------------------------------------------------


async def _show(
    target: Message, services: Services, worker: Worker, referral_id: int, i18n: I18n, settings: Settings
) -> None:
    locale, tz = i18n.current_locale, settings.locale.tz
    referral, role = await services.referrals.view(worker, referral_id)
    if role == ROLE_PARTNER:
        view = await services.referrals.partner_view(worker, referral_id)
        text, markup = screens.partner_card(view, locale, tz)
    else:
        case = await services.case_actions.worker_case(worker, referral.case_id, refs=False)
        text, markup = screens.referrer_card(referral, case.number, locale, tz)
    await target.answer(text, reply_markup=markup)


async def view(
    query: CallbackQuery,
    callback_data: RefCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    settings: Settings,
) -> None:
    if (message := _message(query)) is not None:
        await _show(message, services, worker, callback_data.referral_id, i18n, settings)
    else:
        await services.referrals.view(worker, callback_data.referral_id)


async def files(
    query: CallbackQuery, callback_data: RefCb, services: Services, worker: Worker, bot: Bot
) -> None:
    """The referral's chosen files (and only those), to the partner member's private chat."""
    view = await services.referrals.partner_view(worker, callback_data.referral_id)
    chat_id = query.from_user.id
    for item in view.attachments:
        if item.kind == "photo":
            await bot.send_photo(chat_id, item.file_id, caption=view.number)
        elif item.kind == "voice":
            await bot.send_voice(chat_id, item.file_id, caption=view.number)
        elif item.kind == "video_note":
            await bot.send_video_note(chat_id, item.file_id)
        else:
            await bot.send_document(chat_id, item.file_id, caption=view.number)


async def accept(
    query: CallbackQuery,
    callback_data: RefCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    await services.referrals.answer(worker, callback_data.referral_id, ACCEPTED)
    callback_answer.text = _("referral.answered")
    if (message := _message(query)) is not None:
        await _show(message, services, worker, callback_data.referral_id, i18n, settings)


async def ask_answer(
    query: CallbackQuery, callback_data: RefCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    """Decline or outcome: the text first (the service checks the presser now and again then)."""
    to_state = DECLINED if callback_data.action == "decline" else OUTCOME
    number = await services.referrals.check_answerable(worker, callback_data.referral_id, to_state)
    await state.set_state(RefForm.answer)
    await state.set_data({"ref_id": callback_data.referral_id, "ref_to": to_state})
    if (message := _message(query)) is not None:
        await message.answer(screens.ask_answer(number, to_state))


async def answer_step(
    message: Message, state: FSMContext, services: Services, worker: Worker, i18n: I18n, settings: Settings
) -> None:
    data = await state.get_data()
    to_state = str(data.get("ref_to"))
    code = "reason_required" if to_state == DECLINED else "outcome_required"
    try:
        text = ReferralService.check_answer(message.text, code)
    except DomainError as error:  # the step stays
        await _say_refused(message, error)
        return
    await state.set_state(None)
    await state.set_data({})
    referral_id = int(data["ref_id"])
    try:
        await services.referrals.answer(worker, referral_id, to_state, text)
    except DomainError as error:
        # Answered here: raising would roll back the step's end too.
        await _say_refused(message, error)
        return
    await message.answer(_("referral.answered"))
    await _show(message, services, worker, referral_id, i18n, settings)


async def text_only(message: Message) -> None:
    await message.answer(_("referral.text_only"))


async def incoming_list(
    message: Message, services: Services, worker: Worker, i18n: I18n, settings: Settings
) -> None:
    items, total = await services.referrals.incoming(worker)
    text, markup = screens.incoming(items, total, i18n.current_locale, settings.locale.tz)
    await message.answer(text, reply_markup=markup if items else None)


async def incoming_refresh(
    query: CallbackQuery, services: Services, worker: Worker, i18n: I18n, settings: Settings
) -> None:
    items, total = await services.referrals.incoming(worker)
    text, markup = screens.incoming(items, total, i18n.current_locale, settings.locale.tz)
    await edit_or_send(query, text, markup)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, RefCb)
    router.callback_query.filter(ActiveWorker())
    presses = router.callback_query
    presses.register(overview, Action(RefCb, "new"))
    presses.register(pick, Action(RefCb, "pick"))
    presses.register(toggle, Action(RefCb, "att", "contact"))
    presses.register(send, Action(RefCb, "send"))
    presses.register(cancel, Action(RefCb, "cancel"))
    presses.register(close, Action(RefCb, "close"))
    presses.register(view, Action(RefCb, "view"))
    presses.register(incoming_refresh, Action(RefCb, "list"))
    presses.register(files, Action(RefCb, "files"))
    presses.register(accept, Action(RefCb, "accept"))
    presses.register(ask_answer, Action(RefCb, "decline", "outcome"))
    router.message.register(incoming_list, Command("referrals"), ActiveWorker())
    router.message.register(subject_step, StateFilter(RefForm.subject), PlainText(), ActiveWorker())
    router.message.register(answer_step, StateFilter(RefForm.answer), PlainText(), ActiveWorker())
    router.message.register(text_only, StateFilter(RefForm.subject, RefForm.answer), NotCommand())
    return router
