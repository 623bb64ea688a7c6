"""Saved replies on a case, the worker's screens: the button on "Write to the resident", the
team's list, and a filled template with Send / Edit / Back. Pure: (text, markup)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import ReplyPickCb
from models import Case
from services.reply_book import Template
from services.saved_replies import Filled

Screen = tuple[str, InlineKeyboardMarkup]


def templates_button(case_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("replies.btn.templates"), callback_data=ReplyPickCb(action="list", case_id=case_id))
    return builder.as_markup()


def template_list(case: Case, templates: Sequence[Template], locale: str) -> Screen:
    builder = InlineKeyboardBuilder()
    for template in templates:
        builder.button(
            text=template.title(locale),
            callback_data=ReplyPickCb(action="pick", case_id=case.id, reply_id=template.first.id),
        )
    builder.adjust(1)
    return f"<b>{case.number}</b>\n" + _("replies.pick.title"), builder.as_markup()


def filled_screen(case: Case, reply_id: int, filled: Filled) -> Screen:
    """The text as the resident will read it, the language it is in, and what is missing."""
    lines = [
        f"<b>{case.number}</b> · "
        + _("replies.pick.preview") % {"language": _("replies.locale." + filled.locale)},
        "",
        html.escape(filled.text),
    ]
    if filled.missing:
        names = ", ".join("{" + name + "}" for name in filled.missing)
        lines += ["", _("replies.pick.missing") % {"names": names}]
    builder = InlineKeyboardBuilder()
    if not filled.missing:
        builder.button(
            text=_("replies.btn.send"),
            callback_data=ReplyPickCb(action="send", case_id=case.id, reply_id=reply_id),
        )
    builder.button(
        text=_("replies.btn.edit"),
        callback_data=ReplyPickCb(action="edit", case_id=case.id, reply_id=reply_id),
    )
    builder.button(text=_("replies.btn.back"), callback_data=ReplyPickCb(action="list", case_id=case.id))
    builder.adjust(2 if not filled.missing else 1, 1)
    return "\n".join(lines), builder.as_markup()


def edit_hint(case: Case, filled: Filled) -> str:
    """The filled text in monospace (a tap copies it in Telegram) to correct and send back."""
    return (
        f"<b>{case.number}</b>\n"
        + _("replies.pick.edit_hint")
        + f"\n\n<code>{html.escape(filled.text)}</code>"
    )
