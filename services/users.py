"""Telegram users, languages and consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Resident, User, utcnow

CONSENT_VERSION = "2026-11"
LANGUAGES = ("uk", "en")


class UserService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_or_create(self, telegram_id: int) -> User:
        user = await self.session.scalar(select(User).where(User.telegram_id == telegram_id))
        if user is not None:
            return user
        # Two first updates of one person can race; a savepoint lets the loser re-read.
        try:
            async with self.session.begin_nested():
                user = User(telegram_id=telegram_id, language=None, reachable=True)
                self.session.add(user)
        except IntegrityError:
            user = await self.session.scalar(select(User).where(User.telegram_id == telegram_id))
            assert user is not None
        return user

    async def set_language(self, user: User, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        user.language = language
        if not user.reachable:
            # They wrote to us, so they have unblocked the bot.
            user.reachable = True
            user.unreachable_since = None

    async def mark_reachable(self, user: User) -> None:
        if not user.reachable:
            user.reachable = True
            user.unreachable_since = None

    async def resident(self, user: User) -> Resident | None:
        return await self.session.scalar(select(Resident).where(Resident.user_id == user.id))

    async def ensure_resident(self, user: User) -> Resident:
        resident = await self.resident(user)
        if resident is None:
            resident = Resident(user_id=user.id)
            self.session.add(resident)
            await self.session.flush()
        return resident

    async def has_consent(self, user: User) -> bool:
        resident = await self.resident(user)
        return bool(resident and resident.consent_at and not resident.erased_at)

    async def give_consent(self, user: User, at: datetime | None = None) -> Resident:
        resident = await self.ensure_resident(user)
        resident.consent_at = at or utcnow()
        resident.consent_version = CONSENT_VERSION
        resident.erased_at = None
        return resident
