"""Async filters (aiogram runs sync callables in a thread pool; these stay on the loop)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
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


class CallbackPrefix(Filter):
    """Router-level filter: the button's data starts with one of these CallbackData prefixes.

    Set on a feature router's `callback_query` observer, it lets a press meant for another
    router skip this one (and its handlers' full unpacking of the data) at one string check.
    Every handler still validates the data itself; this only prunes."""

    def __init__(self, *factories: type[CallbackData]) -> None:
        self.prefixes = frozenset(f.__prefix__ for f in factories)
        separators = {f.__separator__ for f in factories}
        if len(separators) != 1:
            raise ValueError("CallbackPrefix needs factories with one separator")
        self.separator = separators.pop()

    async def __call__(self, query: CallbackQuery) -> bool:
        data = query.data
        return data is not None and data.partition(self.separator)[0] in self.prefixes


def prune_callbacks(router: Router, *factories: type[CallbackData]) -> None:
    """Let `router` see only button presses made by these factories."""
    router.callback_query.filter(CallbackPrefix(*factories))
