"""Pure renderers shared by the resident's and the worker's screens (no database, no aiogram)."""

from __future__ import annotations

import html
from typing import Any

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from services.errors import DomainError


def _name(part: Any, locale: str) -> str:
    if not isinstance(part, dict):
        return ""
    names = part.get("name") or {}
    return html.escape(str(names.get(locale) or names.get("uk") or part.get("code") or ""))


def routing_reason(case_or_detail: Any, locale: str, i18n: I18n) -> str:
    """Why a case went to its team, in `locale`: from `Case.routing_detail` (or the dict itself),
    e.g. "Delegated by Pishchanska hromada to Pyriatynska hromada for “Home care” ...".
    Names are HTML-escaped (messages use HTML parse mode)."""
    detail: dict[str, Any] = (
        case_or_detail if isinstance(case_or_detail, dict) else (case_or_detail.routing_detail or {})
    )
    kind = detail.get("kind") or getattr(case_or_detail, "routing_kind", None) or "own"
    if kind not in ("own", "delegation", "fallback"):
        kind = "own"
    settlement = detail.get("settlement") if detail.get("settlement_specific") else None
    key = f"intake.routing.{kind}" + ("_settlement" if settlement and kind != "fallback" else "")
    values = {
        "hromada": _name(detail.get("hromada"), locale),
        "service": _name(detail.get("service"), locale),
        "team": _name(detail.get("team"), locale),
        "team_hromada": _name(detail.get("team_hromada"), locale) or _name(detail.get("team"), locale),
        "settlement": _name(settlement, locale),
    }
    return i18n.gettext(key, locale=locale) % values


def kind_label(kind: str) -> str:
    """Known kinds have a translated name; others are shown as the registry wrote them."""
    key = f"app.kind.{kind}"
    text = _(key)
    return html.escape(kind) if text == key else text


def refusal_text(refusal: DomainError) -> str:
    """A refusal's text in the current language (as the error router would say it), for the few
    handlers that answer a refusal themselves because their own state change must stay."""
    text = _(refusal.message_key)
    return text % refusal.params if refusal.params else text
