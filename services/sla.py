"""Service levels of a case: due times on the team's working calendar, pause and resume, the
state (on time / due soon / breached / met / missed) and the escalation steps.

Two clocks run on a case, one after the other: the first response (a worker takes the request,
is given it, or writes to the resident) and the resolution. Both count working time only and
stop while the case waits for the resident (documents requested, a visit planned by agreement);
on resuming, each clock gets back the working time it had left, so a pause never shortens one.

Every change writes `sla_next_check_at`: the earliest moment something could change (the
due-soon threshold, the due time, the next escalation step). The sweep (services/sla_sweep.py)
reads only cases whose moment has come, so an idle sweep touches nothing. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, SlaPolicy
from models.cases import CLOSED_STATUSES, VISIT_PLANNED, WAITING_DOCUMENTS
from services.calendar import WorkingCalendar, load_calendar
from services.clock import Clock

ON_TIME = "on_time"
DUE_SOON = "due_soon"
BREACHED = "breached"
MET = "met"
MISSED = "missed"
SLA_STATES = (ON_TIME, DUE_SOON, BREACHED, MET, MISSED)

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
# Statuses in which the case waits for the resident: the clocks stand still.
PAUSING_STATUSES = frozenset({WAITING_DOCUMENTS, VISIT_PLANNED})
# "Due soon" this much working time before the due time.
DUE_SOON_BEFORE = {FIRST_RESPONSE: timedelta(hours=1), RESOLUTION: timedelta(hours=8)}
# A breach this long (working time) goes one step up the chain.
LONG_BREACH = timedelta(hours=8)

# Escalation steps on the running clock, each taken once.
STEP_DUE_SOON = 1  # reminder to the assignee
STEP_BREACHED = 2  # the team's coordinators are told
STEP_PARTNER = 3  # delegated service: the coordinators of the hromada that delegated it
STEP_OBLAST = 4  # the oblast fallback team's coordinators


class SlaCase(Protocol):
    """What the wording and state need of a case (a `Case` or a queue row), read only."""

    @property
    def status(self) -> str: ...
    @property
    def first_response_due_at(self) -> datetime | None: ...
    @property
    def resolution_due_at(self) -> datetime | None: ...
    @property
    def first_responded_at(self) -> datetime | None: ...
    @property
    def sla_paused_at(self) -> datetime | None: ...
    @property
    def closed_at(self) -> datetime | None: ...


def running_clock(case: SlaCase) -> tuple[str, datetime] | None:
    """The clock that runs now and its due time; None when the case has no SLA."""
    if case.first_responded_at is None and case.first_response_due_at is not None:
        return FIRST_RESPONSE, case.first_response_due_at
    if case.resolution_due_at is not None:
        return RESOLUTION, case.resolution_due_at
    return None


def closing_state(case: SlaCase, closed_at: datetime) -> str:
    """Met when the first response and the resolution were both in time."""
    late_response = (
        case.first_response_due_at is not None
        and (case.first_responded_at or closed_at) > case.first_response_due_at
    )
    late_resolution = case.resolution_due_at is not None and closed_at > case.resolution_due_at
    return MISSED if late_response or late_resolution else MET


def escalation_plan(
    calendar: WorkingCalendar, clock: str, due: datetime, delegated: bool
) -> list[tuple[int, datetime]]:
    """(step, moment) of every step of a clock, in order."""
    plan = [
        (STEP_DUE_SOON, calendar.subtract_working(due, DUE_SOON_BEFORE[clock])),
        (STEP_BREACHED, due),
    ]
    if delegated:
        plan.append((STEP_PARTNER, calendar.add_working(due, LONG_BREACH)))
        plan.append((STEP_OBLAST, calendar.add_working(due, 2 * LONG_BREACH)))
    else:
        plan.append((STEP_OBLAST, calendar.add_working(due, LONG_BREACH)))
    return plan


def live_state(case: SlaCase, calendar: WorkingCalendar, now: datetime) -> str | None:
    """The state at `now` (the stored one may lag up to a sweep's interval)."""
    if case.status in CLOSED_STATUSES:
        return closing_state(case, case.closed_at or now) if running_clock_any(case) else None
    running = running_clock(case)
    if running is None:
        return None
    clock, due = running
    at = case.sla_paused_at or now
    if at > due:
        return BREACHED
    if at >= calendar.subtract_working(due, DUE_SOON_BEFORE[clock]):
        return DUE_SOON
    return ON_TIME


def running_clock_any(case: SlaCase) -> bool:
    return case.first_response_due_at is not None or case.resolution_due_at is not None


@dataclass(frozen=True)
class Step:
    """An escalation step that is due now."""

    clock: str
    step: int


class SlaService:
    def __init__(self, session: AsyncSession, clock: Clock, zone: tzinfo) -> None:
        self.session = session
        self.clock = clock
        self.zone = zone
        self._calendars: dict[int, WorkingCalendar] = {}

    def preload(self, calendars: Mapping[int | None, WorkingCalendar], team_ids: set[int]) -> None:
        """Calendars of these teams from `team_calendars` (one read for a whole sweep): a team
        without its own week counts on the default one."""
        for team_id in team_ids:
            self._calendars[team_id] = calendars.get(team_id, calendars[None])

    async def calendar(self, team_id: int) -> WorkingCalendar:
        if team_id not in self._calendars:
            self._calendars[team_id] = await load_calendar(self.session, team_id, self.zone)
        return self._calendars[team_id]

    async def policy(self, service_id: int, priority: int) -> SlaPolicy | None:
        policy: SlaPolicy | None = await self.session.scalar(
            select(SlaPolicy)
            .where(SlaPolicy.service_id == service_id, SlaPolicy.min_priority <= priority)
            .order_by(SlaPolicy.min_priority.desc())
            .limit(1)
        )
        return policy

    # -- hooks from filing and case actions ------------------------------------------------------
    async def start(self, case: Case) -> None:
        """A new case: due times from its filing moment, by its service's policy."""
        policy = await self.policy(case.service_id, case.priority)
        if policy is None:
            return
        calendar = await self.calendar(case.team_id)
        start = case.created_at
        case.first_response_due_at = calendar.add_working(
            start, timedelta(minutes=policy.first_response_minutes)
        )
        case.resolution_due_at = calendar.add_working(start, timedelta(minutes=policy.resolution_minutes))
        case.sla_escalation_step = 0
        await self.refresh(case)

    async def responded(self, case: Case) -> None:
        """A worker took, was given or wrote on the case: the first response, once. Kept for
        every case, with or without a policy: reports read their response times from it."""
        if case.first_responded_at is not None:
            return
        case.first_responded_at = self.clock.now()
        if case.first_response_due_at is None:
            return
        case.sla_escalation_step = 0  # the resolution clock's steps start afresh
        await self.refresh(case)

    async def status_changed(self, case: Case, from_status: str, to_status: str) -> None:
        if not running_clock_any(case):
            return
        now = self.clock.now()
        if to_status in CLOSED_STATUSES:
            if case.sla_paused_at is not None:
                await self._resume(case, now)
            case.sla_state = closing_state(case, now)
            case.sla_breached = False
            case.sla_next_check_at = None
            return
        if to_status in PAUSING_STATUSES and case.sla_paused_at is None:
            case.sla_paused_at = now
            case.sla_next_check_at = None
        elif to_status not in PAUSING_STATUSES and case.sla_paused_at is not None:
            await self._resume(case, now)
            await self.refresh(case)

    async def _resume(self, case: Case, now: datetime) -> None:
        """Give each running clock back the working time it had left when paused."""
        paused_at = case.sla_paused_at
        if paused_at is None:
            return
        calendar = await self.calendar(case.team_id)
        case.sla_paused_seconds = (case.sla_paused_seconds or 0) + int(
            calendar.working_between(paused_at, now).total_seconds()
        )
        if case.first_responded_at is None and case.first_response_due_at is not None:
            case.first_response_due_at = _extended(calendar, case.first_response_due_at, paused_at, now)
        if case.resolution_due_at is not None:
            case.resolution_due_at = _extended(calendar, case.resolution_due_at, paused_at, now)
        case.sla_paused_at = None

    # -- state -----------------------------------------------------------------------------------
    async def refresh(self, case: Case) -> list[Step]:
        """Bring state, breach flag and next check up to now; the steps now due (not yet taken)
        are returned and marked taken — the caller performs them (the sweep)."""
        running = running_clock(case)
        if running is None or case.status in CLOSED_STATUSES or case.sla_paused_at is not None:
            case.sla_next_check_at = None
            return []
        clock, due = running
        now = self.clock.now()
        calendar = await self.calendar(case.team_id)
        plan = escalation_plan(calendar, clock, due, case.routing_kind == "delegation")
        reached = [step for step, moment in plan if moment <= now and step > case.sla_escalation_step]
        # After a long outage several steps are due at once: a stale "due soon" is not sent.
        due_steps = [Step(clock, step) for step in reached if step != STEP_DUE_SOON or len(reached) == 1]
        if reached:
            case.sla_escalation_step = max(reached)
        upcoming = [moment for step, moment in plan if step > case.sla_escalation_step]
        case.sla_next_check_at = min(upcoming) if upcoming else None
        case.sla_state = live_state(case, calendar, now)
        case.sla_breached = case.sla_state == BREACHED
        return due_steps


def _extended(calendar: WorkingCalendar, due: datetime, paused_at: datetime, now: datetime) -> datetime:
    """A due time after a pause: what was left at the pause, counted from now. One already
    passed at the pause stays (the breach happened)."""
    if due <= paused_at:
        return due
    left = calendar.working_between(paused_at, due)
    return max(due, calendar.add_working(now, left))


@dataclass(frozen=True)
class SlaView:
    """What a card or a queue line says about a case's SLA, in plain values: the state
    (`paused` besides the stored ones), the running clock and its local due time, and how long
    it is overdue in working days, or working hours when less than a day."""

    state: str
    clock: str | None = None
    due_local: datetime | None = None
    # 0 = today, 1 = tomorrow (local), None = later or earlier: shown as a date.
    due_in_days: int | None = None
    overdue_days: int = 0
    overdue_hours: int = 0


PAUSED = "paused"


def sla_view(case: SlaCase, calendar: WorkingCalendar, now: datetime) -> SlaView | None:
    if not running_clock_any(case):
        return None
    if case.status in CLOSED_STATUSES:
        return SlaView(closing_state(case, case.closed_at or now))
    running = running_clock(case)
    if running is None:
        return None
    clock, due = running
    due_local = due.astimezone(calendar.zone)
    if case.sla_paused_at is not None:
        return SlaView(PAUSED, clock, due_local)
    state = live_state(case, calendar, now) or ON_TIME
    if state == BREACHED:
        days = calendar.working_days_between(due, now)
        hours = -(-int(calendar.working_between(due, now).total_seconds()) // 3600)
        return SlaView(state, clock, due_local, None, days, max(1, hours) if not days else 0)
    days_ahead = (due_local.date() - now.astimezone(calendar.zone).date()).days
    return SlaView(state, clock, due_local, days_ahead if days_ahead in (0, 1) else None)


async def sla_views(
    session: AsyncSession, cases: list[tuple[int, int, SlaCase]], clock: Clock, zone: tzinfo
) -> dict[int, SlaView]:
    """Views for (case id, team id, case-like) triples; one calendar load per team."""
    service = SlaService(session, clock, zone)
    now = clock.now()
    views: dict[int, SlaView] = {}
    for case_id, team_id, case in cases:
        if not running_clock_any(case):
            continue
        view = sla_view(case, await service.calendar(team_id), now)
        if view is not None:
            views[case_id] = view
    return views
