"""Shared pieces of typed form steps (used by several audiences' routers)."""

from __future__ import annotations

from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from services.text import tidy


async def typed_text(message: Message, limit: int, too_long_key: str) -> str | None:
    """The text of a typed step, or None after a polite answer (the step stays).

    A command is not an answer: it is passed on to its own handler (SkipHandler)."""
    text = tidy(message.text, multiline=True)
    if text.startswith("/"):
        raise SkipHandler
    if not text:
        await message.answer(_("visit.text_only"))
        return None
    if len(text) > limit:
        await message.answer(_(too_long_key) % {"limit": limit, "n": len(text)})
        return None
    return text
