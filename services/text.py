"""The one input boundary for text a person or a file supplies before it is stored.

Every value a resident or a worker types, every file name and MIME type Telegram passes on, and
every text cell of an import goes through here: Unicode NFC, no control characters (PostgreSQL
refuses NUL outright; C0/C1 controls, bidi overrides and lone surrogates only hide or disguise
text), whitespace trimmed, and a length no longer than its column. A value that is too long for
what it is (a message, a note) is refused with the limit named, so the person can shorten it
and the step stays; a value nobody typed (a file name, an imported cell) is cut instead.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from services.errors import DomainError

# Bidi embeddings, overrides and isolates can make a note read differently from what is stored;
# the byte-order mark and the two non-characters are noise in text. Left/right marks (200E/200F)
# are kept: mixed-script names need them.
_INVISIBLE = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff\ufffe\uffff")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn"})
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")
_BLANK_LINES = re.compile(r"\n{3,}")

FILE_NAME_MAX = 255
MIME_TYPE_MAX = 100
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")


class TextRefused(DomainError):
    """Typed text the bot cannot take: `too_long` (limit, n)."""

    prefix = "input"
    code = "too_long"


def _kept(ch: str) -> bool:
    if ch in "\n\t":
        return True
    return ch not in _INVISIBLE and unicodedata.category(ch) not in _DROPPED_CATEGORIES


WORDS_MIN_LETTERS = 3


def has_words(text: str, min_letters: int = WORDS_MIN_LETTERS) -> bool:
    """Whether `text` says something in words: at least `min_letters` letters of any script.
    Emoji, digits and punctuation alone do not tell a worker what happened."""
    letters = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if letters >= min_letters:
                return True
    return False


def tidy(value: str | None, *, multiline: bool = False) -> str:
    """`value` normalised: NFC, no control or invisible characters, trimmed. One line unless
    `multiline` (then line breaks and tabs stay, runs of blank lines are shortened)."""
    text = _LINE_BREAKS.sub("\n", value or "")
    text = "".join(ch for ch in text if _kept(ch))
    text = unicodedata.normalize("NFC", text)
    if not multiline:
        return " ".join(text.split())
    lines = (line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean(
    value: str | None,
    limit: int,
    *,
    multiline: bool = False,
    error: type[DomainError] = TextRefused,
    code: str | None = None,
    **params: Any,
) -> str:
    """`tidy(value)`, refused with `error(code, limit=…, n=…)` when longer than `limit`."""
    text = tidy(value, multiline=multiline)
    if len(text) > limit:
        raise error(code, limit=limit, n=len(text), **params)
    return text


def clean_optional(
    value: str | None,
    limit: int,
    *,
    multiline: bool = False,
    error: type[DomainError] = TextRefused,
    code: str | None = None,
) -> str | None:
    """`clean`, with an empty result as None."""
    return clean(value, limit, multiline=multiline, error=error, code=code) or None


def clip(value: str | None, limit: int, *, multiline: bool = False) -> str | None:
    """`tidy(value)` cut to `limit` (with "…"); None when empty. For values nobody typed."""
    text = tidy(value, multiline=multiline)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def clean_file_name(value: str | None) -> str | None:
    """A file name as Telegram passed it on, fit for its column: one line, no path separators,
    at most 255 characters with its extension kept."""
    text = tidy(value).replace("/", "_").replace("\\", "_")
    if len(text) <= FILE_NAME_MAX:
        return text or None
    stem, dot, ext = text.rpartition(".")
    suffix = f"{dot}{ext}" if dot and stem and 0 < len(ext) <= 16 else ""
    return text[: FILE_NAME_MAX - len(suffix) - 1].rstrip() + "…" + suffix


def clean_mime_type(value: str | None) -> str | None:
    """A MIME type as "type/subtype" (lower case), or None when it is not one."""
    text = tidy(value).casefold()
    return text if len(text) <= MIME_TYPE_MAX and _MIME.fullmatch(text) else None


def clean_file_id(value: str, limit: int) -> str:
    """Telegram's file ids are ASCII tokens; anything else is cut away so the row still fits."""
    return "".join(ch for ch in value if ch.isascii() and ch.isprintable())[:limit]


# The Ukrainian alphabet's order; the database's (SQLite: code points, where І, Ї, Є and Ґ
# come before А) is not what a resident scanning a list of villages expects.
_UKRAINIAN = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"
_RANK = {letter: index for index, letter in enumerate(_UKRAINIAN)}


def alphabetical(name: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key putting Ukrainian names in the alphabet's order (other letters after, by code
    point; spaces, hyphens and apostrophes first, so "Нова Гута" precedes "Новагутка")."""
    key: list[tuple[int, int | str]] = []
    for ch in name.casefold():
        if ch in _RANK:
            key.append((1, _RANK[ch]))
        elif ch in " -'’ʼ":
            key.append((0, 0))
        else:
            key.append((2, ch))
    return tuple(key)


_WORD = re.compile(r"[^\W\d_]+(?:['’ʼ][^\W\d_]+)*")


def words(text: str | None) -> list[str]:
    """The words of a typed text, lower case, each apostrophe form as "'" ("Матір'ю" is one
    word): what the form's word rules compare."""
    return [w.replace("’", "'").replace("ʼ", "'") for w in _WORD.findall((text or "").casefold())]
