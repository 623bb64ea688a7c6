"""aiogram's keyboard builders, minus a deep copy of every button.

`KeyboardBuilder.export()` (and so `as_markup()`) deep-copies each button through pydantic's
`__deepcopy__`: about 7 % of a form step's CPU in the intake profile. Here the markup gets
fresh row lists (adding or adjusting in the builder afterwards does not touch it) but shares
the button objects: nothing in this code base changes a button after creating it, and a
builder lives for one reply."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, KeyboardButton
from aiogram.utils import keyboard


class InlineKeyboardBuilder(keyboard.InlineKeyboardBuilder):
    def export(self) -> list[list[InlineKeyboardButton]]:
        return [list(row) for row in self._markup]


class ReplyKeyboardBuilder(keyboard.ReplyKeyboardBuilder):
    def export(self) -> list[list[KeyboardButton]]:
        return [list(row) for row in self._markup]
