"""What no other router took: unknown commands, stickers, voice, stale buttons."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from services.errors import StaleAction


async def unknown_command(message: Message) -> None:
    await message.answer(_("fallback.unknown_command"))


async def unknown_text(message: Message) -> None:
    await message.answer(_("fallback.text"))


async def unsupported_type(message: Message) -> None:
    await message.answer(_("fallback.unsupported_type"))


async def stale_button(query: CallbackQuery) -> None:
    raise StaleAction()


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(unknown_text, F.text)
    router.message.register(unsupported_type)
    router.callback_query.register(stale_button)
    return router
