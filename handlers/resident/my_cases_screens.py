"""Screens of "My requests": pure functions from a page of cases or a case card to (text,
markup). No database; names and what people typed are HTML-escaped here (messages use HTML)."""

from __future__ import annotations

import html
from datetime import datetime, tzinfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import MyCaseCb
from handlers.kit.render import capped, routing_reason
from models import CaseEvent, Team
from models.cases import EVENT_KINDS, RESOLVED
from services.cases import CaseCard, CasePage

EXCERPT = 300


def when(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%d.%m.%Y %H:%M")


def short(text: str, limit: int = EXCERPT) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(text)


def list_screen(page: CasePage, locale: str) -> tuple[str, InlineKeyboardMarkup | None]:
    if page.total == 0:
        return _("mycases.empty"), None
    builder = InlineKeyboardBuilder()
    count = _("requests.count", "requests.count", page.total) % {"n": page.total}
    lines = [_("mycases.title") % {"count": count}, ""]
    for case in page.cases:
        status = _("case.status." + case.status)
        lines.append(f"<b>{case.number}</b> · {html.escape(case.service.name(locale))} · {status}")
        builder.button(
            text=f"{case.number} · {status}",
            callback_data=MyCaseCb(action="open", case_id=case.id, page=page.page),
        )
    builder.adjust(1)
    nav = []
    if page.page > 0:
        nav.append(("mycases.btn.prev", page.page - 1))
    if page.page < page.pages - 1:
        nav.append(("mycases.btn.next", page.page + 1))
    if nav:
        builder.row(
            *[
                InlineKeyboardButton(text=_(key), callback_data=MyCaseCb(action="page", page=p).pack())
                for key, p in nav
            ]
        )
    if page.pages > 1:
        lines.append("")
        lines.append(_("mycases.page") % {"page": page.page + 1, "pages": page.pages})
    return "\n".join(lines), builder.as_markup()


def event_line(event: CaseEvent, teams: dict[int, Team], locale: str, tz: tzinfo) -> str:
    if event.kind == "created":
        text = _("mycases.event.created")
    elif event.kind == "status" and event.to_status:
        text = _("mycases.event.status") % {"status": _("case.status." + event.to_status)}
        if event.reason and event.to_status == RESOLVED:
            text += "; " + _("mycases.event.outcome") % {"outcome": short(event.reason, 200)}
        elif event.reason:
            text += " — " + short(event.reason, 200)
    elif event.kind == "transferred":
        team = teams.get((event.data or {}).get("to_team") or 0)
        text = _("mycases.event.transferred") % {"team": html.escape(team.name(locale)) if team else "—"}
    elif event.kind.startswith("referral_") and event.kind in EVENT_KINDS:
        data = event.data or {}
        partner = data.get("partner_en" if locale == "en" else "partner_uk") or "—"
        text = _("mycases.event." + event.kind) % {"partner": html.escape(str(partner))}
        if event.reason:
            text += " — " + short(event.reason, 200)
    elif event.kind in EVENT_KINDS and event.kind != "status":
        text = _("mycases.event." + event.kind)
    else:
        text = _("mycases.event.other")
    return f"{when(event.at, tz)} — {text}"


def case_screen(card: CaseCard, i18n: I18n, tz: tzinfo, page: int) -> tuple[str, InlineKeyboardMarkup]:
    locale = i18n.current_locale
    case = card.case
    place = card.hromada.name(locale) if card.hromada else ""
    if card.settlement is not None:
        place = f"{place}, {card.settlement.name(locale)}"
    lines = [
        _("mycases.card")
        % {
            "number": case.number,
            "service": html.escape(card.service.name(locale)) if card.service else "—",
            "status": _("case.status." + case.status),
            "team": html.escape(card.team.name(locale)) if card.team else "—",
            "place": html.escape(place),
            "created": when(case.created_at, tz),
            "description": short(case.description),
        },
        "",
        "<i>" + routing_reason(case, locale, i18n) + "</i>",
        "",
        "<b>" + _("mycases.history") + "</b>",
    ]
    lines.extend(event_line(event, card.teams, locale, tz) for event in card.events)
    if card.messages:
        lines.append("")
        lines.append("<b>" + _("mycases.messages") + "</b>")
        for m in card.messages:
            who = _("mycases.from_me") if m.from_resident else _("mycases.from_worker")
            lines.append(f"{when(m.at, tz)} {who}: {short(m.text, 200)}")
    builder = InlineKeyboardBuilder()
    if card.open:
        for key, action in (
            ("mycases.btn.write", "write"),
            ("mycases.btn.document", "doc"),
            ("mycases.btn.cancel", "cancel"),
        ):
            builder.button(text=_(key), callback_data=MyCaseCb(action=action, case_id=case.id, page=page))
    builder.button(text=_("mycases.btn.list"), callback_data=MyCaseCb(action="page", page=page))
    builder.adjust(1)
    return capped("\n".join(lines), _("common.cut")), builder.as_markup()


def back_to_case(case_id: int, page: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("mycases.btn.back_to_case"), callback_data=MyCaseCb(action="open", case_id=case_id, page=page)
    )
    return builder.as_markup()


def cancel_confirm(number: str, case_id: int, page: int) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("mycases.btn.cancel_yes"),
        callback_data=MyCaseCb(action="cancel_yes", case_id=case_id, page=page),
    )
    builder.button(
        text=_("mycases.btn.cancel_no"), callback_data=MyCaseCb(action="open", case_id=case_id, page=page)
    )
    builder.adjust(1)
    return _("mycases.cancel_confirm") % {"number": number}, builder.as_markup()
