"""Answers said in words where the form offers buttons: a resident who talks rather than
presses types "для мами" or "живу сама, на візку". Plain rules on words (no database, no
aiogram), read as word beginnings so inflected forms match; each returns None or nothing when
the words decide nothing, and the person is then asked to press."""

from __future__ import annotations

import re

from services.cases import VULNERABILITY_MARKERS

# "For whom" said in words. Checked as word beginnings, in this order: someone else named wins
# over "me" ("for my mother, I live with her" is for the mother).
_FOR_OTHER = (
    "інш",
    "мам",
    "тат",
    "бать",
    "бабус",
    "баб",
    "дід",
    "сусід",
    "син",
    "дочк",
    "доньк",
    "чолов",
    "дружин",
    "брат",
    "сестр",
    "онук",
    "дит",
    "other",
    "mother",
    "father",
    "mum",
    "mom",
    "dad",
    "neighbo",
    "son",
    "daughter",
    "husband",
    "wife",
    "grand",
)
# Whole words only: "матеріальна" must not read as "матері".
_OTHER_WORDS = frozenset({"мати", "матері", "матір"})
_FOR_SELF = ("себе", "мене", "собі", "сам", "сама", "я", "myself", "me", "self")
_SPOKEN = re.compile(r"[^\W\d_]+")


def on_behalf_from_words(typed: str | None) -> bool | None:
    """True when typed words say the request is for someone else, False for oneself, None when
    they say neither (the person is asked to press)."""
    words = _SPOKEN.findall((typed or "").casefold())
    if any(w in _OTHER_WORDS or w.startswith(_FOR_OTHER) for w in words):
        return True
    if any(w == word for w in words for word in _FOR_SELF):
        return False
    return None


# Circumstances said in words at the vulnerability step, as word beginnings per marker.
_MARKER_STEMS: dict[str, tuple[str, ...]] = {
    "elderly_alone": ("самотн", "одинок", "alone"),
    "disability": ("інвалід", "неходяч", "лежач", "візк", "disab", "wheelchair"),
    "children": ("діт", "дит", "немовл", "child", "kid", "baby"),
    "displaced": ("впо", "переселен", "переміщ", "евакуйов", "біжен", "idp", "displaced", "evacuat"),
}
# "Nothing of that": the step is done with no marker.
_NONE_OF_THESE = frozenset({"ні", "нема", "немає", "нічого", "жодного", "далі", "no", "none", "next"})


def markers_from_words(typed: str | None) -> tuple[list[str], bool]:
    """The markers typed words name (in the markers' order), and whether they say "none of
    these" (only when no marker is named)."""
    words = _SPOKEN.findall((typed or "").casefold())
    named = [
        code
        for code in VULNERABILITY_MARKERS
        if any(w.startswith(_MARKER_STEMS[code]) for w in words)
        or (code == "elderly_alone" and _lives_alone(words))
    ]
    return named, not named and any(w in _NONE_OF_THESE for w in words)


def _lives_alone(words: list[str]) -> bool:
    """ "Живу сама", "він живе один": alone only together with living."""
    living = any(w.startswith("жив") for w in words)
    return living and any(w in {"сама", "сам", "одна", "один"} for w in words)
