"""Pure renderers shared by the resident's and the worker's screens (no database, no aiogram)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from services.errors import DomainError

# Telegram refuses a message text longer than this (counted in UTF-16 code units). The cap is
# applied to the HTML as sent, tags and entities included, so it holds whatever they expand to.
MESSAGE_MAX = 4096


def telegram_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def escape_clipped(raw: str, limit: int) -> str:
    """`raw` HTML-escaped and cut (with "…") so that the escaped text is at most `limit` long."""
    escaped = html.escape(raw)
    if telegram_len(escaped) <= limit:
        return escaped
    parts: list[str] = []
    used = 1  # the "…"
    for ch in raw:
        piece = html.escape(ch)
        used += telegram_len(piece)
        if used > limit:
            break
        parts.append(piece)
    return "".join(parts).rstrip() + "…"


def fit_message(blocks: Sequence[str], cut_note: str, limit: int = MESSAGE_MAX) -> tuple[str, bool]:
    """`blocks` joined by line breaks; when that is too long for one message, as many whole
    blocks from the start as fit, then `cut_note` on its own line. A block is never split, so
    its HTML stays balanced. Returns the text and whether it was cut."""
    text = "\n".join(blocks)
    if telegram_len(text) <= limit:
        return text, False
    kept: list[str] = []
    room = limit - telegram_len(cut_note) - 1
    for block in blocks:
        size = telegram_len(block) + (1 if kept else 0)
        if size > room:
            break
        kept.append(block)
        room -= size
    return "\n".join([*kept, cut_note]), True


_OPEN_TAG = re.compile(r"<[a-z][^>]*>")
_CLOSE_TAG = re.compile(r"</[a-z-]+>")


def _balanced_blocks(text: str) -> list[str]:
    """`text` split at line breaks that are outside any HTML element."""
    blocks: list[str] = []
    current: list[str] = []
    depth = 0
    for line in text.split("\n"):
        current.append(line)
        depth += len(_OPEN_TAG.findall(line)) - len(_CLOSE_TAG.findall(line))
        if depth <= 0:
            blocks.append("\n".join(current))
            current, depth = [], 0
    if current:
        blocks.append("\n".join(current))
    return blocks


def capped(text: str, cut_note: str = "…", limit: int = MESSAGE_MAX) -> str:
    """A rendered message fit for Telegram: cut between whole lines (never inside an HTML
    element), with `cut_note` last. The last resort of every long screen."""
    return fit_message(_balanced_blocks(text), cut_note, limit)[0]


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
