"""A resident who simply talks: text, a photo, a document, a voice or video message sent outside
any form goes to one of their cases (services/conversation.py decides which), or is kept for a
choice of case, or for a new request. Also "↩️ Reply" on a team's message.

Registered after every form's router and before the fallback, so a form's step always wins;
active workers are left to their own handlers (their replies to relayed messages are handled
in handlers/worker/cases/replies.py). Buttons name a kept message or a case; the service
re-checks that both are the presser's."""

from __future__ import annotations

import uuid

from aiogram import Router
from aiogram.filters import Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import ConvCb
from handlers.kit.conversation import incoming_from
from handlers.kit.filters import Action, NotMenuButton, PrivateChat, prune_callbacks
from handlers.kit.keyboards import consent_keyboard
from handlers.kit.messages import edit_or_send
from handlers.resident import conversation_screens as screens
from handlers.resident.intake.flow import FormFlow
from handlers.resident.intake.screens import description_problem
from handlers.resident.intake.steps import Step
from models import User
from services.cases import MAX_ATTACHMENTS, AttachmentDraft
from services.conversation import CHOOSE, OFFER_NEW, Routed
from services.errors import StaleAction
from services.hub import Services


class ReplyForm(StatesGroup):
    answer = State()  # data: case_id — "↩️ Reply" pressed on a message of that case


class NotActiveWorker(Filter):
    """Workers keep their own behaviour outside flows (they are not residents talking)."""

    async def __call__(
        self, event: Message | CallbackQuery, services: Services, user: User | None = None
    ) -> bool:
        return user is not None and not await services.workers.is_active_worker(user)


async def _answer(message: Message, routed: Routed, services: Services, i18n: I18n) -> None:
    """The one answer to a routed message; a confirmation is remembered as about its case, so
    a Telegram reply to it goes there too."""
    locale = i18n.current_locale
    if routed.outcome == OFFER_NEW:
        text, markup = screens.offer_new(routed.item.id)
    elif routed.outcome == CHOOSE:
        text, markup = screens.choose(routed.item.id, routed.choices, locale)
    else:
        assert routed.case is not None
        text, markup = screens.routed(routed, locale)
    sent = await message.answer(text, reply_markup=markup)
    if routed.case is not None:
        await services.conversation.remember(sent.chat.id, sent.message_id, routed.case.id)


async def talk(message: Message, services: Services, user: User, i18n: I18n) -> None:
    incoming = incoming_from(message)
    if incoming is None:
        await message.answer(_("conv.unsupported"))
        return
    if not await services.users.has_consent(user):
        # Nothing is kept before consent: the person is asked for it first.
        await message.answer(
            _("conv.need_consent") + "\n\n" + _("consent.text"), reply_markup=consent_keyboard()
        )
        return
    routed = await services.conversation.receive(user, message.chat.id, incoming)
    await _answer(message, routed, services, i18n)


async def reply_answer(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    """The message after "↩️ Reply": to that case; the short step is over."""
    incoming = incoming_from(message)
    if incoming is None:
        await message.answer(_("conv.reply_expected"))
        return
    case_id = int((await state.get_data()).get("case_id") or 0)
    await state.clear()
    routed = await services.conversation.receive_for_case(user, case_id, incoming)
    await _answer(message, routed, services, i18n)


# -- buttons ---------------------------------------------------------------------------------
async def start_reply(
    query: CallbackQuery, callback_data: ConvCb, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    case = await services.conversation.reply_target(user, callback_data.case_id)
    await state.set_state(ReplyForm.answer)
    await state.set_data({"case_id": case.id})
    if isinstance(query.message, Message):
        await query.message.answer(screens.ask_reply(case, i18n.current_locale))


async def send_to_case(
    query: CallbackQuery, callback_data: ConvCb, services: Services, user: User, i18n: I18n
) -> None:
    routed = await services.conversation.choose(user, callback_data.item_id, callback_data.case_id)
    text, markup = screens.routed(routed, i18n.current_locale)
    await edit_or_send(query, text, markup)
    if routed.case is not None and isinstance(query.message, Message):
        await services.conversation.remember(query.message.chat.id, query.message.message_id, routed.case.id)


async def choose_other(
    query: CallbackQuery, callback_data: ConvCb, services: Services, user: User, i18n: I18n
) -> None:
    item, cases = await services.conversation.other_choices(user, callback_data.item_id)
    await edit_or_send(query, *screens.choose(item.id, cases, i18n.current_locale))


async def file_new(
    query: CallbackQuery, callback_data: ConvCb, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    """ "Yes, file a request": the form starts with the kept words as its description and the
    kept files as its attachments (a draft already open is left as it is: the person resumes it)."""
    if not await services.users.has_consent(user):
        raise StaleAction()
    seed = await services.conversation.take_for_new_request(user, callback_data.item_id)
    draft: dict[str, object] = {
        "draft_id": uuid.uuid4().hex[:16],
        "vulnerability": [],
        "attachments": [
            AttachmentDraft(
                f.kind, f.file_id or "", f.file_unique_id or "", f.file_name, f.mime_type
            ).__dict__
            for f in seed.files[:MAX_ATTACHMENTS]
        ],
    }
    if seed.description and description_problem(seed.description) is None:
        draft["description"] = seed.description
    flow = FormFlow(query, state, services, user, i18n)
    await flow.show(Step.hromada, updates=draft, fresh=True, prefix=_("conv.new_request_intro"))


async def no_new(query: CallbackQuery, callback_data: ConvCb, services: Services, user: User) -> None:
    await services.conversation.decline_new_request(user, callback_data.item_id)
    await edit_or_send(query, _("conv.new_declined"), None)


async def stale(query: CallbackQuery) -> None:
    raise StaleAction()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, ConvCb)
    cb = router.callback_query
    cb.register(start_reply, Action(ConvCb, "reply"))
    cb.register(send_to_case, Action(ConvCb, "to"))
    cb.register(choose_other, Action(ConvCb, "other"))
    cb.register(file_new, Action(ConvCb, "new"))
    cb.register(no_new, Action(ConvCb, "nonew"))
    cb.register(stale, ConvCb.filter())
    messages = router.message
    messages.register(reply_answer, StateFilter(ReplyForm.answer), NotMenuButton())
    # A team's group chat is not a resident talking to the bot.
    messages.register(talk, StateFilter(None), PrivateChat(), NotMenuButton(), NotActiveWorker())
    return router
