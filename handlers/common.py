"""Everyone: /start, language, consent, help, public information, /cancel."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import ConsentCb, ForgetCb, LanguageCb
from handlers.kit.filters import MenuButton
from handlers.kit.keyboards import consent_keyboard, forget_keyboard, language_keyboard, main_menu
from handlers.kit.surveys import resume_on_start
from infra.settings import Settings
from models import User
from services.errors import StaleAction
from services.hub import Services


async def show_main_menu(message: Message, services: Services, user: User) -> None:
    consented = await services.users.has_consent(user)
    is_worker = await services.workers.is_active_worker(user)
    if consented:
        prompt = _("menu.prompt")
    else:
        prompt = _("menu.prompt_worker") if is_worker else _("menu.prompt_no_consent")
    await message.answer(
        prompt,
        reply_markup=main_menu(with_personal=consented, is_worker=is_worker),
    )


async def start(message: Message, state: FSMContext, services: Services, user: User) -> None:
    await state.clear()
    if user.language is None:
        # First contact: greet in Ukrainian (or the app's language guess) and ask for a language.
        await message.answer(_("start.greeting_new"), reply_markup=language_keyboard())
        return
    # Workers act for their institution: their menu does not wait for a resident's consent.
    is_worker = await services.workers.is_active_worker(user)
    if not is_worker and not await services.users.has_consent(user):
        await message.answer(_("consent.text"), reply_markup=consent_keyboard())
        return
    await message.answer(_("start.greeting_back"))
    await show_main_menu(message, services, user)
    if not is_worker:
        await resume_on_start(message, services, user, state)


async def ask_language(message: Message) -> None:
    await message.answer(_("language.choose"), reply_markup=language_keyboard())


async def set_language(
    query: CallbackQuery,
    callback_data: LanguageCb,
    services: Services,
    user: User,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    if callback_data.code not in i18n.available_locales:
        raise StaleAction()
    first_time = user.language is None
    await services.users.set_language(user, callback_data.code)
    i18n.current_locale = callback_data.code  # the rest of this reply in the new language
    callback_answer.text = _("language.changed")
    if not isinstance(query.message, Message):
        return
    await query.message.edit_reply_markup(reply_markup=None)
    if first_time or not await services.users.has_consent(user):
        await query.message.answer(_("consent.text"), reply_markup=consent_keyboard())
        return
    await show_main_menu(query.message, services, user)


async def consent_answer(
    query: CallbackQuery,
    callback_data: ConsentCb,
    services: Services,
    user: User,
    callback_answer: CallbackAnswer,
) -> None:
    if callback_data.answer == "yes":
        await services.users.give_consent(user)
        callback_answer.text = _("consent.thanks")
    elif callback_data.answer != "no":
        raise StaleAction()
    if not isinstance(query.message, Message):
        return
    await query.message.edit_reply_markup(reply_markup=None)
    if callback_data.answer == "no":
        await query.message.answer(_("consent.declined"))
    await show_main_menu(query.message, services, user)


async def ask_consent(message: Message) -> None:
    await message.answer(_("consent.text"), reply_markup=consent_keyboard())


async def help_(message: Message) -> None:
    await message.answer(_("help.text"))


async def public_services(message: Message, services: Services, i18n: I18n) -> None:
    catalogue = await services.catalogue.services_by_group()
    locale = i18n.current_locale
    lines = [_("services.title")]
    for group, items in catalogue:
        lines.append("")
        lines.append(f"<b>{_('service_group.' + group)}</b>")
        lines.extend(f"• {s.name(locale)} — {s.description(locale)}" for s in items)
    lines.append("")
    lines.append(_("services.hotlines"))
    await message.answer("\n".join(lines))


async def cancel(message: Message, state: FSMContext, services: Services, user: User) -> None:
    had_state = await state.get_state() is not None
    await state.clear()
    await message.answer(_("cancel.done") if had_state else _("cancel.nothing"))
    await show_main_menu(message, services, user)


async def menu(message: Message, services: Services, user: User) -> None:
    await show_main_menu(message, services, user)


async def noop(query: CallbackQuery) -> None:
    """A button that only shows something: the press is answered empty by the middleware."""


async def _is_noop(query: CallbackQuery) -> bool:
    return query.data == "noop"


async def my_data(message: Message, services: Services, user: User, settings: Settings) -> None:
    summary = await services.users.personal_data(user)
    tz = settings.locale.tz
    lines = [
        _("privacy.my_data.title"),
        _("privacy.my_data.language") % {"language": _(f"language.name.{summary.language or 'uk'}")},
        (_("privacy.my_data.consent") % {"date": summary.consent_at.astimezone(tz).strftime("%d.%m.%Y")})
        if summary.consent_at
        else _("privacy.my_data.no_consent"),
        (_("privacy.my_data.phone") % {"phone": summary.phone_masked})
        if summary.phone_masked
        else _("privacy.my_data.no_phone"),
        _("requests.count", "requests.count", summary.cases) % {"n": summary.cases},
        _("privacy.my_data.subscriptions") % {"n": summary.subscriptions},
        "",
        _("privacy.my_data.erase_hint"),
    ]
    await message.answer("\n".join(lines))


async def forget_me(message: Message) -> None:
    await message.answer(_("privacy.forget.confirm"), reply_markup=forget_keyboard())


async def forget_answer(
    query: CallbackQuery,
    callback_data: ForgetCb,
    services: Services,
    user: User,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    if callback_data.answer != "yes":
        callback_answer.text = _("privacy.forget.kept")
        if isinstance(query.message, Message):
            await query.message.edit_reply_markup(reply_markup=None)
        return
    # The draft goes in whichever FSM storage runs (database or Redis).
    cases = await services.users.erase_personal_data(user, clear_drafts=state.clear)
    if not isinstance(query.message, Message):
        return
    await query.message.edit_reply_markup(reply_markup=None)
    await query.message.answer(
        _("privacy.forget.done") % {"cases": _("requests.count", "requests.count", cases) % {"n": cases}},
        reply_markup=main_menu(with_personal=False),
    )


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(start, CommandStart())
    router.message.register(ask_language, Command("language"))
    router.message.register(ask_language, MenuButton("menu.language"))
    router.callback_query.register(set_language, LanguageCb.filter())
    router.callback_query.register(consent_answer, ConsentCb.filter())
    router.message.register(ask_consent, MenuButton("menu.give_consent"))
    router.message.register(help_, Command("help"))
    router.message.register(help_, MenuButton("menu.help"))
    router.message.register(public_services, Command("services"))
    router.message.register(public_services, MenuButton("menu.services"))
    router.message.register(cancel, Command("cancel"))
    router.message.register(menu, Command("menu"))
    router.callback_query.register(noop, _is_noop)
    router.message.register(my_data, Command("my_data"))
    router.message.register(forget_me, Command("forget_me"))
    router.callback_query.register(forget_answer, ForgetCb.filter())
    return router
