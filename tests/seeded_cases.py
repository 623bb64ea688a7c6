"""Cases put straight into the database, for tests of what happens to a case after it is filed
(visits, documents, reminders)."""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Case, Hromada, Resident, Service, Settlement, Team, User

_numbers = itertools.count(1)


async def make_case(
    sessionmaker: async_sessionmaker[AsyncSession],
    resident_telegram_id: int,
    *,
    service_code: str = "subsidy",
    team_code: str = "ves-csp",
    hromada_code: str = "VES",
    settlement_code: str | None = "matviivka",
    status: str = "in_progress",
    created_at: datetime | None = None,
) -> int:
    """A case of the resident with this Telegram id (their Resident row must exist); returns its id."""
    async with sessionmaker.begin() as session:
        resident = await session.scalar(
            select(Resident)
            .join(User, User.id == Resident.user_id)
            .where(User.telegram_id == resident_telegram_id)
        )
        assert resident is not None
        hromada = await session.scalar(select(Hromada).where(Hromada.code == hromada_code))
        service = await session.scalar(select(Service).where(Service.code == service_code))
        team = await session.scalar(select(Team).where(Team.code == team_code))
        settlement = None
        if settlement_code:
            settlement = await session.scalar(
                select(Settlement).where(
                    Settlement.hromada_id == hromada.id, Settlement.code == settlement_code
                )
            )
        case = Case(
            number=f"{hromada_code}-2026-{next(_numbers):06d}",
            resident_id=resident.id,
            hromada_id=hromada.id,
            settlement_id=settlement.id if settlement else None,
            service_id=service.id,
            team_id=team.id,
            status=status,
            description="test",
            routing_kind="own",
            routing_detail={},
        )
        if created_at is not None:
            case.created_at = created_at
        session.add(case)
        await session.flush()
        return case.id
