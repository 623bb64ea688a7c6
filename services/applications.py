"""Applications administered in external registries: self-check by verified phone, number
lookups with throttling, subscriptions, status changes (by import or by a worker) and pushes.

The status vocabulary is data (reference YAML `application_statuses` → `ApplicationStatus` and
`ApplicationStatusAlias`); no status text lives in code. Every status change writes an
`ApplicationStatusChange` and queues one outbox push per subscriber, in the subscriber's
language, with a dedupe key per change so nothing is pushed twice.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import case, delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Application,
    ApplicationStatus,
    ApplicationStatusAlias,
    ApplicationStatusChange,
    ApplicationSubscription,
    Hromada,
    LookupAttempt,
    Resident,
    StatusLookup,
    Team,
    TeamMember,
    User,
    Worker,
)
from models.people import ROLE_COORDINATOR
from services import outbox
from services.clock import Clock
from services.phones import normalize_phone
from services.reminders import default_zone

PUSH_KIND = "app_status_changed"
# Number lookups allowed per user in a sliding window (against guessing other people's numbers).
LOOKUP_LIMIT = 5
LOOKUP_WINDOW = timedelta(minutes=10)
NUMBER_MAX = 40
_NUMBER_RE = re.compile(r"^[0-9A-Za-zА-Яа-яІіЇїЄєҐґ/\-_.]{1,40}$")


def normalize_number(raw: str) -> str | None:
    """An application number as typed or exported: trimmed, no inner spaces; None if it cannot
    be one (too long, odd characters)."""
    text = re.sub(r"\s+", "", raw or "")
    if text.startswith("№"):
        text = text[1:]
    if not _NUMBER_RE.match(text):
        return None
    return text.upper()


def mask_phone(phone: str) -> str:
    """+380501234567 → +380 ** *** **67 (for workers' screens and reports)."""
    return f"{phone[:4]} ** *** **{phone[-2:]}" if len(phone) >= 6 else "***"


def local_date(at: datetime, tz: zoneinfo.ZoneInfo | None = None) -> str:
    """dd.mm.yyyy in `tz` (pass the settings' zone; without it, the default zone)."""
    return at.astimezone(tz or default_zone()).strftime("%d.%m.%Y")


class StatusVocabulary:
    """The statuses and their aliases, loaded once (an import resolves thousands of rows)."""

    def __init__(self, statuses: Sequence[ApplicationStatus], aliases: dict[str, str]) -> None:
        self.by_code = {s.code: s for s in statuses}
        self.aliases = dict(aliases)
        for code in self.by_code:
            self.aliases.setdefault(code.casefold(), code)

    @classmethod
    async def load(cls, session: AsyncSession) -> StatusVocabulary:
        statuses = (await session.scalars(select(ApplicationStatus).order_by(ApplicationStatus.id))).all()
        aliases = dict(
            (await session.execute(select(ApplicationStatusAlias.alias, ApplicationStatusAlias.status_code)))
            .tuples()
            .all()
        )
        return cls(statuses, aliases)

    def resolve(self, text: str | int | float | None) -> str | None:
        if text is None:
            return None
        if isinstance(text, float) and text.is_integer():
            text = int(text)
        key = " ".join(str(text).split()).casefold()
        return self.aliases.get(key)

    def label(self, code: str, locale: str) -> str:
        status = self.by_code.get(code)
        if status is None:
            return code
        return status.label_en if locale == "en" else status.label_uk

    def next_step(self, code: str, locale: str) -> str:
        status = self.by_code.get(code)
        if status is None:
            return ""
        return status.next_step_en if locale == "en" else status.next_step_uk

    def codes(self) -> list[str]:
        return list(self.by_code)


class PhoneResult(Enum):
    SAVED = "saved"
    FOREIGN = "foreign"  # a forwarded contact or someone else's card
    NOT_UKRAINIAN = "not_ukrainian"
    NO_CONSENT = "no_consent"


class LookupOutcome(Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"  # also: the number belongs to another phone
    THROTTLED = "throttled"
    BAD_NUMBER = "bad_number"
    NO_PHONE = "no_phone"


@dataclass
class LookupResult:
    outcome: LookupOutcome
    application: Application | None = None
    retry_after: timedelta | None = None


@dataclass
class HistoryItem:
    status_code: str
    changed_at: datetime


@dataclass
class LookupStats:
    """One user's number lookups in a period; ids and counts only."""

    user_id: int
    attempts: int
    misses: int
    last_at: datetime


@dataclass
class StatusChangeResult:
    changed: bool
    change: ApplicationStatusChange | None = None
    pushes: int = 0


class ApplicationService:
    def __init__(
        self, session: AsyncSession, clock: Clock | None = None, tz: zoneinfo.ZoneInfo | None = None
    ) -> None:
        self.session = session
        self.clock = clock or Clock()
        self.tz = tz or default_zone()

    # -- phone -------------------------------------------------------------------------------
    async def resident(self, user: User) -> Resident | None:
        resident: Resident | None = await self.session.scalar(
            select(Resident).where(Resident.user_id == user.id)
        )
        return resident

    async def verified_phone(self, user: User) -> str | None:
        resident = await self.resident(user)
        if resident is None or resident.consent_at is None or resident.erased_at is not None:
            return None
        return resident.phone if resident.phone_verified_at else None

    async def check_contact(
        self, user: User, *, phone: str, contact_user_id: int | None, sender_telegram_id: int
    ) -> tuple[PhoneResult, str | None]:
        """Read-only check of a shared contact; (SAVED, normalized phone) when it may be stored.

        Only a contact the sender shared of themselves (Telegram's own button) counts."""
        if contact_user_id is None or contact_user_id != sender_telegram_id:
            return PhoneResult.FOREIGN, None
        if user.telegram_id != sender_telegram_id:
            return PhoneResult.FOREIGN, None
        resident = await self.resident(user)
        if resident is None or resident.consent_at is None or resident.erased_at is not None:
            return PhoneResult.NO_CONSENT, None
        normalized = normalize_phone(phone)
        if normalized is None:
            return PhoneResult.NOT_UKRAINIAN, None
        return PhoneResult.SAVED, normalized

    async def store_verified_phone(self, user: User, phone: str) -> None:
        """Store a phone that `check_contact` accepted."""
        resident = await self.resident(user)
        if resident is None:
            raise ValueError("no resident profile")
        if resident.phone != phone:
            # A new phone: subscriptions made for the old one's applications no longer apply.
            await self.session.execute(
                delete(ApplicationSubscription).where(
                    ApplicationSubscription.user_id == user.id,
                    ApplicationSubscription.application_id.in_(
                        select(Application.id).where(Application.phone != phone)
                    ),
                )
            )
        resident.phone = phone
        resident.phone_verified_at = self.clock.now()
        await self.session.flush()

    # -- reading -----------------------------------------------------------------------------
    async def for_phone(self, phone: str, limit: int = 20) -> list[Application]:
        rows = await self.session.scalars(
            select(Application)
            .where(Application.phone == phone)
            .order_by(Application.status_changed_at.desc(), Application.id.desc())
            .limit(limit)
        )
        return list(rows.all())

    async def owned(self, user: User, application_id: int) -> Application | None:
        """The application if it is registered to the user's verified phone, else None."""
        phone = await self.verified_phone(user)
        if phone is None:
            return None
        app = await self.session.get(Application, application_id)
        return app if app is not None and app.phone == phone else None

    async def history(self, application_id: int) -> list[HistoryItem]:
        rows = await self.session.execute(
            select(ApplicationStatusChange.to_status, ApplicationStatusChange.changed_at)
            .where(ApplicationStatusChange.application_id == application_id)
            .order_by(ApplicationStatusChange.changed_at, ApplicationStatusChange.id)
        )
        return [HistoryItem(code, at) for code, at in rows.all()]

    async def status_vocabulary(self) -> StatusVocabulary:
        return await StatusVocabulary.load(self.session)

    async def by_number(self, number: str) -> Application | None:
        normalized = normalize_number(number)
        if normalized is None:
            return None
        application: Application | None = await self.session.scalar(
            select(Application).where(Application.number == normalized)
        )
        return application

    # -- lookups by number -----------------------------------------------------------------------
    async def lookup_number(self, user: User, raw_number: str) -> LookupResult:
        """Find an application by number among those of the user's verified phone.

        A number that exists but belongs to another phone is NOT_FOUND, exactly like a number
        that does not exist. Limited to LOOKUP_LIMIT per LOOKUP_WINDOW per user."""
        phone = await self.verified_phone(user)
        if phone is None:
            return LookupResult(LookupOutcome.NO_PHONE)
        number = normalize_number(raw_number)
        if number is None:
            return LookupResult(LookupOutcome.BAD_NUMBER)
        now = self.clock.now()
        recent = (
            await self.session.scalars(
                select(LookupAttempt.at)
                .where(LookupAttempt.user_id == user.id, LookupAttempt.at > now - LOOKUP_WINDOW)
                .order_by(LookupAttempt.at)
            )
        ).all()
        if len(recent) >= LOOKUP_LIMIT:
            oldest = recent[len(recent) - LOOKUP_LIMIT]
            return LookupResult(LookupOutcome.THROTTLED, retry_after=oldest + LOOKUP_WINDOW - now)
        app = await self.session.scalar(
            select(Application).where(Application.number == number, Application.phone == phone)
        )
        self.session.add(LookupAttempt(user_id=user.id, at=now, hit=app is not None))
        await self._count_lookup(user, app, now)
        await self.session.flush()
        if app is None:
            return LookupResult(LookupOutcome.NOT_FOUND)
        return LookupResult(LookupOutcome.FOUND, app)

    async def _count_lookup(self, user: User, app: Application | None, now: datetime) -> None:
        """The reports' count: the application's hromada, else where the resident last filed."""
        hromada_id = app.hromada_id if app is not None else None
        if hromada_id is None:
            resident = await self.resident(user)
            hromada_id = resident.last_hromada_id if resident is not None else None
        self.session.add(StatusLookup(at=now, hromada_id=hromada_id, found=app is not None))

    async def lookup_stats(self, since: datetime, limit: int = 30) -> list[LookupStats]:
        """Users with missed lookups since `since`, most misses first (ids and counts only)."""
        misses = func.sum(case((LookupAttempt.hit.is_(False), 1), else_=0))
        rows = await self.session.execute(
            select(LookupAttempt.user_id, func.count(), misses, func.max(LookupAttempt.at))
            .where(LookupAttempt.at >= since)
            .group_by(LookupAttempt.user_id)
            .having(misses > 0)
            .order_by(misses.desc(), LookupAttempt.user_id)
            .limit(limit)
        )
        return [LookupStats(uid, int(n), int(m or 0), at) for uid, n, m, at in rows.all()]

    # -- subscriptions ---------------------------------------------------------------------------
    async def is_subscribed(self, user: User, application_id: int) -> bool:
        found = await self.session.scalar(
            select(ApplicationSubscription.id).where(
                ApplicationSubscription.user_id == user.id,
                ApplicationSubscription.application_id == application_id,
            )
        )
        return found is not None

    async def subscribed_ids(self, user: User, application_ids: Iterable[int]) -> set[int]:
        ids = list(application_ids)
        if not ids:
            return set()
        rows = await self.session.scalars(
            select(ApplicationSubscription.application_id).where(
                ApplicationSubscription.user_id == user.id, ApplicationSubscription.application_id.in_(ids)
            )
        )
        return set(rows.all())

    async def subscribe(self, user: User, application: Application) -> bool:
        """Subscribe (the caller checked ownership with `owned`); False if already subscribed."""
        if await self.is_subscribed(user, application.id):
            return False
        self.session.add(
            ApplicationSubscription(
                user_id=user.id, application_id=application.id, created_at=self.clock.now()
            )
        )
        await self.session.flush()
        return True

    async def unsubscribe(self, user: User, application_id: int) -> bool:
        result = cast(
            CursorResult[Any],
            await self.session.execute(
                delete(ApplicationSubscription).where(
                    ApplicationSubscription.user_id == user.id,
                    ApplicationSubscription.application_id == application_id,
                )
            ),
        )
        return bool(result.rowcount)

    # -- workers ---------------------------------------------------------------------------------
    async def hromada_scope(self, worker: Worker) -> set[int] | None:
        """The hromadas whose applications the worker may manage: their teams' hromadas, and
        every hromada of the oblast for an oblast department's member; None = all (admins)."""
        if worker.is_admin:
            return None
        teams = (
            await self.session.scalars(
                select(Team)
                .join(TeamMember, TeamMember.team_id == Team.id)
                .where(TeamMember.worker_id == worker.id)
            )
        ).all()
        scope = {t.hromada_id for t in teams if t.hromada_id is not None}
        oblasts = {t.oblast for t in teams if t.is_oblast_fallback}
        if oblasts:
            scope.update(
                (await self.session.scalars(select(Hromada.id).where(Hromada.oblast.in_(oblasts)))).all()
            )
        return scope

    async def worker_may_manage(self, worker: Worker, application: Application) -> bool:
        """Admins: all. Others: applications of a hromada in their scope (`hromada_scope`).
        An application without a hromada belongs to no hromada's team: admins and the oblast
        level only. There is no oblast role in the model: a member of an oblast fallback team
        (the oblast department) is the oblast level."""
        if not worker.active:
            return False
        if application.hromada_id is None:
            return worker.is_admin or await self._in_oblast_team(worker)
        scope = await self.hromada_scope(worker)
        return scope is None or application.hromada_id in scope

    async def _in_oblast_team(self, worker: Worker) -> bool:
        found = await self.session.scalar(
            select(TeamMember.id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(TeamMember.worker_id == worker.id, Team.is_oblast_fallback.is_(True))
            .limit(1)
        )
        return found is not None

    async def is_coordinator(self, worker: Worker) -> bool:
        if worker.is_admin:
            return True
        found = await self.session.scalar(
            select(TeamMember.id).where(
                TeamMember.worker_id == worker.id, TeamMember.role == ROLE_COORDINATOR
            )
        )
        return found is not None

    # -- status changes --------------------------------------------------------------------------
    async def change_status(
        self,
        application: Application,
        status_code: str,
        *,
        vocabulary: StatusVocabulary,
        source: str,
        actor_user_id: int | None = None,
        at: datetime | None = None,
        import_batch: str | None = None,
    ) -> StatusChangeResult:
        """Set a new status: audit row, then one push per subscriber (outbox, their language)."""
        if status_code not in vocabulary.by_code:
            raise ValueError(f"unknown status {status_code!r}")
        if application.status_code == status_code:
            return StatusChangeResult(False)
        at = at or self.clock.now()
        change = ApplicationStatusChange(
            application_id=application.id,
            from_status=application.status_code,
            to_status=status_code,
            changed_at=at,
            source=source,
            actor_user_id=actor_user_id,
            import_batch=import_batch,
        )
        self.session.add(change)
        application.status_code = status_code
        application.status_changed_at = at
        application.updated_at = self.clock.now()
        await self.session.flush()
        pushes = await queue_pushes(
            self.session,
            [StatusPush(application.id, application.number, status_code, at)],
            vocabulary,
            self.tz,
            due_at=self.clock.now(),
        )
        return StatusChangeResult(True, change, pushes)


@dataclass(frozen=True)
class StatusPush:
    """One status change to tell an application's subscribers about."""

    application_id: int
    number: str
    status_code: str
    changed_at: datetime


async def queue_pushes(
    session: AsyncSession,
    changes: Sequence[StatusPush],
    vocabulary: StatusVocabulary,
    tz: zoneinfo.ZoneInfo | None = None,
    *,
    due_at: datetime,
) -> int:
    """Queue a push to every subscriber of each changed application (one query for all).

    The dedupe key names the application, the new status and its time: the same change
    (e.g. the same file imported twice) never pushes twice."""
    if not changes:
        return 0
    tz = tz or default_zone()
    by_app: dict[int, list[StatusPush]] = {}
    for item in changes:
        by_app.setdefault(item.application_id, []).append(item)
    rows = (
        await session.execute(
            select(ApplicationSubscription.application_id, User)
            .join(User, User.id == ApplicationSubscription.user_id)
            .where(ApplicationSubscription.application_id.in_(list(by_app)))
            .order_by(ApplicationSubscription.id)
        )
    ).all()
    queued = 0
    for application_id, user in rows:
        for item in by_app[application_id]:
            locale = user.language or "uk"
            local = item.changed_at.astimezone(tz)
            stamp = local.strftime("%Y%m%d%H%M%S")
            message = await outbox.enqueue(
                session,
                user=user,
                kind=PUSH_KIND,
                payload={
                    "application_id": application_id,
                    "number": item.number,
                    "status": vocabulary.label(item.status_code, locale),
                    "date": local.date().isoformat(),
                    "next_step": vocabulary.next_step(item.status_code, locale),
                },
                application_id=application_id,
                due_at=due_at,
                dedupe_key=f"app:{application_id}:{item.status_code}:{stamp}:u{user.id}"[:120],
            )
            queued += message is not None
    return queued
