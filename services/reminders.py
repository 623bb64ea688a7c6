"""Planning rules for reminders: local hours, quiet hours, and whether a reminder's reason is gone.

No aiogram here. Times in the database are UTC; the rules think in the hromada's local time
(Europe/Kyiv by default). The delivery engine (bot/delivery.py) asks `reason_gone` for every
row just before sending, so a reminder whose visit was cancelled, whose documents arrived, or
whose case closed is cancelled instead of sent — however it was planned.

Rules in one place:
- Quiet hours (default 21:00–08:00 local): a non-urgent message due then waits until the end of
  the quiet period. Planned reminders are placed outside them in the first place.
- Visit, day before: 18:00 local on the day before the visit.
- Visit, soon: two hours before the start. If that falls in quiet hours it moves to the end of
  the quiet period when that is still at least 30 minutes before the visit; otherwise (the visit
  itself is at dawn, e.g. 08:15) it is sent at start-2h as *urgent*: the resident agreed to a
  visit at that hour, so a heads-up then is expected. It is never sent after the visit started.
- Worker agenda: 07:30 local, but never before the end of quiet hours (so 08:00 by default).
- Documents: 3 days and 1 day before the deadline at 10:00 local, then 1 and 7 days after it if
  still missing; without a deadline, 3, 7 and 14 days after the request at 10:00. They stop when
  the request is received/cancelled or the case closes (checked again at send time).
- Re-verification (services with renewal_days): the renewal falls due `renewal_days` after the
  case was resolved; reminders 30 and 7 days before at 10:00 local.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, DocumentRequest, OutboxMessage, Service, Visit
from models.cases import CLOSED_STATUSES, RESOLVED
from services.outbox import enqueue
from services.surveys import INVITATION_KIND as SURVEY_INVITATION_KIND
from services.surveys import invitation_gone

DEFAULT_TZ = "Europe/Kyiv"
DAY_BEFORE_AT = time(18, 0)
AGENDA_AT = time(7, 30)
DOCS_AT = time(10, 0)
DOCS_BEFORE_DAYS = (3, 1)
DOCS_OVERDUE_DAYS = (1, 7)
DOCS_NO_DEADLINE_AFTER_DAYS = (3, 7, 14)
RENEWAL_BEFORE_DAYS = (30, 7)
SOON_BEFORE = timedelta(hours=2)
SOON_MIN_LEAD = timedelta(minutes=30)

# Kinds that are reminders: checked against their reason at send time.
VISIT_REMINDER_KINDS = frozenset({"visit_day_before", "visit_soon"})
DOCS_REMINDER_KINDS = frozenset({"docs_reminder", "docs_reminder_open", "docs_overdue"})
RENEWAL_KINDS = frozenset({"renewal_due"})
# A visit's own notices (new, changed) are also dropped if the visit is gone before they leave.
VISIT_NOTICE_KINDS = frozenset({"visit_new", "visit_changed"})
FINISHED_VISIT = ("cancelled", "done")


def default_zone() -> ZoneInfo:
    """The zone when no settings are at hand (the settings' TIMEZONE has the same default)."""
    return ZoneInfo(DEFAULT_TZ)


@dataclass(frozen=True)
class ReminderRules:
    """Local time zone and quiet hours. Build from settings with `from_settings`."""

    tz: ZoneInfo = field(default_factory=lambda: default_zone())
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)

    @classmethod
    def from_settings(cls, settings: Any) -> ReminderRules:
        return cls(
            tz=ZoneInfo(settings.locale.timezone),
            quiet_start=settings.delivery.quiet_start,
            quiet_end=settings.delivery.quiet_end,
        )

    # -- local time helpers -------------------------------------------------------------------
    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def at_local(self, day: date, hour: time) -> datetime:
        """The UTC instant of `hour` on `day` in local time."""
        return datetime.combine(day, hour, tzinfo=self.tz).astimezone(UTC)

    def in_quiet_hours(self, at: datetime) -> bool:
        t = self.local(at).time()
        if self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:  # e.g. 01:00–06:00
            return self.quiet_start <= t < self.quiet_end
        return t >= self.quiet_start or t < self.quiet_end  # across midnight, e.g. 21:00–08:00

    def quiet_over(self, at: datetime) -> datetime:
        """`at` itself when outside quiet hours, else the first instant after them."""
        if not self.in_quiet_hours(at):
            return at
        local = self.local(at)
        day = local.date()
        if local.time() >= self.quiet_end:  # evening part: the quiet period ends tomorrow
            day += timedelta(days=1)
        return self.at_local(day, self.quiet_end)

    # -- plans --------------------------------------------------------------------------------
    def visit_day_before(self, starts_at: datetime) -> datetime:
        day = self.local(starts_at).date() - timedelta(days=1)
        return self.quiet_over(self.at_local(day, DAY_BEFORE_AT))

    def visit_soon(self, starts_at: datetime) -> tuple[datetime, bool]:
        """(when, urgent) for the "in about two hours" reminder."""
        at = starts_at - SOON_BEFORE
        if not self.in_quiet_hours(at):
            return at, False
        moved = self.quiet_over(at)
        if moved <= starts_at - SOON_MIN_LEAD:
            return moved, False
        return at, True

    def agenda_time(self, day: date) -> datetime:
        return self.quiet_over(self.at_local(day, AGENDA_AT))

    def docs_reminders(self, requested_at: datetime, deadline: datetime | None) -> list[tuple[str, datetime]]:
        """(tag, when) for a document request, only those still in the future."""
        plans: list[tuple[str, datetime]] = []
        if deadline is not None:
            deadline_day = self.local(deadline).date()
            for days in DOCS_BEFORE_DAYS:
                plans.append((f"d-{days}", self.at_local(deadline_day - timedelta(days=days), DOCS_AT)))
            # Missed the deadline: keep reminding (the worker may still accept them).
            for days in DOCS_OVERDUE_DAYS:
                plans.append((f"o+{days}", self.at_local(deadline_day + timedelta(days=days), DOCS_AT)))
        else:
            start_day = self.local(requested_at).date()
            for days in DOCS_NO_DEADLINE_AFTER_DAYS:
                plans.append((f"d+{days}", self.at_local(start_day + timedelta(days=days), DOCS_AT)))
        return [(tag, self.quiet_over(at)) for tag, at in plans if at > requested_at]

    def renewal_reminders(
        self, resolved_at: datetime, renewal_days: int
    ) -> tuple[date, list[tuple[int, datetime]]]:
        """The renewal's due date and (days_before, when) reminders (past ones included)."""
        due = self.local(resolved_at).date() + timedelta(days=renewal_days)
        return due, [
            (days, self.at_local(due - timedelta(days=days), DOCS_AT))
            for days in RENEWAL_BEFORE_DAYS
            if days < renewal_days
        ]


def fmt_date(at: datetime | date, rules: ReminderRules) -> str:
    day = rules.local(at).date() if isinstance(at, datetime) else at
    return day.strftime("%d.%m.%Y")


def fmt_time(at: datetime, rules: ReminderRules) -> str:
    return rules.local(at).strftime("%H:%M")


async def reason_gone(session: AsyncSession, message: OutboxMessage) -> bool:
    """True when the message is a reminder whose reason no longer holds (send-time check).

    Visit reminders: the visit was cancelled or done, or its case closed. Document reminders:
    the request is no longer open, or the case closed. Any kind ending in `_reminder` tied to an
    application: the application reached a final status. Other messages (status pushes etc.)
    always go out.
    """
    kind = message.kind
    if message.visit_id is not None and (kind in VISIT_REMINDER_KINDS or kind in VISIT_NOTICE_KINDS):
        row = (
            await session.execute(
                select(Visit.status, Case.status)
                .join(Case, Case.id == Visit.case_id)
                .where(Visit.id == message.visit_id)
            )
        ).first()
        return row is None or row[0] in FINISHED_VISIT or row[1] in CLOSED_STATUSES
    if message.document_request_id is not None and kind in DOCS_REMINDER_KINDS:
        row = (
            await session.execute(
                select(DocumentRequest.status, Case.status)
                .join(Case, Case.id == DocumentRequest.case_id)
                .where(DocumentRequest.id == message.document_request_id)
            )
        ).first()
        return row is None or row[0] != "open" or row[1] in CLOSED_STATUSES
    if message.application_id is not None and kind.endswith("_reminder"):
        from models import Application, ApplicationStatus

        final = await session.scalar(
            select(ApplicationStatus.final)
            .join(Application, Application.status_code == ApplicationStatus.code)
            .where(Application.id == message.application_id)
        )
        return final is None or bool(final)
    if message.case_id is not None and kind in RENEWAL_KINDS:
        # A renewal reminder belongs to a resolved case; reopened or rejected → not due any more.
        status = await session.scalar(select(Case.status).where(Case.id == message.case_id))
        return status != RESOLVED
    if kind == SURVEY_INVITATION_KIND:
        return await invitation_gone(session, message)
    return False


async def plan_renewal(
    session: AsyncSession, case: Case, now: datetime, rules: ReminderRules | None = None
) -> int:
    """Plan re-verification reminders for a resolved case of a renewable service (idempotent:
    dedupe keys per case and offset). Returns how many rows were added."""
    rules = rules or ReminderRules()
    if case.status != RESOLVED or case.closed_at is None:
        return 0
    service = await session.get(Service, case.service_id)
    if service is None or not service.renewal_days:
        return 0
    from models import Resident, User

    user = await session.scalar(
        select(User).join(Resident, Resident.user_id == User.id).where(Resident.id == case.resident_id)
    )
    if user is None:
        return 0
    due, plans = rules.renewal_reminders(case.closed_at, service.renewal_days)
    lang = user.language or "uk"
    added = 0
    for days, at in plans:
        if at <= now:
            continue
        row = await enqueue(
            session,
            user=user,
            kind="renewal_due",
            payload={"number": case.number, "service": service.name(lang), "due": due.isoformat()},
            due_at=at,
            dedupe_key=f"renewal:{case.id}:{case.closed_at:%Y%m%d}:{days}",
            case_id=case.id,
        )
        added += row is not None
    return added


async def plan_due_renewals(
    session: AsyncSession, now: datetime, rules: ReminderRules | None = None, lookback_days: int = 400
) -> int:
    """Scheduler job: plan renewal reminders for every recently resolved renewable case.
    Idempotent, so it can run every hour whatever else planned them."""
    cases = (
        await session.scalars(
            select(Case)
            .join(Service, Service.id == Case.service_id)
            .where(
                Case.status == RESOLVED,
                Service.renewal_days.is_not(None),
                Case.closed_at >= now - timedelta(days=lookback_days),
            )
            .order_by(Case.id)
        )
    ).all()
    added = 0
    for case in cases:
        added += await plan_renewal(session, case, now, rules)
    return added


async def unreachable_since(session: AsyncSession, user_id: int) -> datetime | None:
    """When Telegram last told us this person blocked the bot (None: reachable). For the case
    card: "unreachable in the bot since dd.mm.yyyy" (message key `delivery.unreachable`)."""
    from models import User

    row = (
        await session.execute(select(User.reachable, User.unreachable_since).where(User.id == user_id))
    ).first()
    if row is None or row[0]:
        return None
    since: datetime | None = row[1]
    return since
