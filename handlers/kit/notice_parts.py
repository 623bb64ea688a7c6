"""What every outbox notice renderer shares: the payload and result shapes, and the helpers that
turn a payload's plain values into safe text (messages use HTML parse mode).

A renderer takes (payload, locale, i18n) and returns the values for the text `outbox.<kind>` and
its buttons as rows of (text key, callback data); handlers/kit/notices.py packs and translates
them."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.utils.i18n import I18n

Payload = Mapping[str, Any]
Buttons = list[list[tuple[str, CallbackData]]]
# (values for the `outbox.<kind>` text, buttons as rows of (text key, callback data)).
Parts = tuple[dict[str, Any], Buttons]
PartsBuilder = Callable[[Payload, str, I18n], Parts]

NONE = "—"


def escaped(value: Any) -> str:
    """User or database text, escaped; an absent value as a dash."""
    if value is None or value == "":
        return NONE
    return html.escape(str(value))


def local_date(value: str) -> str:
    """A local ISO date or date-time as dd.mm.yyyy."""
    return (datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)).strftime("%d.%m.%Y")


def local_time(value: str) -> str:
    """A local ISO date-time as HH:MM."""
    return datetime.fromisoformat(value).strftime("%H:%M")


def in_language(p: Payload, field: str, locale: str) -> str:
    """A field kept in both languages (`<field>_uk`, `<field>_en`), escaped, in the person's."""
    return escaped(p.get(f"{field}_en" if locale == "en" else f"{field}_uk"))
