"""Answers to a message sent outside any form: pure functions from the routing result to
(text, markup). Case numbers and service names are escaped here (messages use HTML)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import ConvCb
from models import Case
from services.conversation import BY_DOCUMENTS, BY_LATEST, Routed

Screen = tuple[str, InlineKeyboardMarkup | None]


def case_label(case: Case, locale: str) -> str:
    """ "VES-2026-00001 · Housing subsidy": how a case is named to its resident."""
    return f"{case.number} · {case.service.name(locale)}"


def routed(result: Routed, locale: str) -> Screen:
    """One line naming the case; after a guess, why this case and one tap to change it."""
    case = result.case
    assert case is not None
    values = {"case": html.escape(case_label(case, locale))}
    if result.count > 1:
        text = _("conv.routed_many") % {**values, "n": result.count}
    else:
        text = _("conv.routed") % values
    if result.how == BY_DOCUMENTS:
        text += "\n" + _("conv.why.documents")
    elif result.how == BY_LATEST:
        text += "\n" + _("conv.why.latest")
    if not result.guessed or result.open_count < 2:
        return text, None
    builder = InlineKeyboardBuilder()
    builder.row(_button(_("conv.btn.other"), ConvCb(action="other", item_id=result.item.id)))
    return text, builder.as_markup()


def choose(item_id: int, cases: Sequence[Case], locale: str) -> Screen:
    """Which request is this about? One button per open case; the message waits meanwhile."""
    builder = InlineKeyboardBuilder()
    for case in cases:
        builder.row(_button(case_label(case, locale), ConvCb(action="to", case_id=case.id, item_id=item_id)))
    return _("conv.choose"), builder.as_markup()


def offer_new(item_id: int) -> Screen:
    builder = InlineKeyboardBuilder()
    builder.row(_button(_("conv.btn.file_new"), ConvCb(action="new", item_id=item_id)))
    builder.row(_button(_("conv.btn.no_new"), ConvCb(action="nonew", item_id=item_id)))
    return _("conv.offer_new"), builder.as_markup()


def ask_reply(case: Case, locale: str) -> str:
    return _("conv.ask_reply") % {"case": html.escape(case_label(case, locale))}


def _button(text: str, data: ConvCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())
