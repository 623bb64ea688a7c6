"""Read access to reference data: hromadas, settlements, the service catalogue. Searching
places by name is services/places.py."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Hromada, Service, Settlement
from services.text import alphabetical


class CatalogueService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
