"""The new-request form's screens: pure functions from plain values and domain objects to
(text, markup). No database, no service calls; names are HTML-escaped here (messages use HTML)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import IntakeCb
from handlers.kit.render import escape_clipped, routing_reason
from models import Case, Hromada, Service, Settlement, Team
from services.cases import DESCRIPTION_MAX, DESCRIPTION_MIN, MAX_ATTACHMENTS, VULNERABILITY_MARKERS
from services.places import PlaceResults, SettlementHit
from services.text import has_words

Screen = tuple[str, InlineKeyboardMarkup | ReplyKeyboardMarkup]
InlineScreen = tuple[str, InlineKeyboardMarkup]

SEARCH_MIN, SEARCH_MAX = 2, 60
NAME_MIN, NAME_MAX = 2, 120
RELATION_MIN, RELATION_MAX = 2, 60
# Up to this many settlements are shown at once; more are paged, this many a page.
SETTLEMENTS_ON_ONE_PAGE = 30
SETTLEMENTS_PER_PAGE = 24
SERVICE_MATCHES = 4


# -- pieces ------------------------------------------------------------------------------------
def _button(key: str, cb: IntakeCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=_(key), callback_data=cb.pack())


def _button_text(text: str, cb: IntakeCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=cb.pack())


def _nav(builder: InlineKeyboardBuilder, *, back: bool = True) -> None:
    """Back (except at the first step) and Cancel, under every step."""
    row = []
    if back:
        row.append(_button("intake.btn.back", IntakeCb(action="back")))
    row.append(_button("intake.btn.cancel", IntakeCb(action="cancel")))
    builder.row(*row)


def _only_nav(text: str, *, back: bool = True) -> InlineScreen:
    builder = InlineKeyboardBuilder()
    _nav(builder, back=back)
    return text, builder.as_markup()


def contact_keyboard(saved_phone: str | None) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(text=_("intake.btn.share_phone"), request_contact=True)]]
    if saved_phone:
        rows.append([KeyboardButton(text=_("intake.btn.use_saved_phone"))])
    rows.append([KeyboardButton(text=_("intake.btn.back")), KeyboardButton(text=_("intake.btn.cancel"))])
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, one_time_keyboard=True)


def cancel_question() -> InlineScreen:
    """Asked before a draft with answers is thrown away: a mistaken tap must not cost the work."""
    builder = InlineKeyboardBuilder()
    builder.row(_button("intake.btn.cancel_yes", IntakeCb(action="cancel_yes")))
    builder.row(_button("intake.btn.cancel_no", IntakeCb(action="cancel_no")))
    return _("intake.cancel_question"), builder.as_markup()


# -- the steps ---------------------------------------------------------------------------------
def hromada_step(
    suggested: Sequence[Hromada], locale: str, settlement: Settlement | None = None
) -> InlineScreen:
    """Step 1: type a town, village or hromada; the draft's settlement (if chosen by search) and
    the draft's or the last request's hromada are one tap."""
    builder = InlineKeyboardBuilder()
    if settlement is not None:
        label = place_label(settlement, locale)
        builder.row(_button_text(f"📍 {label}", IntakeCb(action="ps", value=str(settlement.id))))
    for hromada in suggested:
        label = _("intake.place.hromada") % {"hromada": hromada.name(locale)}
        builder.row(_button_text(f"🏛 {label}", IntakeCb(action="h", value=str(hromada.id))))
    _nav(builder, back=False)
    return _("intake.ask_hromada") % {"min": SEARCH_MIN}, builder.as_markup()


def hromada_query_bad() -> InlineScreen:
    return _only_nav(_("intake.hromada_query_bad") % {"min": SEARCH_MIN, "max": SEARCH_MAX}, back=False)


def place_label(settlement: Settlement, locale: str, *, with_oblast: bool = False) -> str:
    """ "с. Миколаївка — Берестівська громада, Бердянський р-н": the hromada and raion (and the
    oblast when results span several) tell namesakes apart."""
    hromada = settlement.hromada
    parts = [_("intake.place.hromada") % {"hromada": hromada.name(locale)}]
    raion = hromada.raion_en if locale == "en" else hromada.raion_uk
    if raion:
        parts.append(_("intake.place.raion") % {"raion": raion})
    oblast = hromada.oblast_en if locale == "en" else hromada.oblast_uk
    if with_oblast and oblast:
        parts.append(_("intake.place.oblast") % {"oblast": oblast})
    kind = _("intake.place.kind." + settlement.kind) if settlement.kind else ""
    return f"{kind}{settlement.name(locale)} — {', '.join(parts)}"


def place_hits(query: str, found: PlaceResults, locale: str) -> InlineScreen:
    """Hromadas first (🏛, then the settlement step), then settlements (📍, the hromada follows)."""
    builder = InlineKeyboardBuilder()
    for hromada in found.hromadas:
        label = _("intake.place.hromada") % {"hromada": hromada.name(locale)}
        builder.row(_button_text(f"🏛 {label}", IntakeCb(action="h", value=str(hromada.id))))
    with_oblast = found.several_oblasts
    for hit in found.settlements:
        label = place_label(hit.settlement, locale, with_oblast=with_oblast)
        builder.row(_button_text(f"📍 {label}", IntakeCb(action="ps", value=str(hit.settlement.id))))
    _nav(builder, back=False)
    if not found.hromadas and not found.settlements:
        return _("intake.place_not_found") % {"query": html.escape(query)}, builder.as_markup()
    text = _("intake.place_found")
    if found.more:
        text += "\n" + _("intake.place_more")
    return text, builder.as_markup()


def place_chosen(settlement: Settlement, locale: str) -> str:
    return _("intake.place_chosen") % {
        "place": html.escape(place_label(settlement, locale, with_oblast=True))
    }


def settlement_step(
    hromada: Hromada | None, settlements: Sequence[Settlement], locale: str, page: int = 0
) -> InlineScreen:
    """The hromada's settlements as buttons, a page at a time when there are many (a hromada
    may have over a hundred villages, more than a keyboard holds or a phone shows), and a hint
    that the name may be typed instead."""
    pages = (
        max(1, -(-len(settlements) // SETTLEMENTS_PER_PAGE))
        if len(settlements) > SETTLEMENTS_ON_ONE_PAGE
        else 1
    )
    page = min(max(page, 0), pages - 1)
    shown = (
        settlements
        if pages == 1
        else settlements[page * SETTLEMENTS_PER_PAGE : (page + 1) * SETTLEMENTS_PER_PAGE]
    )
    builder = InlineKeyboardBuilder()
    for settlement in shown:
        builder.button(
            text=settlement.name(locale), callback_data=IntakeCb(action="st", value=str(settlement.id))
        )
    builder.adjust(2)
    if pages > 1:
        turn = []
        if page > 0:
            turn.append(_button("intake.btn.settlements_prev", IntakeCb(action="stp", value=str(page - 1))))
        if page < pages - 1:
            turn.append(_button("intake.btn.settlements_next", IntakeCb(action="stp", value=str(page + 1))))
        builder.row(*turn)
    _nav(builder)
    name = html.escape(hromada.name(locale)) if hromada else ""
    lines = [_("intake.ask_settlement") % {"hromada": name}]
    if pages > 1:
        lines.append(_("intake.settlement_page") % {"page": page + 1, "pages": pages})
    lines.append(_("intake.settlement_type_hint"))
    return "\n".join(lines), builder.as_markup()


def settlement_matches(
    query: str, hits: Sequence[SettlementHit], hromada: Hromada | None, locale: str
) -> InlineScreen:
    """What a name typed at the settlement step matched in the hromada; none: say so and
    offer the whole list."""
    name = html.escape(hromada.name(locale)) if hromada else ""
    builder = InlineKeyboardBuilder()
    for hit in hits:
        builder.row(
            _button_text(hit.settlement.name(locale), IntakeCb(action="st", value=str(hit.settlement.id)))
        )
    builder.row(_button("intake.btn.settlements_all", IntakeCb(action="stp", value="0")))
    _nav(builder)
    key = "intake.settlement_matches" if hits else "intake.settlement_not_found"
    return _(key) % {"query": escape_clipped(query, SEARCH_MAX), "hromada": name}, builder.as_markup()


def settlement_query_bad() -> InlineScreen:
    builder = InlineKeyboardBuilder()
    builder.row(_button("intake.btn.settlements_all", IntakeCb(action="stp", value="0")))
    _nav(builder)
    return _("intake.settlement_query_bad") % {"min": SEARCH_MIN, "max": SEARCH_MAX}, builder.as_markup()


def service_step(groups: Sequence[tuple[str, Sequence[Service]]], locale: str) -> InlineScreen:
    builder = InlineKeyboardBuilder()
    lines = [_("intake.ask_service"), ""]
    for group, services in groups:
        lines.append(f"<b>{_('service_group.' + group)}</b>")
        for service in services:
            lines.append(
                f"• {html.escape(service.name(locale))} — {html.escape(service.description(locale))}"
            )
            builder.row(_button_text(service.name(locale), IntakeCb(action="sv", value=str(service.id))))
    _nav(builder)
    return "\n".join(lines), builder.as_markup()


def service_understood(service: Service, locale: str) -> str:
    return _("intake.service_understood") % {"service": html.escape(service.name(locale))}


def service_matches(typed: str, services: Sequence[Service], locale: str) -> InlineScreen:
    """The services a typed request may mean, as buttons, with the whole list a press away;
    none: said plainly, with the list."""
    builder = InlineKeyboardBuilder()
    for service in services[:SERVICE_MATCHES]:
        builder.row(_button_text(service.name(locale), IntakeCb(action="sv", value=str(service.id))))
    builder.row(_button("intake.btn.services_all", IntakeCb(action="svall")))
    _nav(builder)
    key = "intake.service_matches" if services else "intake.service_not_understood"
    return _(key) % {"query": escape_clipped(typed, SEARCH_MAX)}, builder.as_markup()


def markers_understood(named: Sequence[str]) -> str:
    return _("intake.markers_understood") % {"markers": ", ".join(_("intake.marker." + c) for c in named)}


def vulnerability_step(chosen: Sequence[str]) -> InlineScreen:
    builder = InlineKeyboardBuilder()
    for code in VULNERABILITY_MARKERS:
        mark = "✅" if code in chosen else "▫️"
        builder.row(_button_text(f"{mark} {_('intake.marker.' + code)}", IntakeCb(action="vul", value=code)))
    builder.row(_button("intake.btn.done", IntakeCb(action="vdone")))
    _nav(builder)
    return _("intake.ask_vulnerability"), builder.as_markup()


def description_step(current: str | None = None) -> InlineScreen:
    """Ask for the description; one already in the draft (typed before going back, or the words
    a person sent before starting the form) is shown and kept with one tap."""
    text = _("intake.ask_description") % {"min": DESCRIPTION_MIN, "max": DESCRIPTION_MAX}
    if not current:
        return _only_nav(text)
    builder = InlineKeyboardBuilder()
    builder.row(_button("intake.btn.keep_description", IntakeCb(action="dkeep")))
    _nav(builder)
    shown = html.escape(current if len(current) <= 600 else current[:599] + "…")
    return f"{text}\n\n" + _("intake.current_description") % {"text": shown}, builder.as_markup()


def attachments_step(count: int) -> InlineScreen:
    builder = InlineKeyboardBuilder()
    builder.row(
        _button("intake.btn.files_done" if count else "intake.btn.no_files", IntakeCb(action="adone"))
    )
    _nav(builder)
    return _("intake.ask_attachments") % {"max": MAX_ATTACHMENTS, "n": count}, builder.as_markup()


def attachment_added(count: int) -> InlineScreen:
    builder = InlineKeyboardBuilder()
    builder.row(_button("intake.btn.files_done", IntakeCb(action="adone")))
    _nav(builder)
    return _("intake.attachment_added") % {"n": count, "max": MAX_ATTACHMENTS}, builder.as_markup()


def on_behalf_step() -> InlineScreen:
    builder = InlineKeyboardBuilder()
    builder.row(_button("intake.btn.for_me", IntakeCb(action="beh", value="self")))
    builder.row(_button("intake.btn.for_other", IntakeCb(action="beh", value="other")))
    _nav(builder)
    return _("intake.ask_on_behalf"), builder.as_markup()


def on_behalf_name_step() -> InlineScreen:
    return _only_nav(_("intake.ask_other_name"))


def on_behalf_relation_step() -> InlineScreen:
    return _only_nav(_("intake.ask_other_relation"))


def contact_step(saved_phone: str | None) -> Screen:
    text = _("intake.ask_phone")
    if saved_phone:
        text += "\n" + _("intake.ask_phone_saved") % {"phone": html.escape(saved_phone)}
    return text, contact_keyboard(saved_phone)


def summary(
    data: Mapping[str, Any],
    hromada: Hromada | None,
    settlement: Settlement | None,
    service: Service | None,
    locale: str,
) -> str:
    markers = ", ".join(_("intake.marker." + c) for c in data.get("vulnerability") or []) or "—"
    if data.get("on_behalf"):
        who = _("intake.summary.for_other") % {
            "name": html.escape(data.get("on_behalf_name") or ""),
            "relation": html.escape(data.get("on_behalf_relation") or ""),
        }
    else:
        who = _("intake.summary.for_me")
    return _("intake.summary") % {
        "hromada": html.escape(hromada.name(locale)) if hromada else "—",
        "settlement": html.escape(settlement.name(locale)) if settlement else "—",
        "service": html.escape(service.name(locale)) if service else "—",
        "markers": markers,
        # Escaping may grow a description several times over: the summary must stay one message.
        "description": escape_clipped(data.get("description") or "", 3000),
        "files": len(data.get("attachments") or []),
        "who": who,
        "phone": html.escape(data.get("contact_phone") or "—"),
    }


def confirm_step(summary_text: str, draft_id: str) -> InlineScreen:
    """The summary with Send: the button carries the draft id (the case's idempotency key)."""
    builder = InlineKeyboardBuilder()
    builder.row(_button("intake.btn.confirm", IntakeCb(action="confirm", value=draft_id)))
    _nav(builder)
    return summary_text, builder.as_markup()


# -- answers ----------------------------------------------------------------------------------
def need_consent_text() -> str:
    return _("intake.need_consent") + "\n\n" + _("consent.text")


def phone_saved_text(phone: str) -> str:
    return _("intake.phone_saved") % {"phone": html.escape(phone)}


def description_problem(text: str) -> str | None:
    """Why a typed description cannot be taken, or None."""
    if len(text) < DESCRIPTION_MIN:
        return _("intake.description_too_short") % {"n": len(text), "min": DESCRIPTION_MIN}
    if len(text) > DESCRIPTION_MAX:
        return _("intake.description_too_long") % {"n": len(text), "max": DESCRIPTION_MAX}
    if not has_words(text):
        return _("intake.description_no_words")
    return None


def name_problem(text: str) -> str | None:
    if NAME_MIN <= len(text) <= NAME_MAX:
        return None
    return _("intake.name_bad") % {"min": NAME_MIN, "max": NAME_MAX, "n": len(text)}


def relation_problem(text: str) -> str | None:
    if RELATION_MIN <= len(text) <= RELATION_MAX:
        return None
    return _("intake.relation_bad") % {"min": RELATION_MIN, "max": RELATION_MAX, "n": len(text)}


def filed_text(case: Case, team: Team | None, locale: str, i18n: I18n) -> str:
    return _("intake.filed") % {
        "number": case.number,
        "team": html.escape(team.name(locale)) if team else "",
        "reason": routing_reason(case, locale, i18n),
    }
