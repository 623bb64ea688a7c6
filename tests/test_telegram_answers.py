"""Telegram's answers honoured: a 429's retry_after pauses every sender of the process, and an
answer that is not a valid Bot API answer (HTML page, cut JSON, connection reset) is retried
with the same bounded backoff as a 5xx."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from sqlalchemy import select

from infra.ratelimit import BULK, RateLimiter, install, send_lane
from models import OutboxMessage
from models.outbox import FAILED, PENDING, SENT
from services.clock import FrozenClock
from tests.test_delivery import NOON, ClockedSession, FakeTime, _people, _queue, make_deliverer

HTML_502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>nginx</body>\r\n</html>\r\n"
CUT_JSON = '{"ok":true,"result":{"message_id":1001,"date":1764,"chat":{"id":7000,"ty'


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def tg(fake_time: FakeTime) -> ClockedSession:
    return ClockedSession(fake_time)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOON.astimezone(UTC))


MALFORMED = {
    "html 502": (502, HTML_502),
    "cut json": (200, CUT_JSON),
    "json, not an API answer": (502, '{"error": "upstream"}'),
    "empty 504": (504, ""),
}


async def test_retry_after_pauses_a_booked_send_to_another_chat(
    app, bot, tg, fake_time, sessionmaker, reference, clock
):
    a, b = await _people(sessionmaker, 2)
    await _queue(sessionmaker, [a, b], 1)
    tg.queue_error(429, "Too Many Requests: retry after 1", retry_after=1, method=SendMessage, chat_id=a)
    # One at a time: with concurrent senders b may already be on the wire when the 429 comes.
    deliverer = make_deliverer(app, bot, fake_time, concurrency=1)
    assert await deliverer.deliver_due() == 1
    first, second = tg.calls
    assert first.method.chat_id == a and second.method.chat_id == b
    # b's slot was booked before the 429 came back; it still waits for the pause to pass.
    assert second.at - first.at >= 1.0


async def test_a_long_pause_hands_booked_rows_back_unattempted(
    app, bot, tg, fake_time, sessionmaker, reference, clock
):
    a, b = await _people(sessionmaker, 2)
    await _queue(sessionmaker, [a, b], 1)
    tg.queue_error(429, "Too Many Requests: retry after 30", retry_after=30, method=SendMessage, chat_id=a)
    deliverer = make_deliverer(app, bot, fake_time, concurrency=1)
    assert await deliverer.deliver_due() == 0
    assert len(tg.calls) == 1  # b was not sent into the pause
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.chat_id == b))
    assert row.state == PENDING and row.claimed_by is None and row.attempts == 0
    assert row.due_at >= clock.now() + timedelta(seconds=29)
    assert fake_time.slept < 1  # nothing held its claim through the pause
    clock.advance(seconds=30)
    fake_time.now += 30
    assert await deliverer.deliver_due() == 2


async def test_retry_after_pauses_handler_replies_of_every_kind(bot, tg, fake_time):
    limiter = install(bot, RateLimiter(30, 1.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep))
    tg.queue_error(429, "Too Many Requests: retry after 11", retry_after=11, method=SendMessage)
    with pytest.raises(TelegramRetryAfter):  # too long a pause to send it again by itself
        await bot.send_message(7001, "a reply")
    paused_at = fake_time.now
    await bot.edit_message_text("an edit", chat_id=7002, message_id=5)
    await bot.answer_callback_query("query-1")
    await bot.send_message(7003, "another reply")
    later = [c for c in tg.calls[1:]]
    assert [type(c.method) for c in later] == [EditMessageText, AnswerCallbackQuery, SendMessage]
    assert all(c.at >= paused_at + 11.0 for c in later)
    assert limiter.pause_remaining() == 0.0


async def test_a_reply_refused_with_a_short_pause_is_sent_again_after_it(bot, tg, fake_time):
    """A 429 means Telegram handled nothing: the reply the person waits for goes again, once,
    when the pause is over. The deliverer's sends are not repeated here (it reschedules)."""
    install(bot, RateLimiter(30, 1.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep))
    tg.queue_error(429, "Too Many Requests: retry after 2", retry_after=2, method=SendMessage)
    refused_at = fake_time.now
    sent = await bot.send_message(7101, "a reply")
    assert sent.chat.id == 7101
    calls = [c for c in tg.calls if isinstance(c.method, SendMessage)]
    assert [c.ok for c in calls] == [False, True]
    assert calls[1].at >= refused_at + 2.0
    # Refused twice: the person's update fails (the error router answers), nothing loops.
    tg.queue_error(429, "Too Many Requests: retry after 1", retry_after=1, method=SendMessage)
    tg.queue_error(429, "Too Many Requests: retry after 1", retry_after=1, method=SendMessage)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(7102, "a reply")
    # A bulk sender gets the 429 at once and reschedules its row itself.
    tg.queue_error(429, "Too Many Requests: retry after 1", retry_after=1, method=SendMessage)
    lane = send_lane.set(BULK)
    try:
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(7103, "a reminder")
    finally:
        send_lane.reset(lane)


async def test_a_pause_set_while_waiting_for_a_slot_is_honoured(fake_time):
    limiter = RateLimiter(30, 1.0, monotonic=fake_time.monotonic, sleep=fake_time.sleep)
    limiter.reserve(1)
    paused_at = fake_time.now
    limiter.pause(2.0)  # the 429 arrives after the slot was booked
    await limiter.settle(1)
    assert fake_time.now >= paused_at + 2.0 - 1e-9


@pytest.mark.parametrize("status,body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_answer_is_retried_then_sent(
    app, bot, tg, fake_time, sessionmaker, reference, clock, status, body
):
    (a,) = await _people(sessionmaker, 1)
    await _queue(sessionmaker, [a], 1)
    tg.queue_raw(status, body, method=SendMessage)
    deliverer = make_deliverer(app, bot, fake_time)
    assert await deliverer.deliver_due() == 0
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row.state == PENDING and row.claimed_by is None and row.attempts == 1
    assert row.due_at == clock.now() + timedelta(seconds=5)
    assert row.last_error == f"malformed answer (HTTP {status})"
    clock.advance(seconds=5)
    assert await deliverer.deliver_due() == 1
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row.state == SENT


class ResettingSession(ClockedSession):
    """The connection drops before an answer arrives (aiohttp's error, wrapped by aiogram)."""

    resets = 0

    async def make_request(self, bot, method, timeout=None):
        if self.resets and isinstance(method, SendMessage):
            self.resets -= 1
            raise TelegramNetworkError(method=method, message="ClientOSError: Connection reset by peer")
        return await super().make_request(bot, method, timeout)


@pytest.fixture
def resetting(fake_time: FakeTime) -> ResettingSession:
    return ResettingSession(fake_time)


async def test_connection_reset_is_retried_then_sent(
    app, settings, resetting, fake_time, sessionmaker, reference, clock
):
    from bot.factory import create_bot

    bot = create_bot(settings, session=resetting)
    resetting.resets = 1
    (a,) = await _people(sessionmaker, 1)
    await _queue(sessionmaker, [a], 1)
    deliverer = make_deliverer(app, bot, fake_time)
    assert await deliverer.deliver_due() == 0
    async with sessionmaker() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row.state == PENDING and row.due_at == clock.now() + timedelta(seconds=5)
    assert row.last_error == "TelegramNetworkError"
    clock.advance(seconds=5)
    assert await deliverer.deliver_due() == 1


async def test_malformed_answers_are_bounded(app, bot, tg, fake_time, sessionmaker, reference, clock):
    (a,) = await _people(sessionmaker, 1)
    await _queue(sessionmaker, [a], 1, case_id=None)
    deliverer = make_deliverer(app, bot, fake_time)
    max_attempts = app.settings.delivery.max_attempts
    dues = []
    for _ in range(max_attempts):
        tg.queue_raw(502, HTML_502, method=SendMessage)
        assert await deliverer.deliver_due() == 0
        async with sessionmaker() as session:
            row = await session.scalar(select(OutboxMessage))
        dues.append(row.due_at - clock.now())
        clock.advance(minutes=11)
    assert row.state == FAILED and row.attempts == max_attempts
    assert row.last_error == f"malformed answer (HTTP 502) (after {max_attempts} attempts)"
    assert str(a) not in row.last_error and "nginx" not in row.last_error
    assert dues[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert len(tg.calls) == max_attempts
