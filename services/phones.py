"""Phone numbers, in one spelling: `+` and digits, Ukrainian numbers as +380XXXXXXXXX.

A resident's verified phone (shared through Telegram's contact button) and the phones in the
registries' exports are compared with each other, so both go through here.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_phone(raw: str | int | None) -> str | None:
    """A Ukrainian mobile/landline number as +380XXXXXXXXX, or None if it is not one.

    Accepts +380..., 380..., 80..., 0... with spaces, dashes, dots or brackets."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text or len(text) > 32:
        return None
    digits = _SEPARATORS.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
        if not digits.startswith("380"):
            return None
    if not digits.isdigit() or not digits.isascii():
        return None
    if len(digits) == 12 and digits.startswith("380"):
        pass
    elif len(digits) == 11 and digits.startswith("80"):
        digits = "3" + digits
    elif len(digits) == 10 and digits.startswith("0"):
        digits = "38" + digits
    else:
        return None
    if digits[3] == "0":  # +3800... is not a number
        return None
    return "+" + digits


def contact_phone(raw: str) -> str:
    """A number Telegram shares from a contact (`380501234567` or `+380501234567`, any country):
    a Ukrainian one as `normalize_phone` spells it, any other as `+` and its digits."""
    ukrainian = normalize_phone(raw)
    if ukrainian is not None:
        return ukrainian
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"+{digits}"[:16]
