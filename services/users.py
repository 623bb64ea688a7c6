"""Telegram users, languages and consent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    ApplicationSubscription,
    Attachment,
    AuditEntry,
    Case,
    CaseMessage,
    FsmRecord,
    MobileOfficeSubscription,
    Resident,
    User,
    utcnow,
)

ERASED = "—"


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

    async def erase_personal_data(self, user: User, at: datetime | None = None) -> int:
        """Erase what identifies the person or what they wrote; keep the workers' audit trail.

        Cases stay as anonymous records (counts for the oblast reports, the history of what
        workers did); their description, phone, on-behalf name, the resident's messages and
        attachments go. Returns the number of cases touched."""
        at = at or utcnow()
        resident = await self.resident(user)
        touched = 0
        if resident is not None:
            case_ids = list(
                (await self.session.scalars(select(Case.id).where(Case.resident_id == resident.id))).all()
            )
            touched = len(case_ids)
            if case_ids:
                await self.session.execute(
                    update(Case)
                    .where(Case.id.in_(case_ids))
                    .values(
                        description=ERASED, contact_phone=None, on_behalf_name=None, on_behalf_relation=None
                    )
                )
                await self.session.execute(
                    update(CaseMessage)
                    .where(CaseMessage.case_id.in_(case_ids), CaseMessage.from_resident.is_(True))
                    .values(text=ERASED)
                )
                await self.session.execute(delete(Attachment).where(Attachment.case_id.in_(case_ids)))
            resident.phone = None
            resident.phone_verified_at = None
            resident.consent_at = None
            resident.consent_version = None
            resident.last_hromada_id = None
            resident.last_settlement_id = None
            resident.erased_at = at
        await self.session.execute(
            delete(ApplicationSubscription).where(ApplicationSubscription.user_id == user.id)
        )
        await self.session.execute(
            delete(MobileOfficeSubscription).where(MobileOfficeSubscription.user_id == user.id)
        )
        await self.session.execute(delete(FsmRecord).where(FsmRecord.key.like(f"%:{user.telegram_id}:%")))
        self.session.add(
            AuditEntry(
                actor_user_id=user.id,
                action="personal_data_erased",
                object_type="user",
                object_id=str(user.id),
                data={"cases": touched},
            )
        )
        return touched
