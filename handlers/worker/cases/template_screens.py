"""Saved replies on a case, the worker's screens: the button on "Write to the resident", the
team's list, a filled template with Send (or, for a document request, "Add to the request") /
Edit / Back, and the note under the deadline question. Pure: (text, markup)."""

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
DOCS = "docs"


def templates_button(case_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("replies.btn.templates"), callback_data=ReplyPickCb(action="list", case_id=case_id))
    return builder.as_markup()


def template_list(case: Case, templates: Sequence[Template], locale: str, mode: str = "") -> Screen:
    builder = InlineKeyboardBuilder()
    for template in templates:
        builder.button(
            text=template.title(locale),
            callback_data=ReplyPickCb(action="pick", case_id=case.id, reply_id=template.first.id, mode=mode),
        )
    builder.adjust(1)
    return f"<b>{case.number}</b>\n" + _("replies.pick.title"), builder.as_markup()


def filled_screen(case: Case, reply_id: int, filled: Filled, mode: str = "") -> Screen:
    """The text as the resident will read it, the language it is in, and what is missing.
    Mode `docs`: it becomes the note of the document request (its deadline filled later)."""
    language = _("replies.locale." + filled.locale)
    lines = [f"<b>{case.number}</b> · " + _("replies.pick.preview") % {"language": language}, ""]
    lines.append(html.escape(filled.text))
    if filled.missing:
        names = ", ".join("{" + name + "}" for name in filled.missing)
        lines += ["", _("replies.pick.missing") % {"names": names}]
    if mode == DOCS:
        lines += ["", _("replies.docs.deadline_later")]
    builder = InlineKeyboardBuilder()
    if not filled.missing:
        action = "note" if mode == DOCS else "send"
        builder.button(
            text=_("replies.btn.note" if mode == DOCS else "replies.btn.send"),
            callback_data=ReplyPickCb(action=action, case_id=case.id, reply_id=reply_id, mode=mode),
        )
    builder.button(
        text=_("replies.btn.edit"),
        callback_data=ReplyPickCb(action="edit", case_id=case.id, reply_id=reply_id, mode=mode),
    )
    builder.button(
        text=_("replies.btn.back"), callback_data=ReplyPickCb(action="list", case_id=case.id, mode=mode)
    )
    builder.adjust(2 if not filled.missing else 1, 1)
    return "\n".join(lines), builder.as_markup()


def edit_hint(case: Case, filled: Filled, mode: str = "") -> str:
    """The filled text in monospace (a tap copies it in Telegram) to correct and send back."""
    key = "replies.docs.edit_hint" if mode == DOCS else "replies.pick.edit_hint"
    return f"<b>{case.number}</b>\n" + _(key) + f"\n\n<code>{html.escape(filled.text)}</code>"


def note_line(note: str) -> str:
    """The note a document request will carry, under the deadline question."""
    return _("replies.docs.note") + "\n" + html.escape(note)
