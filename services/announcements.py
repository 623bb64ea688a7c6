"""Announcements: a coordinator tells the residents of chosen settlements something, now or at a
time, and sees how far it got.

Who hears it (decided here, one place):
- "residents of a settlement" are residents whose last named settlement
  (`residents.last_settlement_id`, set by their latest request) is one of the chosen ones —
  where they live now; a case's settlement can be a relative's village, so cases do not count;
- "subscribers" are people subscribed to the mobile office of a chosen settlement;
- in both, only residents who gave consent, have not erased their data and whose chat is
  reachable (no 403 since their last delivered message).

A coordinator chooses among the settlements of their teams' hromadas only (an admin: any), and
every id from a button is checked again when the announcement is stored. The recipients are
fixed when it is confirmed: one `announcement` outbox row each, due at its time, non-urgent —
so the deliverer spreads them within the rate limits, holds them through quiet hours, marks a
chat that answers 403 unreachable, and drops a row whose resident withdrew consent meanwhile
(services/privacy.py). The delivery report counts those rows by state. Every announcement is
audited (ids and counts, never its text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from typing import cast as cast_type
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Select,
    SQLColumnExpression,
    String,
    Table,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Announcement,
    AuditEntry,
    MobileOfficeSubscription,
    OutboxMessage,
    Resident,
    Settlement,
    Team,
    TeamMember,
    User,
    Worker,
)
from models.announcements import AUDIENCE_RESIDENTS, AUDIENCE_SUBSCRIBERS, AUDIENCES, WITHDRAWN
from models.base import UtcDateTime
from models.outbox import CANCELLED, FAILED, PENDING, SENDING, SENT
from models.people import ROLE_COORDINATOR
from services.clock import Clock
from services.errors import DomainError
from services.outbox import OUTBOX_DIRTY, PAYLOAD_VERSION, VERSION_KEY
from services.text import alphabetical, clean, clean_file_id, has_words

ANNOUNCEMENT = "announcement"
TEXT_MAX = 3000
# A photo's caption is at most 1024 characters, and the notice adds its heading.
CAPTION_TEXT_MAX = 900
FILE_ID_MAX = 255
HORIZON = timedelta(days=60)
_WHEN = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\s+(\d{1,2}):(\d{2})\s*$")


class AnnouncementError(DomainError):
    """A refused announcement step (`ann.error.<code>`)."""

    prefix = "ann.error"
    code = "not_allowed"


@dataclass(frozen=True)
class DeliveryReport:
    total: int
    sent: int
    pending: int
    unreachable: int
    failed: int
    cancelled: int


def withdrawable(announcement: Announcement, counts: DeliveryReport) -> bool:
    """It may still be stopped: messages wait and it was not stopped before."""
    return bool(counts.pending) and announcement.state != WITHDRAWN


class AnnouncementService:
    def __init__(self, session: AsyncSession, clock: Clock, tz: ZoneInfo) -> None:
        self.session = session
        self.clock = clock
        self.tz = tz

    # -- what a coordinator may choose ---------------------------------------------------------
    async def settlements(self, worker: Worker) -> list[Settlement]:
        """The settlements of the worker's coordinated hromadas; refused when there are none."""
        from services.workers import RoutingAdmin

        hromada_ids = [h.id for h in await RoutingAdmin(self.session).hromadas(worker)]
        if not hromada_ids:
            raise AnnouncementError("not_allowed")
        rows = await self.session.scalars(select(Settlement).where(Settlement.hromada_id.in_(hromada_ids)))
        return sorted(rows.all(), key=lambda s: (alphabetical(s.name_uk), s.id))

    async def allowed(self, worker: Worker, settlement_ids: Sequence[int]) -> list[int]:
        """The ids, checked: every one must be the worker's, and at least one chosen."""
        mine = {s.id for s in await self.settlements(worker)}
        chosen = sorted(set(settlement_ids))
        if not chosen:
            raise AnnouncementError("no_settlements")
        if not set(chosen) <= mine:
            raise AnnouncementError("not_allowed")
        return chosen

    # -- the typed steps -----------------------------------------------------------------------
    @staticmethod
    def check_text(text: str | None, *, with_photo: bool) -> str:
        limit = CAPTION_TEXT_MAX if with_photo else TEXT_MAX
        cleaned = clean(text, limit, multiline=True, error=AnnouncementError, code="too_long")
        if not has_words(cleaned):
            raise AnnouncementError("no_words")
        return cleaned

    def parse_send_at(self, typed: str | None) -> datetime:
        """ "dd.mm HH:MM" in local time, this year (next year when that date has passed long
        ago), in the future and within the horizon."""
        match = _WHEN.match(typed or "")
        if match is None:
            raise AnnouncementError("bad_time")
        day, month, hour, minute = (int(g) for g in match.groups())
        now = self.clock.now()
        local_now = now.astimezone(self.tz)
        try:
            at = datetime(local_now.year, month, day, hour, minute, tzinfo=self.tz)
            if at < local_now - timedelta(days=180):  # "05.01" typed in December
                at = at.replace(year=local_now.year + 1)
        except ValueError:
            raise AnnouncementError("bad_time") from None
        if at <= local_now:
            raise AnnouncementError("past_time")
        if at - local_now > HORIZON:
            raise AnnouncementError("far_time", days=HORIZON.days)
        return at.astimezone(now.tzinfo)

    # -- recipients ----------------------------------------------------------------------------
    def _recipients_query(
        self, audience: str, settlement_ids: Sequence[int], *columns: SQLColumnExpression[Any]
    ) -> Select[Any]:
        """The recipients' rows with these columns (of `users`), one per person."""
        reachable_residents = (
            select(*columns)
            .select_from(User)
            .join(Resident, Resident.user_id == User.id)
            .where(
                Resident.consent_at.is_not(None),
                Resident.erased_at.is_(None),
                User.reachable.is_(True),
            )
        )
        if audience == AUDIENCE_RESIDENTS:
            return reachable_residents.where(Resident.last_settlement_id.in_(list(settlement_ids)))
        if audience == AUDIENCE_SUBSCRIBERS:
            subscribed = select(MobileOfficeSubscription.user_id).where(
                MobileOfficeSubscription.settlement_id.in_(list(settlement_ids))
            )
            return reachable_residents.where(User.id.in_(subscribed))
        raise AnnouncementError("not_allowed")

    async def recipients(self, audience: str, settlement_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(user id, chat id) of everyone the announcement would reach now."""
        query = self._recipients_query(audience, settlement_ids, User.id, User.telegram_id)
        rows = await self.session.execute(query.order_by(User.id))
        return [(int(user_id), int(chat_id)) for user_id, chat_id in rows.all()]

    async def count(self, worker: Worker, audience: str, settlement_ids: Sequence[int]) -> int:
        """How many it would reach now; refused when nobody (nothing to send)."""
        chosen = await self.allowed(worker, settlement_ids)
        query = self._recipients_query(audience, chosen, User.id)
        n = int(await self.session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        if n == 0:
            raise AnnouncementError("no_recipients")
        return n

    # -- sending -------------------------------------------------------------------------------
    async def _team_for(self, worker: Worker, settlement_ids: Sequence[int]) -> Team | None:
        """The coordinator's team in the hromada of the chosen settlements (the sender's name)."""
        hromadas = select(Settlement.hromada_id).where(Settlement.id.in_(list(settlement_ids)))
        team: Team | None = await self.session.scalar(
            select(Team)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(
                TeamMember.worker_id == worker.id,
                TeamMember.role == ROLE_COORDINATOR,
                Team.hromada_id.in_(hromadas),
            )
            .order_by(Team.id)
            .limit(1)
        )
        return team

    async def create(
        self,
        worker: Worker,
        *,
        text: str,
        photo_file_id: str | None,
        audience: str,
        settlement_ids: Sequence[int],
        send_at: datetime | None,
    ) -> Announcement:
        """Store the announcement and queue it to every recipient (due now or at `send_at`)."""
        if audience not in AUDIENCES:
            raise AnnouncementError("not_allowed")
        chosen = await self.allowed(worker, settlement_ids)
        photo = clean_file_id(photo_file_id, FILE_ID_MAX) if photo_file_id else None
        text = self.check_text(text, with_photo=photo is not None)
        now = self.clock.now()
        if send_at is not None and send_at <= now:
            raise AnnouncementError("past_time")
        due = send_at or now
        team = await self._team_for(worker, chosen)
        recipients = await self.count(worker, audience, chosen)
        announcement = Announcement(
            team_id=team.id if team else None,
            author_worker_id=worker.id,
            text=text,
            photo_file_id=photo,
            audience=audience,
            spec={"settlements": chosen},
            recipients=recipients,
            send_at=due,
            created_at=now,
        )
        self.session.add(announcement)
        await self.session.flush()
        payload: dict[str, Any] = {
            "announcement_id": announcement.id,
            "team_uk": team.name_uk if team else "",
            "team_en": team.name_en if team else "",
            "text": text,
            VERSION_KEY: PAYLOAD_VERSION,
        }
        if photo:
            payload["file"] = {"type": "photo", "file_id": photo}
        # One INSERT … SELECT: ten thousand recipients never travel through Python.
        columns = {
            "kind": literal(ANNOUNCEMENT),
            "user_id": User.id,
            "chat_id": User.telegram_id,
            "due_at": literal(due, UtcDateTime()),
            "urgent": literal(False),
            "payload": literal(payload, JSON()),
            "state": literal(PENDING),
            "attempts": literal(0),
            "announcement_id": literal(announcement.id),
            "dedupe_key": literal(f"ann:{announcement.id}:") + cast(User.id, String),
            "created_at": literal(now, UtcDateTime()),
        }
        source = self._recipients_query(audience, chosen, *columns.values())
        outbox = cast_type(Table, OutboxMessage.__table__)
        result = await self.session.execute(insert(outbox).from_select(list(columns), source))
        queued = int(getattr(result, "rowcount", 0) or 0)
        announcement.recipients = queued
        if queued:
            self.session.info[OUTBOX_DIRTY] = True
        self.session.add(
            AuditEntry(
                at=now,
                actor_user_id=worker.user_id,
                action="announcement_queued",
                object_type="announcement",
                object_id=str(announcement.id),
                data={
                    "audience": audience,
                    "settlements": chosen,
                    "recipients": queued,
                    "send_at": due.isoformat(),
                    "photo": photo is not None,
                    "team_id": announcement.team_id,
                },
            )
        )
        await self.session.flush()
        return announcement

    # -- the delivery report -------------------------------------------------------------------
    async def get(self, worker: Worker, announcement_id: int) -> Announcement:
        """The announcement, if this worker wrote it or coordinates its team (an admin: any)."""
        announcement = await self.session.get(Announcement, announcement_id)
        if announcement is None or not worker.active:
            raise AnnouncementError("not_found")
        if worker.is_admin or announcement.author_worker_id == worker.id:
            return announcement
        coordinates = await self.session.scalar(
            select(TeamMember.id).where(
                TeamMember.worker_id == worker.id,
                TeamMember.team_id == announcement.team_id,
                TeamMember.role == ROLE_COORDINATOR,
            )
        )
        if coordinates is None:
            raise AnnouncementError("not_found")
        return announcement

    async def report(self, worker: Worker, announcement_id: int) -> tuple[Announcement, DeliveryReport]:
        announcement = await self.get(worker, announcement_id)
        rows = await self.session.execute(
            select(OutboxMessage.state, User.reachable, func.count(OutboxMessage.id))
            .outerjoin(User, User.id == OutboxMessage.user_id)
            .where(OutboxMessage.announcement_id == announcement.id)
            .group_by(OutboxMessage.state, User.reachable)
        )
        counts = {"sent": 0, "pending": 0, "unreachable": 0, "failed": 0, "cancelled": 0}
        for state, reachable, n in rows.all():
            if state == SENT:
                counts["sent"] += n
            elif state in (PENDING, SENDING):
                counts["pending"] += n
            elif state == FAILED and reachable is False:
                # The deliverer marks the user unreachable on a 403 (blocked the bot).
                counts["unreachable"] += n
            elif state == FAILED:
                counts["failed"] += n
            elif state == CANCELLED:
                counts["cancelled"] += n
        return announcement, DeliveryReport(total=sum(counts.values()), **counts)

    async def to_withdraw(self, worker: Worker, announcement_id: int) -> tuple[Announcement, int]:
        """The announcement and how many of its messages still wait, before it is stopped;
        refused when nothing is left to stop."""
        announcement, counts = await self.report(worker, announcement_id)
        if not withdrawable(announcement, counts):
            raise AnnouncementError("nothing_to_withdraw")
        return announcement, counts.pending

    async def withdraw(self, worker: Worker, announcement_id: int) -> int:
        """Stop an announcement (a mistake, a changed plan): every message not yet sent is
        cancelled, in one statement however many there are; one being sent right now still goes.
        Returns how many were cancelled; refused when nothing is left to stop."""
        announcement = await self.get(worker, announcement_id)
        if announcement.state == WITHDRAWN:
            raise AnnouncementError("nothing_to_withdraw")
        result = await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.announcement_id == announcement.id, OutboxMessage.state == PENDING)
            .values(state=CANCELLED, last_error="withdrawn by its coordinator")
            .execution_options(synchronize_session=False)
        )
        cancelled = int(getattr(result, "rowcount", 0) or 0)
        if not cancelled:
            raise AnnouncementError("nothing_to_withdraw")
        announcement.state = WITHDRAWN
        self.session.add(
            AuditEntry(
                at=self.clock.now(),
                actor_user_id=worker.user_id,
                action="announcement_withdrawn",
                object_type="announcement",
                object_id=str(announcement.id),
                data={"cancelled": cancelled},
            )
        )
        return cancelled

    async def recent(self, worker: Worker, limit: int = 5) -> list[Announcement]:
        """The worker's latest announcements (for the report buttons)."""
        rows = await self.session.scalars(
            select(Announcement)
            .where(Announcement.author_worker_id == worker.id)
            .order_by(Announcement.created_at.desc(), Announcement.id.desc())
            .limit(limit)
        )
        return list(rows.all())
