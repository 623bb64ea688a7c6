"""Every filter the routers share, in one place. All async: aiogram runs synchronous callables
(magic filters included) in a thread pool, which costs more than the check itself."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.state import StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n

from handlers.kit.keyboards import MAIN_MENU_KEYS
from infra.i18n import LANGUAGES
from models import User
from services.hub import Services

# Reply-keyboard buttons that keep working in the middle of any form or typed step.
MENU_KEYS = (*MAIN_MENU_KEYS, "menu.worker_panel", "menu.give_consent")


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


def is_menu_text(text: str, i18n: I18n) -> bool:
    return any(text == i18n.gettext(key, locale=lang) for key in MENU_KEYS for lang in LANGUAGES)


class NotMenuText(Filter):
    """Text that is neither a command nor a main-menu button (those keep working in the
    middle of a form; the draft stays)."""

    async def __call__(self, message: Message, i18n: I18n) -> bool:
        text = message.text
        if text is None or text.startswith("/"):
            return False
        return not is_menu_text(text, i18n)


class NotMenuButton(Filter):
    """Anything but a main-menu button: a sticker or a photo passes, so the step can answer it."""

    async def __call__(self, message: Message, i18n: I18n) -> bool:
        text = message.text
        if text is None:
            return True
        return not text.startswith("/") and not is_menu_text(text, i18n)


class PlainText(Filter):
    """A text message that is not a command."""

    async def __call__(self, message: Message) -> bool:
        return message.text is not None and not message.text.startswith("/")


class NotCommand(Filter):
    """Lets /cancel and other commands through a step to their own handlers."""

    async def __call__(self, message: Message) -> bool:
        return not (message.text or "").startswith("/")


class NonText(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.text is None


class HasFile(Filter):
    """A photo or a document."""

    async def __call__(self, message: Message) -> bool:
        return bool(message.photo or message.document)


class PrivateChat(Filter):
    """A message in a private chat with the bot (not a team's group chat)."""

    async def __call__(self, message: Message) -> bool:
        return message.chat.type == "private"


class HasContact(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.contact is not None


class InStates(Filter):
    """The FSM is in one of the states of this group (any step of one form)."""

    def __init__(self, group: type[StatesGroup]) -> None:
        self.states = frozenset(s.state for s in group.__all_states__)

    async def __call__(self, event: Any, raw_state: str | None = None) -> bool:
        return raw_state in self.states


class Action(Filter):
    """A press of `factory` whose `action` field is one of `actions`; hands in `callback_data`."""

    def __init__(self, factory: type[CallbackData], *actions: str) -> None:
        self.inner = factory.filter()
        self.actions = frozenset(actions)

    async def __call__(self, query: CallbackQuery) -> bool | dict[str, Any]:
        result = await self.inner(query)
        if isinstance(result, dict) and getattr(result["callback_data"], "action", None) in self.actions:
            return result
        return False


class ActiveWorker(Filter):
    """Passes for an active worker and hands the row in as `worker`. Set on the worker's and
    the coordinator's routers, so their handlers take `worker` as an argument."""

    async def __call__(
        self, event: Any, services: Services, user: User | None = None
    ) -> bool | dict[str, Any]:
        if user is None:
            return False
        worker = await services.workers.worker_for(user)
        return {"worker": worker} if worker is not None else False


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


__all__ = [
    "MENU_KEYS",
    "Action",
    "ActiveWorker",
    "CallbackPrefix",
    "HasContact",
    "HasFile",
    "InStates",
    "MenuButton",
    "NonText",
    "NotCommand",
    "NotMenuButton",
    "NotMenuText",
    "PlainText",
    "PrivateChat",
    "is_menu_text",
    "prune_callbacks",
]
