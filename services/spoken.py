"""Answers said in words where the form offers buttons: a resident who talks rather than
presses types "для мами" or "живу сама, на візку". Plain rules on words (no database, no
aiogram), read as word beginnings so inflected forms match; each returns None or nothing when
the words decide nothing, and the person is then asked to press."""

from __future__ import annotations

from services.cases import DESCRIPTION_MAX, DESCRIPTION_MIN, VULNERABILITY_MARKERS
from services.text import has_words, words

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
_OTHER_WORDS = frozenset({"мати", "матері", "матір", "матір'ю"})
_FOR_SELF = frozenset({"себе", "мене", "собі", "сам", "сама", "я", "myself", "me", "self"})


def on_behalf_from_words(typed: str | None) -> bool | None:
    """True when typed words say the request is for someone else, False for oneself, None when
    they say neither (the person is asked to press)."""
    said = words(typed)
    if any(w in _OTHER_WORDS or w.startswith(_FOR_OTHER) for w in said):
        return True
    if any(w in _FOR_SELF for w in said):
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
    said = words(typed)
    named = [
        code
        for code in VULNERABILITY_MARKERS
        if any(w.startswith(_MARKER_STEMS[code]) for w in said)
        or (code == "elderly_alone" and _lives_alone(said))
    ]
    return named, not named and any(w in _NONE_OF_THESE for w in said)


def _lives_alone(said: list[str]) -> bool:
    """ "Живу сама", "він живе один": alone only together with living."""
    living = any(w.startswith("жив") for w in said)
    return living and any(w in {"сама", "сам", "одна", "один"} for w in said)


def fuller_description(story: str, kept: str) -> str | None:
    """A story told before the description step ("мамі 82 роки, вона сама…" at the service
    step), to wait in the draft as the description: when it would pass as one and says more
    than what the draft holds. Otherwise None."""
    if DESCRIPTION_MIN <= len(story) <= DESCRIPTION_MAX and has_words(story) and len(story) > len(kept):
        return story
    return None
