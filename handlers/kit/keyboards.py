"""Keyboards shared by several routers. Texts come from i18n keys."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder, ReplyKeyboardBuilder
from handlers.kit.callbacks import ConsentCb, ForgetCb, LanguageCb
from infra.i18n import LANGUAGES

MAIN_MENU_KEYS = (
    "menu.new_request",
    "menu.my_requests",
    "menu.check_application",
    "menu.mobile_office",
    "menu.surveys",
    "menu.services",
    "menu.language",
    "menu.help",
)


def language_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for code in LANGUAGES:
        builder.button(text=_(f"language.name.{code}"), callback_data=LanguageCb(code=code))
    builder.adjust(2)
    return builder.as_markup()


def consent_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("consent.agree"), callback_data=ConsentCb(answer="yes"))
    builder.button(text=_("consent.decline"), callback_data=ConsentCb(answer="no"))
    builder.adjust(1)
    return builder.as_markup()


def main_menu(*, with_personal: bool = True, is_worker: bool = False) -> ReplyKeyboardMarkup:
    builder = ReplyKeyboardBuilder()
    keys = (
        MAIN_MENU_KEYS
        if with_personal
        else ("menu.services", "menu.give_consent", "menu.language", "menu.help")
    )
    for key in keys:
        builder.button(text=_(key))
    if is_worker:
        builder.button(text=_("menu.worker_panel"))
    builder.adjust(2)
    return builder.as_markup(resize_keyboard=True, is_persistent=True)


def forget_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("privacy.forget.yes"), callback_data=ForgetCb(answer="yes"))
    builder.button(text=_("privacy.forget.no"), callback_data=ForgetCb(answer="no"))
    builder.adjust(1)
    return builder.as_markup()
