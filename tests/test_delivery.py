"""The delivery engine: rate limits on a fake clock, quiet hours, 403/429/5xx, leases."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from aiogram.methods import SendMessage
from sqlalchemy import select

from bot.delivery import OUTCOME_UNKNOWN, OutboxDeliverer
from bot.offline import RecordingSession
from infra.ratelimit import RateLimiter, install
from models import OutboxMessage, User
from models.outbox import FAILED, PENDING, SENDING, SENT
from services.clock import FrozenClock
from services.outbox import enqueue
from services.reminders import ReminderRules, unreachable_since
from tests.factories import add_resident

KYIV = ReminderRules().tz
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=KYIV)


class FakeTime:
    """monotonic() and sleep() for the limiter: sleeping moves time, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(delay, 0.0)
        self.slept += max(delay, 0.0)
        await asyncio.sleep(0)


class ClockedSession(RecordingSession):
    """Records each call at the fake time instead of the real one."""

    def __init__(self, fake: FakeTime) -> None:
        super().__init__()
        self.fake = fake

    async def make_request(self, bot, method, timeout=None):
        try:
            return await super().make_request(bot, method, timeout)
        finally:
            self.calls[-1].at = self.fake.monotonic()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def tg(fake_time: FakeTime) -> RecordingSession:
    return ClockedSession(fake_time)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOON.astimezone(UTC))


def make_deliverer(app, bot, fake_time: FakeTime, **kwargs) -> OutboxDeliverer:
    limiter = RateLimiter(
        app.settings.delivery.global_rate,
        app.settings.delivery.per_chat_interval,
        monotonic=fake_time.monotonic,
        sleep=fake_time.sleep,
    )
    kwargs.setdefault("rules", ReminderRules())  # the default quiet hours, 21:00–08:00 Kyiv
    return OutboxDeliverer(
        bot, app.sessionmaker, app.i18n, app.clock, app.settings, limiter=limiter, **kwargs
    )


async def _people(sessionmaker, n: int, first: int = 7000) -> list[int]:
    ids = []
    for i in range(n):
        await add_resident(sessionmaker, first + i)
        ids.append(first + i)
    return ids


async def _queue(sessionmaker, telegram_ids: list[int], per_person: int, **kwargs) -> None:
    async with sessionmaker.begin() as session:
        for tid in telegram_ids:
            user = await session.scalar(select(User).where(User.telegram_id == tid))
            for _ in range(per_person):
                kwargs.setdefault("due_at", NOON.astimezone(UTC))  # the deliverer's clock
                await enqueue(session, user=user, kind="renewal_test", payload={}, **kwargs)


def assert_limits(calls, rate: float, per_chat: float) -> None:
    sends = [c for c in calls if isinstance(c.method, SendMessage)]
    times = sorted(c.at for c in sends)
    eps = 1e-9
    for i, t in enumerate(times):
        # at most `rate` sends in any half-open window of one second
        in_window = sum(1 for u in times[i:] if u < t + 1.0 - eps)
        assert in_window <= rate, f"{in_window} sends within 1 s from {t}"
    by_chat: dict[int, list[float]] = {}
    for c in sends:
        by_chat.setdefault(c.method.chat_id, []).append(c.at)
    for chat, ts in by_chat.items():
        ts.sort()
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        assert all(g >= per_chat - eps for g in gaps), f"chat {chat} got messages {gaps} s apart"


async def test_rate_limits_hold(app, bot, tg, fake_time, sessionmaker, reference):
    people = await _people(sessionmaker, 40)
    await _queue(sessionmaker, people, 3)
    deliverer = make_deliverer(app, bot, fake_time, concurrency=1)
    assert await deliverer.deliver_due() == 120
    assert_limits(tg.calls, 30, 1.0)
    # Three per chat: each chat's third message cannot leave before 2 s; batches of 100 leave a
    # few gaps, but nowhere near one-at-a-time-per-second.
    assert fake_time.slept < 8
    async with sessionmaker() as session:
        assert set((await session.scalars(select(OutboxMessage.state))).all()) == {SENT}


async def test_distinct_chats_fill_the_rate(app, bot, tg, fake_time, sessionmaker, reference):
    people = await _people(sessionmaker, 150)
    await _queue(sessionmaker, people, 1)
    deliverer = make_deliverer(app, bot, fake_time, concurrency=1)
    assert await deliverer.deliver_due() == 150
    assert_limits(tg.calls, 30, 1.0)
    assert 4.9 <= fake_time.slept <= 5.2  # 150 at 30/s: the limit is the only bottleneck


async def test_limiter_reservations_under_concurrency(fake_time):
    limiter = RateLimiter(30, 1.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    chats = [i % 7 for i in range(200)]
    slots = await asyncio.gather(*(asyncio.create_task(_reserve(limiter, c)) for c in chats))
    times = sorted(slots)
    assert all(b - a >= 1 / 30 - 1e-9 for a, b in itertools.pairwise(times))
    for chat in range(7):
        mine = [s for s, c in zip(slots, chats, strict=True) if c == chat]
        assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(mine))


async def _reserve(limiter: RateLimiter, chat: int) -> float:
    await asyncio.sleep(0)
    return limiter.reserve(chat)


async def test_shared_limiter_on_bot_counts_handler_replies(app, bot, tg, fake_time, sessionmaker, reference):
    limiter = RateLimiter(30, 1.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    install(bot, limiter)
    deliverer = OutboxDeliverer(bot, app.sessionmaker, app.i18n, app.clock, app.settings)
    assert deliverer.limiter is limiter
    (person,) = await _people(sessionmaker, 1)
    await bot.send_message(person, "direct reply")  # a handler's own answer
    await _queue(sessionmaker, [person], 2)
    assert await deliverer.deliver_due() == 2
    assert len(tg.sent_to(person)) == 3
    assert_limits(tg.calls, 30, 1.0)


async def test_quiet_hours_wait_until_morning_urgent_goes(
    app, bot, tg, fake_time, sessionmaker, reference, clock
):
    clock.set(datetime(2026, 11, 23, 22, 30, tzinfo=KYIV).astimezone(UTC))
    a, b = await _people(sessionmaker, 2)
    await _queue(sessionmaker, [a], 1, due_at=clock.now())
    await _queue(sessionmaker, [b], 1, due_at=clock.now(), urgent=True)
    deliverer = make_deliverer(app, bot, fake_time)
    assert await deliverer.deliver_due() == 1
    assert [c.method.chat_id for c in tg.calls] == [b]
    async with sessionmaker() as session:
        waiting = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == a))
    assert waiting.state == PENDING and waiting.claimed_by is None
    assert waiting.due_at.astimezone(KYIV) == datetime(2026, 11, 24, 8, 0, tzinfo=KYIV)
    clock.set(datetime(2026, 11, 24, 7, 59, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 0
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=KYIV).astimezone(UTC))
    assert await deliverer.deliver_due() == 1


async def test_forbidden_marks_user_unreachable(app, bot, tg, fake_time, sessionmaker, reference, clock):
    a, b = await _people(sessionmaker, 2)
    await _queue(sessionmaker, [a, b], 1)
    tg.queue_error(403, "Forbidden: bot was blocked by the user", method=SendMessage, chat_id=a)
    deliverer = make_deliverer(app, bot, fake_time)
    assert await deliverer.deliver_due() == 1
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == a))
        user = await session.scalar(select(User).where(User.telegram_id == a))
        assert row.state == FAILED and "Forbidden" in row.last_error
        assert user.reachable is False and user.unreachable_since == clock.now()
        assert await unreachable_since(session, user.id) == clock.now()
    # They unblock the bot: the next message goes through and they are reachable again.
    await _queue(sessionmaker, [a], 1)
    assert await deliverer.deliver_due() == 1
    async with sessionmaker() as session:
        user = await session.scalar(select(User).where(User.telegram_id == a))
        assert user.reachable is True
        assert await unreachable_since(session, user.id) is None


async def test_retry_after_is_honoured_without_recursion(
    app, bot, tg, fake_time, sessionmaker, reference, clock
):
    (a,) = await _people(sessionmaker, 1)
    await _queue(sessionmaker, [a], 1)
    tg.queue_error(429, "Too Many Requests: retry after 7", retry_after=7, method=SendMessage)
    deliverer = make_deliverer(app, bot, fake_time)
    assert await deliverer.deliver_due() == 0
    assert len(tg.calls) == 1  # one call, no retry loop inside
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row.state == PENDING and row.due_at == clock.now() + timedelta(seconds=7)
    assert row.last_error == "429 retry_after"
    # The whole limiter paused: nothing else may go out for 7 s.
    assert deliverer.limiter.reserve(999) >= fake_time.now + 7
    clock.advance(seconds=8)
    fake_time.now += 8
    assert await deliverer.deliver_due() == 1


async def test_server_errors_back_off_then_fail(app, bot, tg, fake_time, sessionmaker, reference, clock):
    (a,) = await _people(sessionmaker, 1)
    await _queue(sessionmaker, [a], 1, case_id=None)
    deliverer = make_deliverer(app, bot, fake_time)
    max_attempts = app.settings.delivery.max_attempts
    dues = []
    for _ in range(max_attempts):
        tg.queue_error(502, "Bad Gateway", method=SendMessage)
        assert await deliverer.deliver_due() == 0
        async with sessionmaker() as session:
            row = await session.scalar(select(OutboxMessage))
        dues.append(row.due_at - clock.now())
        clock.advance(minutes=11)
    assert row.state == FAILED and row.attempts == max_attempts
    assert row.last_error.startswith("TelegramServerError") and str(a) not in row.last_error
    # exponential backoff 5, 10, 20, 40 s while retrying
    assert dues[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert len(tg.calls) == max_attempts


async def _old_row(session, user: User, kind: str, payload: dict) -> OutboxMessage:
    """A row as queued before payloads were stamped: fields pre-rendered, buttons spelled out."""
    row = await enqueue(session, user=user, kind=kind, payload={}, due_at=NOON.astimezone(UTC))
    row.payload = payload
    return row


async def test_buttons_and_language(app, bot, tg, fake_time, sessionmaker, reference):
    await add_resident(sessionmaker, 7100, language="en")
    async with sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.telegram_id == 7100))
        await _old_row(
            session,
            user,
            "renewal_due",
            {
                "number": "VES-1",
                "service": "Subsidy",
                "due": "01.01.2027",
                "buttons": [[["menu.help", "x:1"]]],
            },
        )
    deliverer = make_deliverer(app, bot, fake_time)
    assert await deliverer.deliver_due() == 1
    method = tg.calls[-1].method
    assert "must be renewed by" in method.text
    assert method.reply_markup.inline_keyboard[0][0].callback_data == "x:1"


async def test_rows_queued_in_the_old_shape_still_go_out(app, bot, tg, fake_time, sessionmaker, reference):
    """A new-case notice queued before the deploy: sent with its text and buttons as they were;
    one missing its fields fails with a render reason, and the loop goes on."""
    await _people(sessionmaker, 2, first=7200)
    old = {
        "number": "VES-2026-000007",
        "service_uk": "Субсидія",
        "service_en": "Subsidy",
        "hromada_uk": "Веселівська",
        "hromada_en": "Veselivska",
        "settlement_uk": "—",
        "settlement_en": "—",
        "priority": 2,
        "excerpt": "Тече &lt;дах&gt;",
        "buttons": [[["outbox.btn.take", "case:take:7"], ["outbox.btn.open", "case:open:7"]]],
    }
    async with sessionmaker.begin() as session:
        first, second = (await session.scalars(select(User).order_by(User.telegram_id))).all()[-2:]
        await _old_row(session, first, "case_new", old)
        await _old_row(session, second, "case_new", {"number": "VES-2026-000008"})
    assert await make_deliverer(app, bot, fake_time).deliver_due() == 1
    method = tg.calls[-1].method
    assert method.chat_id == 7200
    assert method.text.startswith("🆕 <b>Нове звернення VES-2026-000007</b>\nПослуга: Субсидія\n")
    assert method.text.endswith("Пріоритет: 2\n\nТече &lt;дах&gt;")
    [[take, open_]] = method.reply_markup.inline_keyboard
    assert (take.text, take.callback_data) == ("✋ Взяти в роботу", "case:take:7")
    assert (open_.text, open_.callback_data) == ("📂 Відкрити", "case:open:7")
    async with sessionmaker() as session:
        broken = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == 7201))
    assert broken.state == FAILED and broken.last_error == "render: KeyError"


async def test_render_error_fails_row_not_loop(app, bot, tg, fake_time, sessionmaker, reference):
    a, b = await _people(sessionmaker, 2)
    async with sessionmaker.begin() as session:
        ua = await session.scalar(select(User).where(User.telegram_id == a))
        # The payload's fields are missing.
        due = NOON.astimezone(UTC)
        await enqueue(session, user=ua, kind="renewal_due", payload={"number": "x"}, due_at=due)
    await _queue(sessionmaker, [b], 1)
    assert await make_deliverer(app, bot, fake_time).deliver_due() == 1
    async with sessionmaker() as session:
        bad = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == a))
    assert bad.state == FAILED and bad.last_error == "render: KeyError"


async def test_two_instances_and_crashed_claims(app, bot, tg, fake_time, sessionmaker, reference, clock):
    people = await _people(sessionmaker, 30)
    await _queue(sessionmaker, people, 1)
    one = make_deliverer(app, bot, fake_time, instance_id="one", batch_size=10)
    two = make_deliverer(app, bot, fake_time, instance_id="two", batch_size=10)
    # "one" claims a batch and dies before sending anything; "two" takes the rest.
    claimed = await one._claim(10)
    assert len(claimed) == 10
    assert await two.deliver_due() == 20
    # A row "one" had started (sending) when it died: outcome unknown, never resent.
    async with sessionmaker.begin() as session:
        row = await session.get(OutboxMessage, claimed[0])
        row.state = SENDING
        row.claimed_until = clock.now() + timedelta(seconds=120)
    clock.advance(minutes=3)  # both leases expired
    assert await two.deliver_due() == 9
    async with sessionmaker() as session:
        row = await session.get(OutboxMessage, claimed[0])
        states = (await session.scalars(select(OutboxMessage.state))).all()
    assert row.state == FAILED and row.last_error == OUTCOME_UNKNOWN
    assert states.count(SENT) == 29
    sent_chats = [c.method.chat_id for c in tg.calls]
    assert len(sent_chats) == len(set(sent_chats)) == 29
