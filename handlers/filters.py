"""Async filters (aiogram runs sync callables in a thread pool; these stay on the loop)."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import Message
from aiogram.utils.i18n import I18n

from bot.i18n import LANGUAGES


class MenuButton(Filter):
    """A reply-keyboard button by message key, in any language (an old keyboard still works
    after the user switched language)."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def __call__(self, message: Message, i18n: I18n) -> bool:
        text = message.text
        if not text:
            return False
        return any(text == i18n.gettext(self.key, locale=lang) for lang in LANGUAGES)
