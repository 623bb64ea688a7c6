"""The mobile social office: recurring trips of specialists to remote settlements.

No aiogram. A coordinator of a hromada enters trips per settlement ("every Tuesday 10:00–13:00,
every N weeks, slots of 20 minutes, at the club"); residents see the upcoming trips of their
settlement, subscribe (reminded the day before at 18:00), and book one slot per trip (one
booking per slot, enforced by a unique constraint; a cancelled slot can be booked again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    AuditEntry,
    Hromada,
    MobileOfficeBooking,
    MobileOfficeSchedule,
    MobileOfficeSubscription,
    Resident,
    Settlement,
    User,
    Worker,
)
from services.clock import Clock
from services.errors import DomainError
from services.outbox import enqueue
from services.reminders import DAY_BEFORE_AT, ReminderRules
from services.text import clean

BOOKED = "booked"
CANCELLED = "cancelled"
HORIZON_DAYS = 28
PLACE_MAX = 200
TOPIC_MAX = 200


class MobileOfficeError(DomainError):
    """A refused mobile-office action (`mo.error.<code>`)."""

    prefix = "mo.error"


@dataclass(frozen=True)
class Trip:
    schedule: MobileOfficeSchedule
    day: date

    @property
    def key(self) -> str:
        return f"{self.day:%Y%m%d}"


def trip_days(schedule: MobileOfficeSchedule, start: date, end: date) -> list[date]:
    """The schedule's trip dates in [start, end]: its weekday, every `every_weeks` weeks counted
    from the first such weekday on or after valid_from, within the validity range."""
    first = schedule.valid_from + timedelta(days=(schedule.weekday - schedule.valid_from.weekday()) % 7)
    step = 7 * max(1, schedule.every_weeks)
    if start > first:
        skip = (start - first).days // step
        first += timedelta(days=skip * step)
        if first < start:
            first += timedelta(days=step)
    last = min(end, schedule.valid_to) if schedule.valid_to else end
    days = []
    day = first
    while day <= last:
        days.append(day)
        day += timedelta(days=step)
    return days


def slots(schedule: MobileOfficeSchedule) -> list[time]:
    result = []
    minutes = max(5, schedule.slot_minutes)
    current = datetime.combine(date(2000, 1, 1), schedule.start_time)
    end = datetime.combine(date(2000, 1, 1), schedule.end_time)
    while current + timedelta(minutes=minutes) <= end:
        result.append(current.time())
        current += timedelta(minutes=minutes)
    return result


class MobileOfficeService:
    def __init__(self, session: AsyncSession, clock: Clock, rules: ReminderRules | None = None) -> None:
        self.session = session
        self.clock = clock
        self.rules = rules or ReminderRules()

    def today(self) -> date:
        return self.rules.local(self.clock.now()).date()

    # -- coordinator ----------------------------------------------------------------------------
    async def managed_settlements(self, worker: Worker) -> list[Settlement]:
        from services.workers import RoutingAdmin

        hromada_ids = [h.id for h in await RoutingAdmin(self.session).hromadas(worker)]
        if not hromada_ids:
            return []
        return list(
            (
                await self.session.scalars(
                    select(Settlement)
                    .where(Settlement.hromada_id.in_(hromada_ids))
                    .order_by(Settlement.name_uk)
                )
            ).all()
        )

    async def add_schedule(
        self,
        worker: Worker,
        settlement_id: int,
        *,
        weekday: int,
        start_time: time,
        end_time: time,
        every_weeks: int = 1,
        slot_minutes: int = 20,
        place: str = "",
        valid_from: date | None = None,
        valid_to: date | None = None,
    ) -> MobileOfficeSchedule:
        if settlement_id not in {s.id for s in await self.managed_settlements(worker)}:
            raise MobileOfficeError("not_allowed")
        if not 0 <= weekday <= 6:
            raise MobileOfficeError("bad_weekday")
        if not start_time < end_time:
            raise MobileOfficeError("bad_hours")
        if not 1 <= every_weeks <= 8:
            raise MobileOfficeError("bad_every")
        if not 5 <= slot_minutes <= 120:
            raise MobileOfficeError("bad_slot")
        place = clean(place, PLACE_MAX, error=MobileOfficeError, code="place_too_long")
        valid_from = valid_from or self.today()
        if valid_to is not None and valid_to < valid_from:
            raise MobileOfficeError("bad_dates")
        schedule = MobileOfficeSchedule(
            settlement_id=settlement_id,
            weekday=weekday,
            every_weeks=every_weeks,
            start_time=start_time,
            end_time=end_time,
            slot_minutes=slot_minutes,
            place=place,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        self.session.add(schedule)
        await self.session.flush()
        self._audit(
            worker, "mobile_office.add", schedule.id, {"settlement_id": settlement_id, "weekday": weekday}
        )
        return schedule

    async def end_schedule(self, worker: Worker, schedule_id: int) -> MobileOfficeSchedule:
        """Stop a schedule from today on (bookings of past trips stay as history)."""
        schedule = await self.session.get(MobileOfficeSchedule, schedule_id)
        if schedule is None or schedule.settlement_id not in {
            s.id for s in await self.managed_settlements(worker)
        }:
            raise MobileOfficeError("not_allowed")
        schedule.valid_to = self.today() - timedelta(days=1)
        self._audit(worker, "mobile_office.end", schedule.id, {})
        return schedule

    async def schedules_for(self, settlement_ids: list[int]) -> list[MobileOfficeSchedule]:
        today = self.today()
        return list(
            (
                await self.session.scalars(
                    select(MobileOfficeSchedule)
                    .where(
                        MobileOfficeSchedule.settlement_id.in_(settlement_ids),
                        (MobileOfficeSchedule.valid_to.is_(None)) | (MobileOfficeSchedule.valid_to >= today),
                    )
                    .order_by(MobileOfficeSchedule.settlement_id, MobileOfficeSchedule.weekday)
                )
            ).all()
        )

    # -- residents ------------------------------------------------------------------------------
    async def home_settlement(self, user: User) -> Settlement | None:
        """The settlement of the resident's last request, when the mobile office goes there."""
        resident = await self.session.scalar(select(Resident).where(Resident.user_id == user.id))
        settlement_id = resident.last_settlement_id if resident else None
        if not settlement_id or not await self.schedules_for([settlement_id]):
            return None
        return await self.session.get(Settlement, settlement_id)

    async def settlement(self, settlement_id: int) -> Settlement:
        settlement = await self.session.get(Settlement, settlement_id)
        if settlement is None:
            raise MobileOfficeError("not_found")
        return settlement

    async def settlements_with_trips(self) -> list[tuple[Hromada, Settlement]]:
        today = self.today()
        rows = (
            await self.session.execute(
                select(Hromada, Settlement)
                .join(Settlement, Settlement.hromada_id == Hromada.id)
                .join(MobileOfficeSchedule, MobileOfficeSchedule.settlement_id == Settlement.id)
                .where((MobileOfficeSchedule.valid_to.is_(None)) | (MobileOfficeSchedule.valid_to >= today))
                .distinct()
                .order_by(Hromada.name_uk, Settlement.name_uk)
            )
        ).all()
        return [(h, s) for h, s in rows]

    async def upcoming(self, settlement_id: int, days: int = HORIZON_DAYS) -> list[Trip]:
        today = self.today()
        end = today + timedelta(days=days)
        trips = [
            Trip(schedule, day)
            for schedule in await self.schedules_for([settlement_id])
            for day in trip_days(schedule, today, end)
        ]
        return sorted(trips, key=lambda t: (t.day, t.schedule.start_time))

    async def free_slots(self, schedule_id: int, day: date) -> list[time]:
        schedule = await self._trip(schedule_id, day)
        taken = set(
            (
                await self.session.scalars(
                    select(MobileOfficeBooking.slot_start).where(
                        MobileOfficeBooking.schedule_id == schedule.id,
                        MobileOfficeBooking.trip_date == day,
                        MobileOfficeBooking.status == BOOKED,
                    )
                )
            ).all()
        )
        now_local = self.rules.local(self.clock.now())
        return [
            s
            for s in slots(schedule)
            if s not in taken and not (day == now_local.date() and s <= now_local.time())
        ]

    async def book(
        self, user: User, schedule_id: int, day: date, slot_start: time, topic: str = ""
    ) -> MobileOfficeBooking:
        schedule = await self._trip(schedule_id, day)
        if slot_start not in slots(schedule):
            raise MobileOfficeError("no_slot")
        if slot_start not in await self.free_slots(schedule_id, day):
            raise MobileOfficeError("slot_taken")
        topic = clean(topic, TOPIC_MAX, multiline=True, error=MobileOfficeError, code="topic_too_long")
        mine = await self.session.scalar(
            select(MobileOfficeBooking.id).where(
                MobileOfficeBooking.schedule_id == schedule.id,
                MobileOfficeBooking.trip_date == day,
                MobileOfficeBooking.user_id == user.id,
                MobileOfficeBooking.status == BOOKED,
            )
        )
        if mine is not None:
            raise MobileOfficeError("already_booked")
        existing = await self.session.scalar(
            select(MobileOfficeBooking)
            .where(
                MobileOfficeBooking.schedule_id == schedule.id,
                MobileOfficeBooking.trip_date == day,
                MobileOfficeBooking.slot_start == slot_start,
            )
            .with_for_update()
        )
        try:
            async with self.session.begin_nested():
                if existing is not None:
                    if existing.status == BOOKED:
                        raise MobileOfficeError("slot_taken")
                    existing.user_id = user.id
                    existing.topic = topic
                    existing.status = BOOKED
                    existing.created_at = self.clock.now()
                    booking = existing
                else:
                    booking = MobileOfficeBooking(
                        schedule_id=schedule.id,
                        trip_date=day,
                        slot_start=slot_start,
                        user_id=user.id,
                        topic=topic,
                        status=BOOKED,
                        created_at=self.clock.now(),
                    )
                    self.session.add(booking)
                await self.session.flush()
        except IntegrityError:
            raise MobileOfficeError("slot_taken") from None
        await self._plan_booking_reminder(user, booking, schedule)
        return booking

    async def cancel_booking(self, user: User, booking_id: int) -> MobileOfficeBooking:
        booking = await self.session.get(MobileOfficeBooking, booking_id)
        if booking is None or booking.user_id != user.id:
            raise MobileOfficeError("not_found")
        if booking.status != BOOKED:
            return booking
        booking.status = CANCELLED
        from models import OutboxMessage
        from services.outbox import cancel_pending

        await cancel_pending(self.session, OutboxMessage.dedupe_key == _booking_key(booking))
        return booking

    async def my_bookings(self, user: User) -> list[tuple[MobileOfficeBooking, MobileOfficeSchedule]]:
        rows = (
            await self.session.execute(
                select(MobileOfficeBooking, MobileOfficeSchedule)
                .join(MobileOfficeSchedule, MobileOfficeSchedule.id == MobileOfficeBooking.schedule_id)
                .where(
                    MobileOfficeBooking.user_id == user.id,
                    MobileOfficeBooking.status == BOOKED,
                    MobileOfficeBooking.trip_date >= self.today(),
                )
                .order_by(MobileOfficeBooking.trip_date, MobileOfficeBooking.slot_start)
            )
        ).all()
        return [(b, s) for b, s in rows]

    async def is_subscribed(self, user: User, settlement_id: int) -> bool:
        return (
            await self.session.scalar(
                select(MobileOfficeSubscription.id).where(
                    MobileOfficeSubscription.user_id == user.id,
                    MobileOfficeSubscription.settlement_id == settlement_id,
                )
            )
        ) is not None

    async def toggle_subscription(self, user: User, settlement_id: int) -> bool:
        """Subscribe or unsubscribe; returns whether subscribed now."""
        if await self.session.get(Settlement, settlement_id) is None:
            raise MobileOfficeError("not_found")
        existing = await self.session.scalar(
            select(MobileOfficeSubscription).where(
                MobileOfficeSubscription.user_id == user.id,
                MobileOfficeSubscription.settlement_id == settlement_id,
            )
        )
        if existing is not None:
            await self.session.delete(existing)
            await self.session.flush()
            return False
        try:
            async with self.session.begin_nested():
                self.session.add(
                    MobileOfficeSubscription(
                        user_id=user.id, settlement_id=settlement_id, created_at=self.clock.now()
                    )
                )
        except IntegrityError:
            pass  # a double tap
        return True

    # -- internals ------------------------------------------------------------------------------
    async def _trip(self, schedule_id: int, day: date) -> MobileOfficeSchedule:
        schedule = await self.session.get(MobileOfficeSchedule, schedule_id)
        if schedule is None or day < self.today() or day not in trip_days(schedule, day, day):
            raise MobileOfficeError("no_trip")
        return schedule

    async def _plan_booking_reminder(
        self, user: User, booking: MobileOfficeBooking, schedule: MobileOfficeSchedule
    ) -> None:
        at = self.rules.quiet_over(self.rules.at_local(booking.trip_date - timedelta(days=1), DAY_BEFORE_AT))
        if at <= self.clock.now():
            return
        payload = await _trip_payload(self.session, schedule, booking.trip_date, user.language or "uk")
        payload["slot"] = f"{booking.slot_start:%H:%M}"
        await enqueue(
            self.session,
            user=user,
            kind="mo_booking_day_before",
            payload=payload,
            due_at=at,
            dedupe_key=_booking_key(booking),
        )

    def _audit(self, worker: Worker, action: str, schedule_id: int, data: dict[str, object]) -> None:
        self.session.add(
            AuditEntry(
                at=self.clock.now(),
                actor_user_id=worker.user_id,
                action=action,
                object_type="mobile_office_schedule",
                object_id=str(schedule_id),
                data=data,
            )
        )


def _booking_key(booking: MobileOfficeBooking) -> str:
    return f"mo:booking:{booking.id}:{booking.trip_date:%Y%m%d}:{booking.slot_start:%H%M}:{booking.user_id}"


async def _trip_payload(
    session: AsyncSession, schedule: MobileOfficeSchedule, day: date, language: str
) -> dict[str, str | None]:
    settlement = await session.get(Settlement, schedule.settlement_id)
    return {
        "settlement": settlement.name(language) if settlement else "",
        "date": day.isoformat(),
        "time_from": f"{schedule.start_time:%H:%M}",
        "time_to": f"{schedule.end_time:%H:%M}",
        "place": schedule.place,
    }


async def plan_day_before_reminders(
    session: AsyncSession, now: datetime, rules: ReminderRules | None = None
) -> int:
    """Scheduler job: for tomorrow's trips, a reminder to each subscriber of the settlement at
    18:00 today (or now, if later but still before quiet hours). Once per trip and person."""
    rules = rules or ReminderRules()
    today = rules.local(now).date()
    tomorrow = today + timedelta(days=1)
    at = rules.at_local(today, DAY_BEFORE_AT)
    if rules.in_quiet_hours(now) and rules.local(now).time() >= rules.quiet_start:
        return 0  # too late today; tomorrow morning it would be the same day — skip
    schedules = (
        await session.scalars(
            select(MobileOfficeSchedule).where(
                MobileOfficeSchedule.valid_from <= tomorrow,
                (MobileOfficeSchedule.valid_to.is_(None)) | (MobileOfficeSchedule.valid_to >= tomorrow),
            )
        )
    ).all()
    added = 0
    for schedule in schedules:
        if tomorrow not in trip_days(schedule, tomorrow, tomorrow):
            continue
        subscribers = (
            await session.scalars(
                select(User)
                .join(MobileOfficeSubscription, MobileOfficeSubscription.user_id == User.id)
                .where(MobileOfficeSubscription.settlement_id == schedule.settlement_id)
                .order_by(User.id)
            )
        ).all()
        for user in subscribers:
            payload = await _trip_payload(session, schedule, tomorrow, user.language or "uk")
            row = await enqueue(
                session,
                user=user,
                kind="mo_day_before",
                payload=payload,
                due_at=max(at, now),
                dedupe_key=f"mo:{schedule.id}:{tomorrow:%Y%m%d}:{user.id}",
            )
            added += row is not None
    return added
