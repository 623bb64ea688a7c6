"""Check my application, subscriptions.

The applicant proves their phone with Telegram's own contact button (a forwarded or someone
else's contact is refused), then sees every application registered to it, or looks one up by
number (throttled; a number of another phone gets exactly the "not found" answer)."""

from __future__ import annotations

import html
import math
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.common import show_main_menu
from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import AppCb
from handlers.kit.filters import HasContact, MenuButton, NonText, NotMenuButton, PlainText, prune_callbacks
from handlers.kit.keyboards import consent_keyboard, main_menu
from handlers.kit.render import capped, kind_label
from models import Application, User
from services.applications import (
    ApplicationService,
    HistoryItem,
    LookupOutcome,
    PhoneResult,
    StatusVocabulary,
    local_date,
)
from services.errors import StaleAction
from services.hub import Services

SHOWN_MAX = 10


class AppStates(StatesGroup):
    waiting_contact = State()
    waiting_number = State()


# -- rendering ---------------------------------------------------------------------------------


def render_card(
    app: Application,
    history: list[HistoryItem],
    vocabulary: StatusVocabulary,
    locale: str,
    subscribed: bool,
    tz: ZoneInfo,
) -> tuple[str, InlineKeyboardMarkup]:
    lines = [
        _("app.history_line")
        % {
            "date": local_date(item.changed_at, tz),
            "status": html.escape(vocabulary.label(item.status_code, locale)),
        }
        for item in history
    ]
    text = _("app.card") % {
        "number": html.escape(app.number),
        "kind": kind_label(app.kind),
        "status": html.escape(vocabulary.label(app.status_code, locale)),
        "date": local_date(app.status_changed_at, tz),
        "next_step": html.escape(vocabulary.next_step(app.status_code, locale)) or "—",
        "history": "\n".join(lines) or "—",
    }
    return capped(text, _("common.cut")), card_markup(app.id, subscribed)


def card_markup(application_id: int, subscribed: bool) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    if subscribed:
        builder.button(
            text=_("app.btn_unsubscribe"), callback_data=AppCb(action="unsub", application_id=application_id)
        )
    else:
        builder.button(
            text=_("app.btn_subscribe"), callback_data=AppCb(action="sub", application_id=application_id)
        )
    return builder.as_markup()


def number_markup() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("app.btn_enter_number"), callback_data=AppCb(action="number", application_id=0))
    builder.button(text=_("app.btn_change_phone"), callback_data=AppCb(action="phone", application_id=0))
    builder.adjust(1)
    return builder.as_markup()


def contact_keyboard() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("app.btn_share_phone"), request_contact=True)],
            [KeyboardButton(text=_("app.btn_back"))],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


async def send_card(
    message: Message, service: ApplicationService, user: User, app: Application, locale: str
) -> None:
    vocabulary = await service.status_vocabulary()
    history = await service.history(app.id)
    subscribed = await service.is_subscribed(user, app.id)
    text, markup = render_card(app, history, vocabulary, locale, subscribed, service.tz)
    await message.answer(text, reply_markup=markup)


async def show_applications(
    message: Message, service: ApplicationService, user: User, phone: str, locale: str
) -> None:
    apps = await service.for_phone(phone, limit=SHOWN_MAX + 1)
    if not apps:
        await message.answer(_("app.none_for_phone") % {"phone": phone}, reply_markup=number_markup())
        return
    shown = apps[:SHOWN_MAX]
    header = _("app.list_header", "app.list_header", len(shown)) % {"n": len(shown), "phone": phone}
    if len(apps) > SHOWN_MAX:
        header += "\n" + _("app.more_hidden") % {"n": SHOWN_MAX}
    await message.answer(header, reply_markup=number_markup())
    vocabulary = await service.status_vocabulary()
    subscribed = await service.subscribed_ids(user, (a.id for a in shown))
    for app in shown:
        history = await service.history(app.id)
        text, markup = render_card(app, history, vocabulary, locale, app.id in subscribed, service.tz)
        await message.answer(text, reply_markup=markup)


async def ask_contact(message: Message, state: FSMContext) -> None:
    await state.set_state(AppStates.waiting_contact)
    await message.answer(_("app.ask_contact"), reply_markup=contact_keyboard())


# -- handlers ----------------------------------------------------------------------------------


async def check_application(
    message: Message, state: FSMContext, services: Services, user: User, i18n: I18n
) -> None:
    await state.clear()
    service = services.applications
    if await services.users.consented_resident(user) is None:
        await message.answer(
            _("app.need_consent") + "\n\n" + _("consent.text"), reply_markup=consent_keyboard()
        )
        return
    phone = await service.verified_phone(user)
    if phone is None:
        await ask_contact(message, state)
        return
    await show_applications(message, service, user, phone, i18n.current_locale)


async def on_contact(message: Message, state: FSMContext, services: Services, user: User, i18n: I18n) -> None:
    contact = message.contact
    assert contact is not None and message.from_user is not None
    service = services.applications
    result, phone = await service.check_contact(
        user,
        phone=contact.phone_number,
        contact_user_id=contact.user_id,
        sender_telegram_id=message.from_user.id,
    )
    if result is PhoneResult.FOREIGN:
        await message.answer(_("app.contact_foreign"), reply_markup=contact_keyboard())
        return
    if result is PhoneResult.NOT_UKRAINIAN:
        await message.answer(_("app.phone_not_ua"))
        return
    await state.clear()
    if result is PhoneResult.NO_CONSENT or phone is None:
        await message.answer(
            _("app.need_consent") + "\n\n" + _("consent.text"), reply_markup=consent_keyboard()
        )
        return
    await service.store_verified_phone(user, phone)
    is_worker = await services.workers.is_active_worker(user)
    await message.answer(_("app.phone_saved"), reply_markup=main_menu(is_worker=is_worker))
    await show_applications(message, service, user, phone, i18n.current_locale)


async def contact_back(message: Message, state: FSMContext, services: Services, user: User) -> None:
    await state.clear()
    await show_main_menu(message, services, user)


async def contact_expected(message: Message) -> None:
    await message.answer(_("app.contact_use_button"), reply_markup=contact_keyboard())


async def on_number(message: Message, state: FSMContext, services: Services, user: User, i18n: I18n) -> None:
    service = services.applications
    result = await service.lookup_number(user, message.text or "")
    if result.outcome is LookupOutcome.FOUND:
        # The state stays on purpose: a family often has several applications, so another
        # number can be typed right away (the prompt says so; /cancel or the menu ends it).
        assert result.application is not None
        await send_card(message, service, user, result.application, i18n.current_locale)
    elif result.outcome is LookupOutcome.NOT_FOUND:
        await message.answer(_("app.not_found"))
    elif result.outcome is LookupOutcome.BAD_NUMBER:
        await message.answer(_("app.bad_number"))
    elif result.outcome is LookupOutcome.THROTTLED:
        await state.clear()
        seconds = result.retry_after.total_seconds() if result.retry_after else 60
        await message.answer(_("app.throttled") % {"minutes": max(1, math.ceil(seconds / 60))})
    else:  # NO_PHONE: consent withdrawn or phone never verified
        await ask_contact(message, state)


async def number_expected(message: Message) -> None:
    await message.answer(_("app.number_text_only"))


async def on_app_button(
    query: CallbackQuery,
    callback_data: AppCb,
    state: FSMContext,
    services: Services,
    user: User,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    service = services.applications
    action = callback_data.action
    message = query.message if isinstance(query.message, Message) else None
    if action == "phone":
        if message is not None:
            await ask_contact(message, state)
        return
    if action == "number":
        if await service.verified_phone(user) is None:
            if message is not None:
                await ask_contact(message, state)
            return
        await state.set_state(AppStates.waiting_number)
        if message is not None:
            await message.answer(_("app.ask_number"))
        return
    if action == "unsub":
        # Always allowed: it only removes the user's own subscription row.
        await service.unsubscribe(user, callback_data.application_id)
        callback_answer.text = _("app.unsubscribed")
        if message is not None:
            owned = await service.owned(user, callback_data.application_id)
            await message.edit_reply_markup(
                reply_markup=card_markup(owned.id, False) if owned is not None else None
            )
        return
    app = await service.owned(user, callback_data.application_id)
    if app is None or action not in ("open", "sub"):
        raise StaleAction()
    if action == "open":
        if message is not None:
            await send_card(message, service, user, app, i18n.current_locale)
        return
    await service.subscribe(user, app)
    callback_answer.text = _("app.subscribed")
    if message is not None:
        await message.edit_reply_markup(reply_markup=card_markup(app.id, True))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, AppCb)
    router.message.register(check_application, Command("status"))
    router.message.register(check_application, MenuButton("menu.check_application"))
    router.message.register(on_contact, StateFilter(AppStates.waiting_contact, None), HasContact())
    router.message.register(contact_back, StateFilter(AppStates.waiting_contact), MenuButton("app.btn_back"))
    router.message.register(contact_expected, StateFilter(AppStates.waiting_contact), NotMenuButton())
    # Commands (/cancel, /help, ...) pass through to their own handlers.
    router.message.register(on_number, StateFilter(AppStates.waiting_number), PlainText(), NotMenuButton())
    router.message.register(number_expected, StateFilter(AppStates.waiting_number), NonText())
    router.callback_query.register(on_app_button, AppCb.filter())
    return router
