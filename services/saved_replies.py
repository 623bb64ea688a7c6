"""Saved replies, the pure part: which placeholders a template may use, checking a template a
coordinator typed, choosing the resident's language version, and filling it in.

No database and no aiogram: services/reply_book.py loads the template and the case and calls
these. Placeholders are `{name}`; only the names in PLACEHOLDERS are filled (a lone brace is
text). The bot keeps no resident's name (services/privacy.py: residents are known by their
Telegram account, whose name is never stored), so `{first_name}` is filled only when a name is
given and is otherwise a neutral greeting in the resident's language, chosen by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from services.errors import DomainError
from services.text import clean, has_words

PLACEHOLDERS: tuple[str, ...] = (
    "case_number",
    "first_name",
    "service",
    "team",
    "office_address",
    "office_hours",
    "deadline",
)
LOCALES: tuple[str, ...] = ("uk", "en")
TITLE_MAX = 60
# Room for the filled values: the relayed message may be 2,000 characters (services/case_actions).
TEXT_MAX = 1500
# What an empty value becomes in the text, so the worker sees a gap to edit before sending.
GAP = "…"

_FIELD = re.compile(r"\{\s*([^{}\s]*)\s*\}")

T = TypeVar("T")


class ReplyError(DomainError):
    """A refused saved-reply action (`replies.error.<code>`): empty_title, title_too_long,
    empty_text, text_too_long, no_words, unknown_placeholder (names, known), bad_locale,
    exists, too_many (limit), note_too_long (limit), not_found."""

    prefix = "replies.error"
    code = "not_found"


def known_placeholders() -> str:
    """The known placeholders as the coordinator types them: "{case_number}, {first_name}, …"."""
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def placeholders_in(text: str) -> list[str]:
    """Every `{name}` in the text, once each, in order of appearance."""
    return list(dict.fromkeys(match.group(1) for match in _FIELD.finditer(text)))


def unknown_placeholders(text: str) -> list[str]:
    return [name for name in placeholders_in(text) if name not in PLACEHOLDERS]


def check_title(value: str | None) -> str:
    title = clean(value, TITLE_MAX, error=ReplyError, code="title_too_long")
    if not title:
        raise ReplyError("empty_title")
    return title


def check_text(value: str | None) -> str:
    """A template's text as it will be stored: cleaned, not too long, saying something in
    words, and naming only known placeholders (else refused with the list of known ones)."""
    text = clean(value, TEXT_MAX, multiline=True, error=ReplyError, code="text_too_long")
    if not text:
        raise ReplyError("empty_text")
    unknown = unknown_placeholders(text)
    if unknown:
        raise ReplyError(
            "unknown_placeholder",
            names=", ".join("{" + name + "}" for name in unknown),
            known=known_placeholders(),
        )
    if not has_words(_FIELD.sub("", text)):
        raise ReplyError("no_words")
    return text


def check_locale(value: str) -> str:
    if value not in LOCALES:
        raise ReplyError("bad_locale")
    return value


def resident_locale(language: str | None) -> str:
    """The language a resident reads: theirs if the bot speaks it, else Ukrainian."""
    return language if language in LOCALES else "uk"


def pick_version(versions: Mapping[str, T], locale: str) -> tuple[str, T] | None:
    """The version in `locale`, else the one in the other language; None when there is none."""
    for candidate in (locale, *(other for other in LOCALES if other != locale)):
        if candidate in versions:
            return candidate, versions[candidate]
    return None


@dataclass(frozen=True)
class ReplyValues:
    """What the placeholders of one case become, in one language; None or "" when unknown."""

    case_number: str
    service: str
    team: str
    office_address: str = ""
    office_hours: str = ""
    deadline: str | None = None
    first_name: str | None = None


@dataclass(frozen=True)
class Filled:
    text: str
    locale: str
    # Placeholders that had no value (shown as GAP): the worker should edit before sending.
    missing: tuple[str, ...] = ()


def fill(template: str, values: ReplyValues, *, locale: str, greeting: str) -> Filled:
    """The template with its placeholders filled. `{first_name}` without a name becomes
    `greeting` (a neutral word such as "Доброго дня"); other empty values become GAP and are
    listed in `missing`. Unknown names (a template older than a rule) are left as typed."""
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PLACEHOLDERS:
            return match.group(0)
        if name == "first_name":
            return values.first_name or greeting
        found = getattr(values, name)
        if not found:
            if name not in missing:
                missing.append(name)
            return GAP
        return str(found)

    return Filled(_FIELD.sub(value, template), locale, tuple(missing))
