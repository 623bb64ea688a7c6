"""Telegram users, languages and consent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import ApplicationSubscription, Case, Resident, User, utcnow
from services.clock import Clock, FrozenClock
from services.privacy import DraftEraser, PrivacyService


@dataclass
class PersonalDataSummary:
    """What we keep about a person, for /my_data (counts, not contents)."""

    language: str | None
    consent_at: datetime | None
    phone_masked: str | None
    phone_verified: bool
    cases: int
    subscriptions: int


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
        resident = await self.session.scalar(select(Resident).where(Resident.user_id == user.id))
        return resident

    async def ensure_resident(self, user: User) -> Resident:
        resident = await self.resident(user)
        if resident is None:
            resident = Resident(user_id=user.id)
            self.session.add(resident)
            await self.session.flush()
        return resident

    async def consented_resident(self, user: User) -> Resident | None:
        """The person's resident row if they may use the personal features: it exists, consent
        is given and their data was not erased since."""
        resident = await self.resident(user)
        if resident is None or resident.consent_at is None or resident.erased_at is not None:
            return None
        return resident

    async def has_consent(self, user: User) -> bool:
        return await self.consented_resident(user) is not None

    async def give_consent(self, user: User, at: datetime | None = None) -> Resident:
        resident = await self.ensure_resident(user)
        resident.consent_at = at or utcnow()
        resident.consent_version = CONSENT_VERSION
        resident.erased_at = None
        return resident

    async def personal_data(self, user: User) -> PersonalDataSummary:
        resident = await self.resident(user)
        cases = subscriptions = 0
        if resident is not None:
            cases = int(
                await self.session.scalar(
                    select(func.count()).select_from(Case).where(Case.resident_id == resident.id)
                )
                or 0
            )
        subscriptions = int(
            await self.session.scalar(
                select(func.count())
                .select_from(ApplicationSubscription)
                .where(ApplicationSubscription.user_id == user.id)
            )
            or 0
        )
        phone = resident.phone if resident else None
        return PersonalDataSummary(
            language=user.language,
            consent_at=resident.consent_at if resident and not resident.erased_at else None,
            phone_masked=f"{phone[:6]}•••••{phone[-2:]}" if phone else None,
            phone_verified=bool(resident and resident.phone_verified_at),
            cases=cases,
            subscriptions=subscriptions,
        )

    async def erase_personal_data(
        self, user: User, at: datetime | None = None, *, clear_drafts: DraftEraser | None = None
    ) -> int:
        """Erase what identifies the person or what they or the workers wrote about them, in
        every place services/privacy.py knows of; keep the anonymous cases and the workers'
        audit trail. `clear_drafts` clears their form drafts in the running FSM storage.
        Returns the number of cases touched."""
        clock = FrozenClock(at) if at is not None else Clock()
        result = await PrivacyService(self.session, clock).erase_person(user, clear_drafts=clear_drafts)
        return result.cases
