"""Showing a screen in answer to a button press: in place of the pressed message when it can
be edited, else as a new message below it."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message


async def edit_or_send(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    message = query.message
    if not isinstance(message, Message):
        return  # too old for Telegram to hand us back: nothing to edit or answer below
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramBadRequest as exc:
        # A repeated tap finds the screen already right; a message too old (or gone) to edit
        # gets the screen as a new message.
        if "not modified" in str(exc):
            return
        await message.answer(text, reply_markup=markup)
