"""Home visits: a worker plans one from the case card, the resident answers, reminders follow.

No aiogram. Notices are queued with plain values (local ISO times, raw texts); their texts and
buttons come from the notice renderer. Reminder timing: services/reminders.py.

Visit status: planned → confirmed | reschedule_requested → (worker reschedules) planned …;
any open state → cancelled (by either side) or done. Every change is a CaseEvent; the other
side hears about it through the outbox.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseEvent, OutboxMessage, Resident, Settlement, User, Visit, Worker
from models.cases import CLOSED_STATUSES, VISIT_PLANNED
from services.clock import Clock
from services.errors import DomainError
from services.outbox import cancel_pending, enqueue
from services.reminders import ReminderRules, fmt_date, fmt_time
from services.text import clean

PLANNED = "planned"
CONFIRMED = "confirmed"
RESCHEDULE_REQUESTED = "reschedule_requested"
CANCELLED = "cancelled"
DONE = "done"
OPEN_VISIT = (PLANNED, CONFIRMED, RESCHEDULE_REQUESTED)

WHO_MAX = 200
PREPARE_MAX = 1000
NOTE_MAX = 300
MAX_DURATION = timedelta(hours=8)
MAX_AHEAD = timedelta(days=366)
AGENDA_UNTIL = time(12, 0)  # after noon a missed morning agenda is no longer useful


class VisitError(DomainError):
    """A refused visit action (`visit.error.<code>`)."""

    prefix = "visit.error"


@dataclass(frozen=True)
class VisitView:
    """A visit with what the screens need, in local time."""

    visit: Visit
    case_number: str
    settlement: str
    date: str
    time_from: str
    time_to: str


class VisitService:
    def __init__(self, session: AsyncSession, clock: Clock, rules: ReminderRules | None = None) -> None:
        self.session = session
        self.clock = clock
        self.rules = rules or ReminderRules()

    # -- access ---------------------------------------------------------------------------------
    async def case_for_worker(self, worker: Worker, case_id: int) -> Case:
        """The case if this worker may act on it (member or coordinator), else VisitError."""
        from services.case_actions import CaseActions, CaseError

        try:
            case, access = await CaseActions(self.session, self.clock).worker_case_access(worker, case_id)
        except CaseError:
            raise VisitError("not_found") from None
        if not access.can_act:
            raise VisitError("not_found")
        return case

    async def visit_for_worker(self, worker: Worker, visit_id: int) -> tuple[Visit, Case]:
        visit = await self.session.get(Visit, visit_id)
        if visit is None:
            raise VisitError("not_found")
        return visit, await self.case_for_worker(worker, visit.case_id)

    async def calendar_case(
        self, worker: Worker, case_id: int, visit_id: int = 0
    ) -> tuple[Visit | None, Case]:
        """The case a calendar press is about, and the visit being moved (visit_id > 0): the
        worker may act on the case, and the visit is of that case; else VisitError."""
        if not visit_id:
            return None, await self.case_for_worker(worker, case_id)
        visit, case = await self.visit_for_worker(worker, visit_id)
        if visit.case_id != case_id:
            raise VisitError("not_found")
        return visit, case

    async def movable_visit(self, worker: Worker, visit_id: int) -> tuple[Visit, Case]:
        """A visit this worker may move: not cancelled, not done."""
        visit, case = await self.visit_for_worker(worker, visit_id)
        if visit.status in ("cancelled", "done"):
            raise VisitError("not_open")
        return visit, case

    async def visit_for_resident(self, user: User, visit_id: int) -> tuple[Visit, Case]:
        """The visit if `user` is the resident of its case; else VisitError (same for missing)."""
        row = (
            await self.session.execute(
                select(Visit, Case)
                .join(Case, Case.id == Visit.case_id)
                .join(Resident, Resident.id == Case.resident_id)
                .where(Visit.id == visit_id, Resident.user_id == user.id)
            )
        ).first()
        if row is None:
            raise VisitError("not_found")
        return row[0], row[1]

    # -- worker side ----------------------------------------------------------------------------
    async def schedule(
        self,
        case: Case,
        worker: Worker,
        starts_at: datetime,
        ends_at: datetime,
        who_comes: str,
        prepare: str,
    ) -> Visit:
        """Plan a visit: tell the resident at once, plan reminders, audit, case → visit_planned."""
        if case.status in CLOSED_STATUSES:
            raise VisitError("case_closed")
        self._check_times(starts_at, ends_at)
        who_comes = _clean(who_comes, WHO_MAX, "who_too_long")
        prepare = _clean(prepare, PREPARE_MAX, "prepare_too_long")
        visit = Visit(
            case_id=case.id,
            worker_id=worker.id,
            settlement_id=case.settlement_id,
            starts_at=starts_at,
            ends_at=ends_at,
            who_comes=who_comes,
            prepare=prepare,
            status=PLANNED,
            created_at=self.clock.now(),
        )
        self.session.add(visit)
        await self.session.flush()
        await self._tell_resident(visit, case, "visit_new")
        await self._plan_reminders(visit, case)
        self._event(case, worker.user_id, "visit_planned", visit)
        await self._case_to_visit_planned(case, worker)
        await self.session.flush()
        return visit

    async def reschedule(
        self,
        visit: Visit,
        case: Case,
        worker: Worker,
        starts_at: datetime,
        ends_at: datetime,
    ) -> Visit:
        """New time for an open visit: old reminders cancelled, resident asked again."""
        if visit.status not in OPEN_VISIT:
            raise VisitError("not_open")
        if case.status in CLOSED_STATUSES:
            raise VisitError("case_closed")
        self._check_times(starts_at, ends_at)
        await cancel_pending(self.session, OutboxMessage.visit_id == visit.id)
        visit.starts_at = starts_at
        visit.ends_at = ends_at
        visit.status = PLANNED
        visit.proposed_starts_at = None
        await self.session.flush()
        await self._tell_resident(visit, case, "visit_changed")
        await self._plan_reminders(visit, case)
        self._event(case, worker.user_id, "visit_rescheduled", visit)
        await self.session.flush()
        return visit

    async def cancel_by_worker(self, visit: Visit, case: Case, worker: Worker) -> Visit:
        if visit.status not in OPEN_VISIT:
            raise VisitError("not_open")
        visit.status = CANCELLED
        await cancel_pending(self.session, OutboxMessage.visit_id == visit.id)
        await self._tell_resident(visit, case, "visit_cancelled_by_worker")
        self._event(case, worker.user_id, "visit_cancelled", visit, by="worker")
        await self.session.flush()
        return visit

    async def mark_done(self, visit: Visit, case: Case, worker: Worker) -> Visit:
        if visit.status not in OPEN_VISIT:
            raise VisitError("not_open")
        visit.status = DONE
        await cancel_pending(self.session, OutboxMessage.visit_id == visit.id)
        self._event(case, worker.user_id, "visit_done", visit)
        await self.session.flush()
        return visit

    # -- resident side --------------------------------------------------------------------------
    async def confirm(self, user: User, visit_id: int) -> Visit:
        visit, case = await self.visit_for_resident(user, visit_id)
        if visit.status == CONFIRMED:
            return visit  # a double tap
        if visit.status not in OPEN_VISIT:
            raise VisitError("not_open")
        visit.status = CONFIRMED
        self._event(case, user.id, "visit_confirmed", visit)
        await self._tell_worker(visit, case, "visit_answer_confirmed")
        await self.session.flush()
        return visit

    async def request_reschedule(self, user: User, visit_id: int, text: str) -> Visit:
        """The resident asks for another time; `text` may hold a date and time (dd.mm HH:MM)."""
        visit, case = await self.visit_for_resident(user, visit_id)
        if visit.status not in OPEN_VISIT:
            raise VisitError("not_open")
        note = _clean(text, NOTE_MAX, "note_too_long")
        if not note:
            raise VisitError("note_empty")
        proposed = parse_proposed_time(note, self.clock.now(), self.rules)
        visit.status = RESCHEDULE_REQUESTED
        visit.resident_note = note
        visit.proposed_starts_at = proposed
        self._event(case, user.id, "visit_reschedule_asked", visit, note=True)
        await self._tell_worker(
            visit,
            case,
            "visit_answer_reschedule",
            note=note,
            proposed=self.rules.local(proposed).isoformat() if proposed else None,
        )
        await self.session.flush()
        return visit

    async def cancel_by_resident(self, user: User, visit_id: int) -> Visit:
        visit, case = await self.visit_for_resident(user, visit_id)
        if visit.status == CANCELLED:
            return visit
        if visit.status not in OPEN_VISIT:
            raise VisitError("not_open")
        visit.status = CANCELLED
        await cancel_pending(self.session, OutboxMessage.visit_id == visit.id)
        self._event(case, user.id, "visit_cancelled", visit, by="resident")
        await self._tell_worker(visit, case, "visit_answer_cancelled")
        await self.session.flush()
        return visit

    # -- reading --------------------------------------------------------------------------------
    async def upcoming_for_resident(self, user: User) -> list[Visit]:
        return list(
            (
                await self.session.scalars(
                    select(Visit)
                    .join(Case, Case.id == Visit.case_id)
                    .join(Resident, Resident.id == Case.resident_id)
                    .where(
                        Resident.user_id == user.id,
                        Visit.status.in_(OPEN_VISIT),
                        Visit.ends_at >= self.clock.now(),
                    )
                    .order_by(Visit.starts_at)
                )
            ).all()
        )

    async def agenda(self, worker: Worker, day: date, language: str = "uk") -> list[VisitView]:
        """The worker's open visits on `day` (local), ordered by settlement, then time."""
        return (await agenda_by_worker(self.session, day, self.rules, language, worker_id=worker.id)).get(
            worker.id, []
        )

    def view(self, visit: Visit, case_number: str, settlement: str) -> VisitView:
        return VisitView(
            visit,
            case_number,
            settlement,
            fmt_date(visit.starts_at, self.rules),
            fmt_time(visit.starts_at, self.rules),
            fmt_time(visit.ends_at, self.rules),
        )

    # -- internals ------------------------------------------------------------------------------
    def _check_times(self, starts_at: datetime, ends_at: datetime) -> None:
        now = self.clock.now()
        if starts_at <= now:
            raise VisitError("in_past")
        if starts_at - now > MAX_AHEAD:
            raise VisitError("too_far")
        if not starts_at < ends_at <= starts_at + MAX_DURATION:
            raise VisitError("bad_window")

    async def _resident_user(self, case: Case) -> User | None:
        row = (
            await self.session.execute(
                select(User, Resident.erased_at)
                .join(Resident, Resident.user_id == User.id)
                .where(Resident.id == case.resident_id)
            )
        ).first()
        if row is None or row[1] is not None:
            return None
        user: User = row[0]
        return user

    def _payload(self, visit: Visit, case: Case) -> dict[str, object]:
        """The visit's number and local start and end (ISO, with the offset)."""
        return {
            "visit_id": visit.id,
            "number": case.number,
            "starts_at": self.rules.local(visit.starts_at).isoformat(),
            "ends_at": self.rules.local(visit.ends_at).isoformat(),
        }

    def _resident_payload(self, visit: Visit, case: Case) -> dict[str, object]:
        return {**self._payload(visit, case), "who": visit.who_comes, "prepare": visit.prepare}

    async def _tell_resident(self, visit: Visit, case: Case, kind: str) -> None:
        user = await self._resident_user(case)
        if user is None:
            return
        payload = self._resident_payload(visit, case)
        await enqueue(
            self.session,
            user=user,
            kind=kind,
            payload=payload,
            due_at=self.clock.now(),
            case_id=case.id,
            visit_id=visit.id,
        )

    async def _tell_worker(
        self,
        visit: Visit,
        case: Case,
        kind: str,
        *,
        note: str | None = None,
        proposed: str | None = None,
    ) -> None:
        if visit.worker_id is None:
            return
        worker = await self.session.get(Worker, visit.worker_id)
        if worker is None or not worker.active:
            return
        user = await self.session.get(User, worker.user_id)
        if user is None:
            return
        payload = {**self._payload(visit, case), "note": note, "proposed": proposed}
        await enqueue(
            self.session, user=user, kind=kind, payload=payload, due_at=self.clock.now(), case_id=case.id
        )

    async def _plan_reminders(self, visit: Visit, case: Case) -> None:
        user = await self._resident_user(case)
        if user is None:
            return
        now = self.clock.now()
        stamp = f"{visit.starts_at:%Y%m%d%H%M}"
        payload = self._resident_payload(visit, case)
        day_before = self.rules.visit_day_before(visit.starts_at)
        # Only if it still comes before the visit and is not almost the same as the soon one.
        if now < day_before < visit.starts_at - timedelta(hours=6):
            await enqueue(
                self.session,
                user=user,
                kind="visit_day_before",
                payload=payload,
                due_at=day_before,
                dedupe_key=f"visit:{visit.id}:{stamp}:day_before",
                case_id=case.id,
                visit_id=visit.id,
            )
        soon, urgent = self.rules.visit_soon(visit.starts_at)
        if soon > now:
            await enqueue(
                self.session,
                user=user,
                kind="visit_soon",
                payload=payload,
                due_at=soon,
                urgent=urgent,
                dedupe_key=f"visit:{visit.id}:{stamp}:soon",
                case_id=case.id,
                visit_id=visit.id,
            )

    def _event(self, case: Case, actor_user_id: int | None, kind: str, visit: Visit, **extra: object) -> None:
        data: dict[str, object] = {"visit_id": visit.id, "starts_at": visit.starts_at.isoformat()}
        data.update(extra)
        self.session.add(
            CaseEvent(case_id=case.id, at=self.clock.now(), actor_user_id=actor_user_id, kind=kind, data=data)
        )

    async def _case_to_visit_planned(self, case: Case, worker: Worker) -> None:
        if case.status == VISIT_PLANNED:
            return
        from services.case_actions import CaseActions, CaseError

        try:
            async with self.session.begin_nested():
                await CaseActions(self.session, self.clock).change_status(
                    case.id,
                    worker,
                    VISIT_PLANNED,
                    notify=False,  # the invitation tells the resident
                )
        except CaseError:
            pass  # not allowed from this status: the visit still stands, the status stays


def _clean(text: str | None, limit: int, code: str) -> str:
    return clean(text, limit, multiline=True, error=VisitError, code=code)


_PROPOSED = re.compile(r"(\d{1,2})[./](\d{1,2})(?:[./](\d{2,4}))?\D{1,8}?(\d{1,2})[:.](\d{2})")


def parse_proposed_time(text: str, now: datetime, rules: ReminderRules) -> datetime | None:
    """A date and time like "25.11 14:00" or "25.11.2026 о 9:30" in the resident's note, if it
    names a real future moment within a year; otherwise None."""
    match = _PROPOSED.search(text)
    if not match:
        return None
    day, month, year, hour, minute = match.groups()
    local_now = rules.local(now)
    try:
        y = int(year) + (2000 if year and len(year) == 2 else 0) if year else local_now.year
        candidate = datetime(y, int(month), int(day), int(hour), int(minute), tzinfo=rules.tz)
        if not year and candidate < local_now:
            candidate = candidate.replace(year=y + 1)
    except ValueError:
        return None
    at = rules.at_local(candidate.date(), candidate.time())
    if at <= now or at - now > MAX_AHEAD:
        return None
    return at


async def agenda_by_worker(
    session: AsyncSession,
    day: date,
    rules: ReminderRules,
    language: str = "uk",
    *,
    worker_id: int | None = None,
) -> dict[int, list[VisitView]]:
    """Open visits on a local day, per worker, ordered by settlement then start."""
    start = rules.at_local(day, time(0, 0))
    end = rules.at_local(day + timedelta(days=1), time(0, 0))
    query = (
        select(Visit, Case.number, Settlement)
        .join(Case, Case.id == Visit.case_id)
        .outerjoin(Settlement, Settlement.id == Visit.settlement_id)
        .where(
            Visit.starts_at >= start,
            Visit.starts_at < end,
            Visit.status.in_(OPEN_VISIT),
            Visit.worker_id.is_not(None),
        )
    )
    if worker_id is not None:
        query = query.where(Visit.worker_id == worker_id)
    result: dict[int, list[VisitView]] = defaultdict(list)
    service = VisitService(session, Clock(), rules)
    for visit, number, settlement in (await session.execute(query)).all():
        name = settlement.name(language) if settlement else ""
        result[visit.worker_id].append(service.view(visit, number, name))
    for views in result.values():
        views.sort(key=lambda v: (v.settlement.casefold(), v.visit.starts_at))
    return dict(result)


async def plan_due_agendas(session: AsyncSession, now: datetime, rules: ReminderRules | None = None) -> int:
    """Scheduler job: once the agenda hour has come (07:30, not before quiet hours end), queue
    each worker's list of today's visits — once per worker and day (dedupe key)."""
    rules = rules or ReminderRules()
    today = rules.local(now).date()
    if not rules.agenda_time(today) <= now < rules.at_local(today, AGENDA_UNTIL):
        return 0
    per_worker = await agenda_by_worker(session, today, rules)
    added = 0
    for worker_id in sorted(per_worker):
        worker = await session.get(Worker, worker_id)
        if worker is None or not worker.active:
            continue
        user = await session.get(User, worker.user_id)
        if user is None:
            continue
        language = user.language or "uk"
        views = (await agenda_by_worker(session, today, rules, language, worker_id=worker_id))[worker_id]
        items = [
            {
                "time_from": v.time_from,
                "time_to": v.time_to,
                "settlement": v.settlement,
                "number": v.case_number,
            }
            for v in views
        ]
        row = await enqueue(
            session,
            user=user,
            kind="visit_agenda",
            payload={"date": today.isoformat(), "items": items},
            due_at=now,
            dedupe_key=f"agenda:{worker_id}:{today:%Y%m%d}",
        )
        added += row is not None
    return added
