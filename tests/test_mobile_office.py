"""Mobile social office: recurrence, coordinator entry, subscribe + day-before reminder, booking."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import select

from handlers.kit.callbacks import MobileOfficeCb
from models import MobileOfficeBooking, MobileOfficeSchedule, OutboxMessage, Resident, Settlement, User
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from services.mobile_office import (
    MobileOfficeError,
    MobileOfficeService,
    plan_day_before_reminders,
    trip_days,
)
from services.reminders import ReminderRules
from tests.factories import add_worker

KYIV = ReminderRules().tz
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=KYIV).astimezone(UTC)  # Monday


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def test_trip_days_every_two_weeks():
    schedule = MobileOfficeSchedule(
        weekday=1,
        every_weeks=2,
        valid_from=date(2026, 11, 1),
        valid_to=date(2027, 1, 1),
        start_time=time(10),
        end_time=time(13),
        slot_minutes=20,
    )
    # First Tuesday on/after 1 Nov 2026 is 3 Nov; then every second Tuesday.
    assert trip_days(schedule, date(2026, 11, 1), date(2026, 12, 31)) == [
        date(2026, 11, 3),
        date(2026, 11, 17),
        date(2026, 12, 1),
        date(2026, 12, 15),
        date(2026, 12, 29),
    ]
    assert trip_days(schedule, date(2026, 11, 18), date(2026, 12, 2)) == [date(2026, 12, 1)]
    assert trip_days(schedule, date(2026, 11, 10), date(2026, 11, 10)) == []  # off week


async def test_coordinator_enters_resident_subscribes_and_books(
    make_client, resident, sessionmaker, reference, deliverer, clock
):
    await add_worker(sessionmaker, 901, "ves-csp", role=ROLE_COORDINATOR)
    coordinator = make_client(user_id=901)
    replies = await coordinator.send("/mobile_office_add matviivka 2 10:00-11:00 1 20 Клуб <центр>")
    assert "24.11.2026" in replies[-1].text  # next Tuesday
    replies = await coordinator.send("/mobile_office_add matviivka 9 10:00-11:00")
    assert "Не вдалося" in replies[-1].text
    replies = await coordinator.send("/mobile_office_add berestove 2 10:00-11:00")  # another hromada
    assert "не у ваших громадах" in replies[-1].text
    replies = await coordinator.send("/mobile_office")
    assert "Клуб &lt;центр&gt;" in replies[-1].method.text

    # The resident lives in Matviivka: the menu opens straight on its trips.
    async with sessionmaker.begin() as session:
        matviivka = await session.scalar(select(Settlement).where(Settlement.code == "matviivka"))
        res = await session.scalar(
            select(Resident)
            .join(User, User.id == Resident.user_id)
            .where(User.telegram_id == resident.user.id)
        )
        res.last_settlement_id = matviivka.id
    replies = await resident.send(_menu_text())
    assert "Матвіївка" in replies[-1].text and "24.11.2026, 10:00–11:00" in replies[-1].text
    await resident.click("Нагадувати напередодні")
    await resident.click("📅 24.11")
    replies = await resident.click("10:20")
    assert "24.11.2026 о 10:20" in replies[-1].text
    # The same slot again, and a second slot on the same trip, are refused.
    async with sessionmaker() as session:
        schedule_id = await session.scalar(select(MobileOfficeSchedule.id))
    replies = await resident.click_data(
        MobileOfficeCb(action="book", id=schedule_id, value="202611241020").pack()
    )
    assert replies[-1].kind == "alert"
    replies = await resident.click_data(
        MobileOfficeCb(action="book", id=schedule_id, value="202611241000").pack()
    )
    assert "вже записані" in replies[-1].text

    # Day before at 18:00: the subscriber reminder and the booking reminder.
    clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=KYIV).astimezone(UTC))
    async with sessionmaker.begin() as session:
        assert await plan_day_before_reminders(session, clock.now()) == 1
        assert await plan_day_before_reminders(session, clock.now()) == 0  # once
    await deliverer.deliver_due()
    resident.read()
    clock.set(datetime(2026, 11, 23, 18, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 2
    texts = [r.text for r in resident.read()]
    assert any("Завтра, 24.11.2026" in t for t in texts) and any("о 10:20" in t for t in texts)

    # Cancelling frees the slot for someone else.
    await resident.click("Мої записи")
    await resident.click("Скасувати 24.11.2026 10:20")
    async with sessionmaker() as session:
        assert await session.scalar(select(MobileOfficeBooking.status)) == "cancelled"


def _menu_text() -> str:
    from infra.i18n import create_i18n

    return create_i18n("uk").gettext("menu.mobile_office", locale="uk")


async def test_booking_rules(sessionmaker, reference, clock):
    await add_worker(sessionmaker, 901, "ves-csp", role=ROLE_COORDINATOR)
    async with sessionmaker.begin() as session:
        from models import Worker

        worker = await session.scalar(select(Worker))
        vesele = await session.scalar(select(Settlement).where(Settlement.code == "vesele"))
        service = MobileOfficeService(session, clock)
        schedule = await service.add_schedule(
            worker, vesele.id, weekday=1, start_time=time(10), end_time=time(11), slot_minutes=30
        )
        a = User(telegram_id=1)
        b = User(telegram_id=2)
        session.add_all([a, b])
        await session.flush()
        tuesday = date(2026, 11, 24)
        assert await service.free_slots(schedule.id, tuesday) == [time(10), time(10, 30)]
        booking = await service.book(a, schedule.id, tuesday, time(10))
        with pytest.raises(MobileOfficeError) as err:
            await service.book(b, schedule.id, tuesday, time(10))
        assert err.value.code == "slot_taken"
        with pytest.raises(MobileOfficeError) as err:
            await service.book(b, schedule.id, date(2026, 11, 25), time(10))
        assert err.value.code == "no_trip"
        with pytest.raises(MobileOfficeError) as err:
            await service.book(b, schedule.id, tuesday, time(10, 10))
        assert err.value.code == "no_slot"
        with pytest.raises(MobileOfficeError):
            await service.cancel_booking(b, booking.id)  # not theirs
        await service.cancel_booking(a, booking.id)
        again = await service.book(b, schedule.id, tuesday, time(10))  # the freed slot, same row
        assert again.id == booking.id and again.user_id == b.id
        reminder = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.kind == "mo_booking_day_before")
        )
        assert reminder.due_at == datetime(2026, 11, 23, 18, 0, tzinfo=KYIV)


async def test_settlement_list_and_coordinator_end(make_client, resident, sessionmaker, reference, clock):
    await add_worker(sessionmaker, 901, "ves-csp", role=ROLE_COORDINATOR)
    coordinator = make_client(user_id=901)
    replies = await resident.send(_menu_text())
    assert "жодна громада" in replies[-1].text  # nothing entered yet
    await coordinator.send("/mobile_office_add novopetrivka 5 09:00-12:00 2 30")
    # The resident's settlement is unknown: a list of settlements that have trips.
    replies = await resident.send(_menu_text())
    assert replies[-1].buttons() == ["Новопетрівка (Веселівська)"]
    replies = await resident.click("Новопетрівка (Веселівська)")
    assert (
        "27.11.2026, 09:00–12:00" in replies[-1].text and "11.12.2026" in replies[-1].text
    )  # Fridays, every 2 weeks
    # A plain worker (not coordinator) and a resident cannot end it; the coordinator can.
    async with sessionmaker() as session:
        schedule_id = await session.scalar(select(MobileOfficeSchedule.id))
    data = MobileOfficeCb(action="end", id=schedule_id).pack()
    await add_worker(sessionmaker, 902, "ves-csp")
    for outsider in (make_client(user_id=902), resident):
        replies = await outsider.click_data(data)
        assert replies[-1].kind == "alert"
    async with sessionmaker() as session:
        assert (await session.scalar(select(MobileOfficeSchedule.valid_to))) is None
    replies = await coordinator.click_data(data)
    assert "завершено" in replies[-1].text
    replies = await resident.send(_menu_text())
    assert "жодна громада" in replies[-1].text
