"""Referral screens: the case's referrals and partners, the confirm step, the referral as the
referring team sees it and as the partner sees it. Pure functions to (text, markup)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import tzinfo

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import CaseCb, RefCb
from handlers.kit.render import escape_clipped
from models import Attachment, Case, PartnerAgency, Referral
from models.referrals import ACCEPTED, IN_BOT, OPEN_REFERRAL_STATES, SENT
from services.referrals import IncomingReferral, PartnerChoice, PartnerView

Screen = tuple[str, InlineKeyboardMarkup]


def _state(referral: Referral) -> str:
    return _(f"referral.state.{referral.state}")


def _line(referral: Referral, locale: str, tz: tzinfo) -> str:
    when = referral.created_at.astimezone(tz).strftime("%d.%m")
    return f"• {when} {html.escape(referral.partner.name(locale))} — {_state(referral)}"


def overview(
    case: Case, referrals: Sequence[Referral], choices: Sequence[PartnerChoice], locale: str, tz: tzinfo
) -> Screen:
    lines = [f"<b>{case.number}</b>", _("referral.overview.title")]
    lines += [_line(r, locale, tz) for r in referrals] or [_("referral.overview.none")]
    builder = InlineKeyboardBuilder()
    for referral in referrals:
        builder.button(
            text=f"📋 {referral.partner.name(locale)}",
            callback_data=RefCb(action="view", referral_id=referral.id),
        )
    if choices:
        lines += ["", _("referral.overview.choose")]
    for choice in choices:
        mark = "➕ " if choice.serves else "▫️ "
        builder.button(
            text=mark + choice.partner.name(locale),
            callback_data=RefCb(action="pick", case_id=case.id, value=choice.partner.id),
        )
    builder.button(text=_("referral.btn.back"), callback_data=CaseCb(action="open", case_id=case.id))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


def ask_subject(case: Case, partner: PartnerAgency, locale: str) -> str:
    return f"<b>{case.number}</b>\n" + _("referral.ask_subject") % {
        "partner": html.escape(partner.name(locale))
    }


def confirm(
    case_id: int,
    partner: PartnerAgency,
    subject: str,
    files: Sequence[Attachment],
    chosen: Sequence[int],
    share_contact: bool,
    locale: str,
) -> Screen:
    text = _("referral.confirm") % {
        "partner": html.escape(partner.name(locale)),
        "subject": escape_clipped(subject, 600),
    }
    builder = InlineKeyboardBuilder()
    for n, item in enumerate(files, start=1):
        mark = "✅" if item.id in chosen else "▫️"
        label = item.file_name or _(f"referral.file.{item.kind}")
        builder.button(
            text=f"{mark} 📎 {n}. {label}", callback_data=RefCb(action="att", case_id=case_id, value=item.id)
        )
    contact_key = "referral.btn.contact_on" if share_contact else "referral.btn.contact_off"
    builder.button(text=_(contact_key), callback_data=RefCb(action="contact", case_id=case_id))
    builder.button(text=_("referral.btn.send"), callback_data=RefCb(action="send", case_id=case_id))
    builder.button(text=_("referral.btn.cancel"), callback_data=RefCb(action="cancel", case_id=case_id))
    builder.adjust(1)
    return text, builder.as_markup()


def _answer_lines(referral: Referral) -> list[str]:
    lines = []
    if referral.reason:
        lines.append(_("referral.card.reason") % {"text": escape_clipped(referral.reason, 600)})
    if referral.outcome:
        lines.append(_("referral.card.outcome") % {"text": escape_clipped(referral.outcome, 600)})
    return lines


def _answer_buttons(builder: InlineKeyboardBuilder, referral: Referral) -> None:
    if referral.state == SENT:
        builder.button(
            text=_("referral.btn.accept"), callback_data=RefCb(action="accept", referral_id=referral.id)
        )
        builder.button(
            text=_("referral.btn.decline"), callback_data=RefCb(action="decline", referral_id=referral.id)
        )
    if referral.state in (SENT, ACCEPTED):
        builder.button(
            text=_("referral.btn.outcome"), callback_data=RefCb(action="outcome", referral_id=referral.id)
        )


def referrer_card(referral: Referral, number: str, locale: str, tz: tzinfo) -> Screen:
    """The referral as the referring team sees it; for an external partner, with the buttons to
    record its answer."""
    partner = referral.partner
    lines = [
        _("referral.card.title") % {"number": number, "partner": html.escape(partner.name(locale))},
        _("referral.card.state") % {"state": _state(referral)},
        _("referral.card.sent") % {"date": referral.created_at.astimezone(tz).strftime("%d.%m.%Y %H:%M")},
        _("referral.card.subject") % {"text": escape_clipped(referral.subject, 1000)},
    ]
    if partner.kind != IN_BOT and partner.contact(locale):
        lines.append(_("referral.card.contact") % {"text": html.escape(partner.contact(locale))})
    lines += _answer_lines(referral)
    builder = InlineKeyboardBuilder()
    if partner.kind != IN_BOT:
        _answer_buttons(builder, referral)
    if referral.state in OPEN_REFERRAL_STATES:
        builder.button(
            text=_("referral.btn.close"), callback_data=RefCb(action="close", referral_id=referral.id)
        )
    builder.button(text=_("referral.btn.back"), callback_data=CaseCb(action="open", case_id=referral.case_id))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


def partner_card(view: PartnerView, locale: str, tz: tzinfo) -> Screen:
    """Only the referred part: subject, service, place, the chosen files, the contact if shared."""
    referral = view.referral
    lines = [
        _("referral.partner.title") % {"number": view.number},
        _("referral.card.state") % {"state": _state(referral)},
        _("referral.partner.service") % {"service": html.escape(view.service(locale))},
        _("referral.partner.place") % {"place": html.escape(view.place(locale))},
        _("referral.card.subject") % {"text": escape_clipped(referral.subject, 1000)},
        _("referral.partner.contact") % {"phone": view.contact_phone}
        if view.contact_phone
        else _("referral.partner.no_contact"),
    ]
    lines += _answer_lines(referral)
    builder = InlineKeyboardBuilder()
    _answer_buttons(builder, referral)
    if view.attachments:
        builder.button(
            text=_("referral.btn.files") % {"n": len(view.attachments)},
            callback_data=RefCb(action="files", referral_id=referral.id),
        )
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


def ask_answer(number: str, to_state: str) -> str:
    return f"<b>{number}</b>\n" + _(f"referral.ask.{to_state}")


def incoming(items: Sequence[IncomingReferral], total: int, locale: str, tz: tzinfo) -> Screen:
    """A partner team's open referrals, the most urgent first, each a button to its card."""
    builder = InlineKeyboardBuilder()
    if not items:
        return _("referral.incoming.none"), builder.as_markup()
    lines = [_("referral.incoming.title") % {"n": total}]
    for item in items:
        due = item.due_at.astimezone(tz).strftime("%d.%m")
        mark = "🔴" if item.overdue else ("🆕" if item.state == SENT else "🔧")
        lines.append(
            f"{mark} <b>{html.escape(item.number)}</b> — {html.escape(item.service(locale))} — "
            + _(f"referral.state.{item.state}")
            + " · "
            + _("referral.incoming.due") % {"date": due}
        )
        builder.button(
            text=f"{mark} {item.number}", callback_data=RefCb(action="view", referral_id=item.referral_id)
        )
    if total > len(items):
        lines.append(_("referral.incoming.more") % {"n": total - len(items)})
    lines.append(_("referral.incoming.legend"))
    builder.button(text=_("referral.btn.refresh_list"), callback_data=RefCb(action="list"))
    builder.adjust(2)
    return "\n".join(lines), builder.as_markup()
