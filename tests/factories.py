"""Helpers that put people into the database directly, for tests that are not about joining."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Resident, Team, TeamMember, User, Worker, utcnow
from models.people import ROLE_WORKER


async def add_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    telegram_id: int,
    team_code: str,
    *,
    role: str = ROLE_WORKER,
    display_name: str = "Worker",
    language: str = "uk",
    on_duty: bool = True,
    is_admin: bool = False,
) -> Worker:
    """A worker (and their user row) in the team with this code; adds the membership if the
    worker already exists."""
    async with sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.telegram_id == telegram_id))
        if user is None:
            user = User(telegram_id=telegram_id, language=language)
            session.add(user)
            await session.flush()
        worker = await session.scalar(select(Worker).where(Worker.user_id == user.id))
        if worker is None:
            worker = Worker(user_id=user.id, display_name=display_name, is_admin=is_admin)
            session.add(worker)
            await session.flush()
        team = await session.scalar(select(Team).where(Team.code == team_code))
        assert team is not None, f"no team {team_code!r} in the reference data"
        session.add(TeamMember(team_id=team.id, worker_id=worker.id, role=role, on_duty=on_duty))
    return worker


async def add_resident(
    sessionmaker: async_sessionmaker[AsyncSession], telegram_id: int, *, language: str = "uk"
) -> Resident:
    """A resident who chose a language and gave consent."""
    async with sessionmaker.begin() as session:
        user = User(telegram_id=telegram_id, language=language)
        session.add(user)
        await session.flush()
        resident = Resident(user_id=user.id, consent_at=utcnow(), consent_version="test")
        session.add(resident)
    return resident
