"""Screens of the announcement form and its delivery report: pure functions (values → text and
buttons) in the current language."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import AnnCb
from models import Announcement, Settlement
from models.announcements import AUDIENCES, WITHDRAWN
from services.announcements import CAPTION_TEXT_MAX, TEXT_MAX, DeliveryReport, withdrawable

# Settlements a page: a hromada may have over a hundred, and a coordinator may have several
# hromadas (a keyboard holds 100 buttons at most, and a phone shows far fewer).
SETTLEMENTS_PER_PAGE = 40


def _cancel_row(builder: InlineKeyboardBuilder) -> None:
    builder.button(text=_("ann.btn.cancel"), callback_data=AnnCb(action="cancel"))


def ask_text() -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    _cancel_row(builder)
    return _("ann.ask_text") % {"limit": TEXT_MAX, "caption_limit": CAPTION_TEXT_MAX}, builder.as_markup()


def ask_audience() -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    for audience in AUDIENCES:
        builder.button(text=_(f"ann.audience.{audience}"), callback_data=AnnCb(action="aud", value=audience))
    _cancel_row(builder)
    builder.adjust(1)
    return _("ann.ask_audience"), builder.as_markup()


def pick_settlements(
    settlements: Sequence[Settlement], chosen: set[int], audience: str, locale: str, page: int = 0
) -> tuple[str, InlineKeyboardMarkup]:
    pages = max(1, -(-len(settlements) // SETTLEMENTS_PER_PAGE))
    page = min(max(page, 0), pages - 1)
    shown = settlements[page * SETTLEMENTS_PER_PAGE : (page + 1) * SETTLEMENTS_PER_PAGE]
    builder = InlineKeyboardBuilder()
    for settlement in shown:
        mark = "✅ " if settlement.id in chosen else ""
        builder.button(
            text=mark + settlement.name(locale), callback_data=AnnCb(action="pick", id=settlement.id)
        )
    turn = []
    if page > 0:
        builder.button(text=_("ann.btn.prev_page"), callback_data=AnnCb(action="page", id=page - 1))
        turn.append(1)
    if page < pages - 1:
        builder.button(text=_("ann.btn.next_page"), callback_data=AnnCb(action="page", id=page + 1))
        turn.append(1)
    builder.button(text=_("ann.btn.done") % {"n": len(chosen)}, callback_data=AnnCb(action="done"))
    _cancel_row(builder)
    builder.adjust(*([2] * ((len(shown) + 1) // 2)), *([len(turn)] if turn else []), 1, 1)
    text = _("ann.pick_settlements") % {"audience": _(f"ann.audience.{audience}")}
    if pages > 1:
        text += "\n" + _("ann.page") % {"page": page + 1, "pages": pages}
    return text, builder.as_markup()


def ask_when(recipients: int) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("ann.btn.now"), callback_data=AnnCb(action="now"))
    builder.button(text=_("ann.btn.later"), callback_data=AnnCb(action="later"))
    _cancel_row(builder)
    builder.adjust(2, 1)
    return _("ann.recipients") % {"n": recipients}, builder.as_markup()


def ask_time() -> str:
    return _("ann.ask_time")


def _when(send_at: datetime | None) -> str:
    return f"{send_at:%d.%m.%Y %H:%M}" if send_at is not None else _("ann.when_now")


def confirm(
    text: str, audience: str, settlements: int, recipients: int, send_at: datetime | None, with_photo: bool
) -> tuple[str, InlineKeyboardMarkup]:
    """The summary and the text as residents will read it."""
    builder = InlineKeyboardBuilder()
    builder.button(text=_("ann.btn.send"), callback_data=AnnCb(action="send"))
    _cancel_row(builder)
    builder.adjust(1)
    summary = _("ann.confirm") % {
        "text": html.escape(text),
        "audience": _(f"ann.audience.{audience}"),
        "settlements": settlements,
        "n": recipients,
        "when": _when(send_at),
        "photo": _("ann.with_photo") if with_photo else "",
    }
    return summary, builder.as_markup()


def queued(announcement: Announcement, send_at_local: datetime) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("ann.btn.report"), callback_data=AnnCb(action="report", id=announcement.id))
    text = _("ann.queued") % {
        "id": announcement.id,
        "n": announcement.recipients,
        "when": f"{send_at_local:%d.%m.%Y %H:%M}",
    }
    return text, builder.as_markup()


def report(
    announcement: Announcement, counts: DeliveryReport, send_at_local: datetime
) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("ann.btn.refresh"), callback_data=AnnCb(action="report", id=announcement.id))
    if withdrawable(announcement, counts):
        builder.button(text=_("ann.btn.withdraw"), callback_data=AnnCb(action="withdraw", id=announcement.id))
    builder.adjust(1)
    text = _("ann.report") % {
        "id": announcement.id,
        "when": f"{send_at_local:%d.%m.%Y %H:%M}",
        "total": counts.total,
        "sent": counts.sent,
        "pending": counts.pending,
        "unreachable": counts.unreachable,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
    }
    if announcement.state == WITHDRAWN:
        text += "\n\n" + _("ann.withdrawn_note")
    return text, builder.as_markup()


def withdrawn(
    cancelled: int, announcement: Announcement, counts: DeliveryReport, send_at_local: datetime
) -> tuple[str, InlineKeyboardMarkup]:
    """Just stopped: how many were not sent, then the report."""
    text, markup = report(announcement, counts, send_at_local)
    return _("ann.withdrawn") % {"n": cancelled} + "\n\n" + text, markup


def withdraw_question(announcement: Announcement, pending: int) -> tuple[str, InlineKeyboardMarkup]:
    """Asked before an announcement is stopped: a mistaken tap must not silence it."""
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("ann.btn.withdraw_yes"), callback_data=AnnCb(action="withdraw_yes", id=announcement.id)
    )
    builder.button(text=_("ann.btn.withdraw_no"), callback_data=AnnCb(action="report", id=announcement.id))
    builder.adjust(1)
    return _("ann.withdraw_question") % {"id": announcement.id, "n": pending}, builder.as_markup()


def recent(announcements: Sequence[Announcement]) -> InlineKeyboardMarkup | None:
    """Report buttons for the coordinator's latest announcements."""
    if not announcements:
        return None
    builder = InlineKeyboardBuilder()
    for item in announcements:
        builder.button(
            text=_("ann.btn.report_of") % {"id": item.id}, callback_data=AnnCb(action="report", id=item.id)
        )
    builder.adjust(1)
    return builder.as_markup()
