"""Read access to reference data: hromadas, settlements, the service catalogue. Searching
places by name is services/places.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Hromada, Service, Settlement
from services.text import alphabetical, words

# Words too common in service names to tell one from another ("Соціальна допомога",
# "Гуманітарна допомога"): typed alone they still match, but they never decide.
_COMMON_WORDS = frozenset(
    {"допомога", "допомоги", "допомогу", "послуга", "послуги", "help", "support", "service"}
)
# A typed word matches a word of the service when both begin with the same letters, as many as
# the shorter has up to this: "субсидію", "субсидії" and "субсидія" are one word to a person.
_STEM = 5


def _same_word(typed: str, known: str) -> bool:
    if len(typed) < 3 or len(known) < 3:
        return False
    if len(typed) == 3 or len(known) == 3:  # "ВПО", "IDP": whole words only
        return typed == known
    stem = min(_STEM, len(typed), len(known))
    return typed[:stem] == known[:stem]


@dataclass(frozen=True)
class ServiceMatches:
    """What a typed request names: the candidates, best first, and the one it clearly names
    (None when it is not clear: then the person picks among the candidates)."""

    candidates: list[Service]
    chosen: Service | None


def match_services(typed: str, services: Sequence[Service]) -> ServiceMatches:
    """Services whose name or description shares the typed words (a word in the name counts
    double, a common word half). One is chosen only when a distinctive word decides it and it
    scores above every other: "субсидію" chooses, "допомога" offers several."""
    typed_words = words(typed)
    scored: list[tuple[int, bool, int, Service]] = []
    for service in services:
        name = words(f"{service.name_uk} {service.name_en}")
        about = words(f"{service.description_uk} {service.description_en}")
        score, distinctive = 0, False
        for word in typed_words:
            common = word in _COMMON_WORDS
            weight = 1 if common else 2
            if any(_same_word(word, known) for known in name):
                score += 2 * weight
            elif any(_same_word(word, known) for known in about):
                score += weight
            else:
                continue
            distinctive = distinctive or not common
        if score:
            scored.append((score, distinctive, service.position, service))
    scored.sort(key=lambda item: (-item[0], item[2], item[3].id))
    candidates = [service for *_, service in scored]
    chosen = None
    if scored and scored[0][1] and (len(scored) == 1 or scored[0][0] > scored[1][0]):
        chosen = scored[0][3]
    return ServiceMatches(candidates, chosen)


class CatalogueService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def services_matching(self, typed: str) -> ServiceMatches:
        """What a resident typed at the service step, matched against the catalogue."""
        rows = (await self.session.scalars(select(Service).order_by(Service.position, Service.id))).all()
        return match_services(typed, rows)

    async def services_by_group(self) -> list[tuple[str, list[Service]]]:
        rows = (await self.session.scalars(select(Service).order_by(Service.position, Service.id))).all()
        groups: dict[str, list[Service]] = {}
        for service in rows:
            groups.setdefault(service.group_code, []).append(service)
        return list(groups.items())

    async def settlements(self, hromada_id: int) -> list[Settlement]:
        """The hromada's settlements in the Ukrainian alphabet's order (the same on every
        database)."""
        rows = await self.session.scalars(select(Settlement).where(Settlement.hromada_id == hromada_id))
        return sorted(rows.all(), key=lambda s: (alphabetical(s.name_uk), s.id))

    async def hromada(self, hromada_id: int) -> Hromada | None:
        return await self.session.get(Hromada, hromada_id)

    async def service(self, service_id: int) -> Service | None:
        return await self.session.get(Service, service_id)

    async def settlement(self, settlement_id: int) -> Settlement | None:
        return await self.session.get(Settlement, settlement_id)

    async def settlement_of(self, hromada_id: int | None, settlement_id: int) -> Settlement | None:
        """The settlement, if it lies in that hromada."""
        settlement = await self.session.get(Settlement, settlement_id)
        if settlement is None or hromada_id is None or settlement.hromada_id != hromada_id:
            return None
        return settlement

    async def count_hromadas(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Hromada)) or 0)

    async def service_by_code(self, code: str) -> Service | None:
        service = await self.session.scalar(select(Service).where(Service.code == code))
        return service

    async def hromada_by_code_or_name(self, text: str) -> Hromada | None:
        needle = text.strip()
        hromada = await self.session.scalar(
            select(Hromada).where(
                or_(Hromada.code == needle.upper(), Hromada.name_uk == needle, Hromada.name_en == needle)
            )
        )
        return hromada
