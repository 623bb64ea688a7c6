"""Announcements: a coordinator's announcement reaches only the chosen settlement's consenting,
reachable residents; a blocked chat is marked unreachable and counted in the delivery report; a
scheduled one goes out at its time on the injected clock, never in quiet hours, photo included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiogram.methods import SendMessage, SendPhoto
from sqlalchemy import select, update

from bot.delivery import OutboxDeliverer
from models import (
    Announcement,
    AuditEntry,
    MobileOfficeSubscription,
    OutboxMessage,
    Resident,
    Settlement,
    User,
)
from models.people import ROLE_COORDINATOR
from services.announcements import AnnouncementError, AnnouncementService
from services.clock import FrozenClock
from services.reminders import ReminderRules
from tests.factories import add_resident, add_worker

KYIV = ReminderRules().tz
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=KYIV).astimezone(UTC)
TEXT = "Завтра о 10:00 у Веселому роздаватимуть гуманітарну допомогу"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _settlement(sessionmaker, code: str) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(Settlement.id).where(Settlement.code == code))


async def _living_in(sessionmaker, telegram_id: int, code: str, *, consent: bool = True) -> int:
    resident = await add_resident(sessionmaker, telegram_id)
    settlement_id = await _settlement(sessionmaker, code)
    async with sessionmaker.begin() as session:
        values = {"last_settlement_id": settlement_id}
        if not consent:
            values["consent_at"] = None
        await session.execute(update(Resident).where(Resident.id == resident.id).values(**values))
    return telegram_id


async def _compose(coordinator, text: str, *, photo: bool = False) -> None:
    panel = (await coordinator.send("/worker"))[-1]
    asked = await coordinator.click("Оголошення", message_id=panel.message_id)
    assert "Нове оголошення" in asked[-1].text
    if photo:
        await coordinator.send_photo(caption=text)
    else:
        await coordinator.send(text)


async def test_announcement_reaches_only_the_settlement_and_marks_blocked(
    make_client, reference, sessionmaker, clock, deliverer, tg
):
    await add_worker(sessionmaker, 4101, "ves-csp", role=ROLE_COORDINATOR)
    reader = await _living_in(sessionmaker, 4001, "vesele")
    blocked = await _living_in(sessionmaker, 4002, "vesele")
    neighbour = await _living_in(sessionmaker, 4003, "matviivka")
    no_consent = await _living_in(sessionmaker, 4004, "vesele", consent=False)
    elsewhere = await _living_in(sessionmaker, 4005, "karpivka")
    coordinator = make_client(user_id=4101)

    panel = (await coordinator.send("/worker"))[-1]
    await coordinator.click("Оголошення", message_id=panel.message_id)
    assert "текст" in (await coordinator.send_sticker())[0].text
    assert "словами" in (await coordinator.send("!!! 111"))[0].text
    audience = (await coordinator.send(TEXT))[-1]
    assert "Кому" in audience.text
    picker = (await coordinator.click("Мешканцям"))[-1]
    assert {"Веселе", "Матвіївка"} <= set(picker.buttons()) and "Карпівка" not in picker.buttons()
    # A settlement of another hromada, forged into a press, is refused.
    karpivka = await _settlement(sessionmaker, "karpivka")
    assert (await coordinator.click_data(f"ann:pick:{karpivka}:"))[0].kind == "alert"
    # Nobody lives in Novopetrivka (as far as the bot knows): nothing to send.
    await coordinator.click("Новопетрівка", message_id=picker.message_id)
    nobody = await coordinator.click("Готово", message_id=picker.message_id)
    assert nobody[0].kind == "alert" and "немає жодного отримувача" in nobody[0].text
    await coordinator.click("✅ Новопетрівка", message_id=picker.message_id)
    picked = (await coordinator.click("Веселе", message_id=picker.message_id))[-1]
    assert "✅ Веселе" in picked.buttons() and "Новопетрівка" in picked.buttons()
    count = (await coordinator.click("Готово"))[-1]
    assert "Отримувачів: <b>2</b>" in count.text
    confirm = (await coordinator.click("Надіслати зараз"))[-1]
    assert "Отримувачів: 2" in confirm.text and TEXT in confirm.text
    queued = (await coordinator.click("📣 Надіслати"))[-1]
    assert "поставлено в чергу" in queued.text

    tg.queue_error(403, "Forbidden: bot was blocked by the user", method=SendMessage, chat_id=blocked)
    await deliverer.deliver_due()
    got = [r.text for r in make_client(user_id=reader).read()]
    assert len(got) == 1 and TEXT in got[0] and "Веселівської" in got[0]
    for person in (neighbour, no_consent, elsewhere):
        assert tg.sent_to(person) == []
    async with sessionmaker() as session:
        user = await session.scalar(select(User).where(User.telegram_id == blocked))
        assert user.reachable is False
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "announcement_queued"))
        ).one()
        assert audit.data["recipients"] == 2 and TEXT not in str(audit.data)

    report = (await coordinator.click("Звіт про доставку"))[-1]
    assert "Усього: 2" in report.text
    assert "Доставлено: 1" in report.text and "Недоступні (заблокували бота): 1" in report.text
    assert "Очікують: 0" in report.text
    # Refresh edits the same report; another coordinator's hromada cannot see it.
    assert "Доставлено: 1" in (await coordinator.click("Оновити"))[-1].text
    await add_worker(sessionmaker, 4102, "pyr-cnap", role=ROLE_COORDINATOR)
    async with sessionmaker() as session:
        announcement_id = await session.scalar(select(Announcement.id))
    other = make_client(user_id=4102)
    assert (await other.click_data(f"ann:report:{announcement_id}:"))[0].kind == "alert"
    # A blocked person is not counted in the next announcement.
    vesele = await _settlement(sessionmaker, "vesele")
    async with sessionmaker() as session:
        service = AnnouncementService(session, clock, KYIV)
        assert [chat for _, chat in await service.recipients("residents", [vesele])] == [reader]


async def test_scheduled_photo_waits_for_its_time_and_quiet_hours(
    make_client, reference, sessionmaker, clock, app, bot, tg
):
    await add_worker(sessionmaker, 4201, "ves-csp", role=ROLE_COORDINATOR)
    subscriber = await _living_in(sessionmaker, 4211, "kyrylivka")  # subscribed, lives elsewhere
    resident_only = await _living_in(sessionmaker, 4212, "matviivka")  # lives there, not subscribed
    matviivka = await _settlement(sessionmaker, "matviivka")
    async with sessionmaker.begin() as session:
        user_id = await session.scalar(select(User.id).where(User.telegram_id == subscriber))
        session.add(MobileOfficeSubscription(user_id=user_id, settlement_id=matviivka))
    deliverer = OutboxDeliverer(bot, app.sessionmaker, app.i18n, clock, app.settings, rules=ReminderRules())
    coordinator = make_client(user_id=4201)

    async def schedule(text: str, when: str, *, photo: bool) -> None:
        await _compose(coordinator, text, photo=photo)
        await coordinator.click("Підписникам")
        await coordinator.click("Матвіївка")
        assert "Отримувачів: <b>1</b>" in (await coordinator.click("Готово"))[-1].text
        await coordinator.click("Запланувати")
        confirm = (await coordinator.send(when))[-1]
        assert "Перевірте" in confirm.text
        await coordinator.click("📣 Надіслати")

    # /announce starts the same form; "Cancel" drops the draft.
    assert "Нове оголошення" in (await coordinator.send("/announce"))[-1].text
    assert any("скасовано" in r.text for r in await coordinator.click("Скасувати"))
    await schedule("Мобільний офіс приїде в четвер", "23.11 15:00", photo=True)
    await schedule("Нагадування ввечері", "23.11 22:30", photo=False)

    clock.set(datetime(2026, 11, 23, 14, 59, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 0
    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 1
    photo = tg.sent_to(subscriber)
    assert len(photo) == 1 and isinstance(photo[0].method, SendPhoto)
    assert "Мобільний офіс приїде" in photo[0].method.caption and photo[0].method.photo.startswith("photo-")
    # 22:30 is in quiet hours: held until 08:00.
    clock.set(datetime(2026, 11, 23, 22, 30, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 0
    clock.set(datetime(2026, 11, 24, 7, 59, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 0
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 1
    assert "Нагадування ввечері" in tg.sent_to(subscriber)[-1].method.text
    assert tg.sent_to(resident_only) == []


async def test_send_time_is_validated(reference, sessionmaker, clock):
    async with sessionmaker() as session:
        service = AnnouncementService(session, clock, KYIV)
        assert service.parse_send_at("23.11 12:30") == datetime(2026, 11, 23, 12, 30, tzinfo=KYIV)
        # January typed in November is next year's.
        assert service.parse_send_at("05.01 09:00").year == 2027
        for typed, code in (
            ("завтра", "bad_time"),
            ("31.02 10:00", "bad_time"),
            ("23.11 25:00", "bad_time"),
            ("23.11 11:59", "past_time"),
            ("20.03 10:00", "far_time"),
        ):
            with pytest.raises(AnnouncementError) as refused:
                service.parse_send_at(typed)
            assert refused.value.code == code, typed


async def test_consent_withdrawn_before_sending_drops_the_row(reference, sessionmaker, clock, deliverer, tg):
    coordinator = await add_worker(sessionmaker, 4301, "ves-csp", role=ROLE_COORDINATOR)
    person = await _living_in(sessionmaker, 4311, "vesele")
    vesele = await _settlement(sessionmaker, "vesele")
    async with sessionmaker.begin() as session:
        service = AnnouncementService(session, clock, KYIV)
        announcement = await service.create(
            coordinator,
            text=TEXT,
            photo_file_id=None,
            audience="residents",
            settlement_ids=[vesele],
            send_at=None,
        )
        user_id = await session.scalar(select(User.id).where(User.telegram_id == person))
        await session.execute(update(Resident).where(Resident.user_id == user_id).values(consent_at=None))
    await deliverer.deliver_due()
    assert tg.sent_to(person) == []
    async with sessionmaker() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.announcement_id == announcement.id)
        )
        assert row.state == "cancelled"
        _, report = await AnnouncementService(session, clock, KYIV).report(coordinator, announcement.id)
        assert (report.total, report.cancelled, report.sent) == (1, 1, 0)


async def test_a_hromada_with_many_settlements_is_picked_page_by_page(make_client, reference, sessionmaker):
    # A hromada of 90 villages (some have more than a hundred): every one can be chosen, a page
    # at a time, and what was ticked on one page stays ticked on the others.
    await add_worker(sessionmaker, 4201, "ves-csp", role=ROLE_COORDINATOR)
    async with sessionmaker.begin() as session:
        vesele = await session.scalar(select(Settlement).where(Settlement.code == "vesele"))
        assert vesele is not None
        for n in range(1, 86):
            session.add(
                Settlement(
                    hromada_id=vesele.hromada_id,
                    code=f"khutir-{n}",
                    name_uk=f"Хутір {n:02d}",
                    name_en=f"Khutir {n:02d}",
                )
            )
    coordinator = make_client(user_id=4201)
    await _compose(coordinator, TEXT)
    first = (await coordinator.click("Мешканцям"))[-1]
    assert "Сторінка 1 з 3" in first.text and "Наступні ▶" in first.buttons()
    controls = ("Готово", "Скасувати", "Наступні", "Попередні")
    villages = [b for b in first.buttons() if not any(word in b for word in controls)]
    assert len(villages) == 40 and villages[0] == "Веселе", "in the alphabet's order"
    await coordinator.click("Веселе", message_id=first.message_id)
    second = (await coordinator.click("Наступні ▶", message_id=first.message_id))[-1]
    assert "Сторінка 2 з 3" in second.text and "◀ Попередні" in second.buttons()
    picked = (await coordinator.click("Хутір 50", message_id=second.message_id))[-1]
    assert "✅ Хутір 50" in picked.buttons() and "Сторінка 2 з 3" in picked.text
    assert "Готово (обрано: 2)" in picked.buttons()
    last = (await coordinator.click_data("ann:page:999:"))[-1]  # forged: the last page
    assert "Сторінка 3 з 3" in last.text and "Наступні ▶" not in last.buttons()
    assert "Хутір 85" in last.buttons()
    back = (await coordinator.click("◀ Попередні", message_id=last.message_id))[-1]
    back = (await coordinator.click("◀ Попередні", message_id=back.message_id))[-1]
    assert "✅ Веселе" in back.buttons()


async def test_a_scheduled_announcement_can_be_stopped_before_it_goes_out(
    make_client, reference, sessionmaker, clock, deliverer, tg
):
    await add_worker(sessionmaker, 4301, "ves-csp", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 4302, "pyr-cnap", role=ROLE_COORDINATOR)
    readers = [await _living_in(sessionmaker, 4310 + n, "vesele") for n in range(3)]
    coordinator = make_client(user_id=4301)
    await _compose(coordinator, "Завтра прийом скасовано")
    await coordinator.click("Мешканцям")
    await coordinator.click("Веселе")
    await coordinator.click("Готово")
    await coordinator.click("Запланувати")
    await coordinator.send("23.11 15:00")
    queued = (await coordinator.click("📣 Надіслати"))[-1]
    report = (await coordinator.click("Звіт про доставку", message_id=queued.message_id))[-1]
    assert "Очікують: 3" in report.text and "⛔ Зупинити розсилку" in report.buttons()
    async with sessionmaker() as session:
        announcement_id = await session.scalar(select(Announcement.id))

    # Another hromada's coordinator cannot stop it, even with a forged press.
    other = make_client(user_id=4302)
    assert (await other.click_data(f"ann:withdraw_yes:{announcement_id}:"))[0].kind == "alert"
    # Asked first; "No" changes nothing.
    question = (await coordinator.click("⛔ Зупинити розсилку", message_id=report.message_id))[-1]
    assert "Ще не надіслано: 3" in question.text
    kept = (await coordinator.click("Ні, залишити", message_id=question.message_id))[-1]
    assert "Очікують: 3" in kept.text
    await coordinator.click("⛔ Зупинити розсилку", message_id=kept.message_id)
    stopped = (await coordinator.click("Так, зупинити", message_id=kept.message_id))[-1]
    assert "не надіслано 3" in stopped.text and "Очікують: 0" in stopped.text
    assert "⛔ Зупинити розсилку" not in stopped.buttons() and "Цю розсилку зупинено" in stopped.text
    # A second press (an old message) is answered, not repeated.
    again = await coordinator.click_data(f"ann:withdraw_yes:{announcement_id}:")
    assert again[0].kind == "alert" and "Зупиняти нічого" in again[0].text

    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 0
    assert all(tg.sent_to(reader) == [] for reader in readers)
    async with sessionmaker() as session:
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "announcement_withdrawn"))
        ).one()
        assert audit.data == {"cancelled": 3}


async def test_presses_from_before_the_audience_step_are_stale(make_client, reference, sessionmaker):
    # An old picker message pressed after the form moved back to its text (or was never there).
    await add_worker(sessionmaker, 4401, "ves-csp", role=ROLE_COORDINATOR)
    coordinator = make_client(user_id=4401)
    await _compose(coordinator, TEXT)  # the draft has its text, no audience yet
    for data in ("ann:pick:1:", "ann:page:1:", "ann:done:0:"):
        replies = await coordinator.click_data(data)
        assert replies[0].kind == "alert" and "неактивна" in replies[0].text, data
