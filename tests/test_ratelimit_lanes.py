"""Interactive first: replies to a person's own update go ahead of bulk work within the one
send budget, first come first served; callback answers are never queued behind messages; and a
reply that has to wait gives its database connection back first.

Limiter tests run on a virtual clock (tests/vclock.py): minutes of sending take milliseconds and
concurrent waits overlap as in real time. The database tests use real time (well under 2 s)."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest
from aiogram import Bot
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from sqlalchemy import event, func, select

from bot.factory import build_app
from bot.middlewares import DbSessionMiddleware
from bot.offline import BotClient, RecordingSession
from infra.db import create_engine
from infra.ratelimit import (
    BULK,
    INTERACTIVE,
    Busy,
    RateLimiter,
    install,
    release_before_wait,
    send_lane,
)
from models import OutboxMessage, User, utcnow
from services.outbox import enqueue
from tests.vclock import VirtualClock

RATE = 30
SLOT = 1.02 / RATE  # the grid: RATE calls per 1 s + the 20 ms margin
TOKEN = "42:TEST-TOKEN"


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()


def make_limiter(vclock: VirtualClock, rate: float = RATE, per_chat: float = 1.0, **kwargs) -> RateLimiter:
    return RateLimiter(rate, per_chat, monotonic=vclock.monotonic, sleep=vclock.sleep, **kwargs)


def max_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + 1.0 - 1e-9) for i, t in enumerate(times)), default=0)


class Bulk:
    """`workers` concurrent bulk senders (as the deliverer's) draining a backlog of distinct chats."""

    def __init__(self, limiter: RateLimiter, vclock: VirtualClock, backlog: int, workers: int = 30) -> None:
        self.limiter, self.vclock = limiter, vclock
        self.chats = iter(range(1_000_000, 1_000_000 + backlog))
        self.sent: list[float] = []
        self.tasks = [asyncio.ensure_future(self._work()) for _ in range(workers)]

    async def _work(self) -> None:
        for chat in self.chats:
            await self.limiter.acquire(chat, lane=BULK)
            self.sent.append(self.vclock.now)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class Replies:
    """Handlers' replies (the default lane), each asked at its moment after the start: when
    they went and how long each waited."""

    def __init__(self, limiter: RateLimiter, vclock: VirtualClock) -> None:
        self.limiter, self.vclock, self.start = limiter, vclock, vclock.now
        self.sent: list[float] = []
        self.waits: list[float] = []

    async def at(self, offset: float, chat: int) -> None:
        await self.vclock.sleep(self.start + offset - self.vclock.now)
        asked = self.vclock.now
        await self.limiter.acquire(chat)
        self.waits.append(self.vclock.now - asked)
        self.sent.append(self.vclock.now)


async def test_a_reply_waits_at_most_about_a_slot_behind_a_bulk_backlog(vclock) -> None:
    limiter = make_limiter(vclock)
    start = vclock.now
    bulk = Bulk(limiter, vclock, backlog=10_000)
    replies = Replies(limiter, vclock)
    tasks = [asyncio.ensure_future(replies.at(0.5 + i * 0.37, 500 + i)) for i in range(25)]
    await vclock.run(start + 10.0)
    await bulk.stop()
    assert all(t.done() for t in tasks)
    waits = replies.waits
    print(
        f"\nreply wait behind a 10,000-row bulk backlog: mean {sum(waits) / len(waits) * 1000:.1f} ms,"
        f" max {max(waits) * 1000:.1f} ms; bulk sent {len(bulk.sent)} in 10 s"
    )
    # About one slot behind bulk (plus the actual-time check's margin), never seconds.
    assert max(waits) <= 2 * SLOT + 0.021
    # The bulk lane uses the rest of the budget, and the budget holds.
    assert len(bulk.sent) + len(replies.sent) >= 0.95 * RATE * 10 - RATE
    assert max_in_one_second(bulk.sent + replies.sent) <= RATE


class LateClock(VirtualClock):
    """A busy process: every wake-up comes 0-8 ms late (a handler hogging the loop, a slow
    Redis answer)."""

    def __init__(self) -> None:
        super().__init__()
        self.rng = random.Random(11)

    async def sleep(self, delay: float) -> None:
        await super().sleep(max(delay, 0.0) + self.rng.uniform(0.0, 0.008))


async def test_late_wake_ups_do_not_pile_up_ahead_of_replies() -> None:
    # With the budget full of bulk work, each late sender used to push every later one back by
    # its lateness: the actual sends drifted behind the grid, bulk senders queued in the
    # actual-time check, and a reply waited behind them all (100-250 ms under load).
    vclock = LateClock()
    limiter = make_limiter(vclock)
    start = vclock.now
    bulk = Bulk(limiter, vclock, backlog=10_000)
    replies = Replies(limiter, vclock)
    tasks = [asyncio.ensure_future(replies.at(1.0 + i * 0.29, 500 + i)) for i in range(60)]
    await vclock.run(start + 20.0)
    await bulk.stop()
    assert all(t.done() for t in tasks)
    waits = sorted(replies.waits)
    p95 = waits[int(len(waits) * 0.95)]
    print(f"\nreply wait with late wake-ups: p95 {p95 * 1000:.1f} ms, max {waits[-1] * 1000:.1f} ms")
    assert p95 <= 3 * SLOT + 0.01, f"replies waited {p95 * 1000:.0f} ms behind the bulk backlog"
    assert max_in_one_second(bulk.sent + replies.sent) <= RATE
    assert len(bulk.sent) + len(replies.sent) >= 0.9 * RATE * 20


async def test_a_bulk_batch_booked_ahead_would_hold_a_reply_up(vclock) -> None:
    # The contrast: bulk booking in the interactive lane (a batch of 100 booked at once, as the
    # deliverer used to) leaves a reply behind the whole batch.
    limiter = make_limiter(vclock)
    for chat in range(100):
        limiter.reserve(chat)
    asked = vclock.now
    await vclock.gather(limiter.acquire(7))
    assert vclock.now - asked > 3.0


async def test_replies_over_the_budget_take_it_all_and_bulk_waits(vclock) -> None:
    limiter = make_limiter(vclock)
    start = vclock.now
    bulk = Bulk(limiter, vclock, backlog=10_000)
    asked: list[tuple[float, int]] = []
    served: dict[int, float] = {}

    async def reply(chat: int) -> None:
        asked.append((vclock.now, chat))
        await limiter.acquire(chat)
        served[chat] = vclock.now

    pending: list[asyncio.Future[None]] = []

    async def offer() -> None:  # 40 replies a second for 5 s: over the budget of 30
        for i in range(200):
            pending.append(asyncio.ensure_future(reply(i)))
            await vclock.sleep(1 / 40)

    offering = asyncio.ensure_future(offer())
    await vclock.run(start + 30.0, stop=lambda: len(served) == 200)
    assert offering.done() and len(served) == 200
    end_of_replies = max(served.values())
    bulk_during = [t for t in bulk.sent if start + 0.5 < t < end_of_replies - 0.5]
    await vclock.run(vclock.now + 2.0)
    await bulk.stop()
    # While replies wanted more than the budget, bulk got (almost) nothing …
    assert len(bulk_during) <= 2, f"bulk took {len(bulk_during)} slots from replies"
    # … replies were served in the order they asked …
    order = [chat for _, chat in sorted(asked)]
    assert sorted(order, key=lambda c: served[c]) == order
    # … at the full rate, and bulk resumed afterwards.
    assert end_of_replies - start <= 200 / RATE * 1.05 + 0.5
    assert any(t > end_of_replies for t in bulk.sent)
    assert max_in_one_second(bulk.sent + list(served.values())) <= RATE


@pytest.mark.parametrize("per_chat", [1.0, 0.0])
async def test_a_flooding_chat_cannot_jump_the_others(vclock, per_chat) -> None:
    limiter = make_limiter(vclock, per_chat=per_chat)
    served: dict[str, float] = {}

    async def reply(name: str, chat: int) -> None:
        await limiter.acquire(chat)
        served[name] = vclock.now

    # Two people asked first, then one chat floods 60 replies, then ten more people ask.
    tasks = [asyncio.ensure_future(reply(f"early{i}", 100 + i)) for i in range(2)]
    tasks += [asyncio.ensure_future(reply(f"flood{i}", 7)) for i in range(60)]
    tasks += [asyncio.ensure_future(reply(f"late{i}", 200 + i)) for i in range(10)]
    await vclock.gather(*tasks)
    flood = sorted(served[f"flood{i}"] for i in range(60))
    early = [served[f"early{i}"] for i in range(2)]
    late = [served[f"late{i}"] for i in range(10)]
    assert max(early) < min(flood)  # asked first, served first
    if per_chat:
        # The flood goes one a second; the people after it are not kept behind it.
        assert all(b - a >= per_chat - 1e-9 for a, b in itertools.pairwise(flood))
        assert max(late) - min(early) <= 13 * SLOT + 1e-6
    else:
        # No per-chat spacing: strictly first come, first served.
        assert min(late) > max(flood)
    times = sorted(served.values())
    assert all(b - a >= SLOT - 1e-9 for a, b in itertools.pairwise(times))


async def test_bulk_gives_up_while_replies_keep_the_budget(vclock) -> None:
    limiter = make_limiter(vclock)
    for chat in range(600):  # twenty seconds of replies already booked
        limiter.reserve(chat)
    start = vclock.now
    with pytest.raises(Busy) as busy:
        await vclock.gather(limiter.acquire(99_999, lane=BULK, give_up_after=10.0))
    assert vclock.now - start <= 10.0 + 1e-6
    assert busy.value.retry_in > 0
    # A long pause: bulk gives up at once, telling how long.
    limiter = make_limiter(vclock)
    limiter.pause(30)
    with pytest.raises(Busy) as busy:
        await vclock.gather(limiter.acquire(88_888, lane=BULK, give_up_after=10.0))
    assert busy.value.retry_in >= 29


class VSession(RecordingSession):
    """Records each call at virtual time."""

    def __init__(self, vclock: VirtualClock) -> None:
        super().__init__()
        self.vclock = vclock

    async def make_request(self, bot, method, timeout=None):
        try:
            return await super().make_request(bot, method, timeout)
        finally:
            self.calls[-1].at = self.vclock.monotonic()


async def test_callback_answers_and_edits_are_not_queued_behind_messages(vclock) -> None:
    tg = VSession(vclock)
    bot = Bot(TOKEN, session=tg)
    limiter = install(bot, make_limiter(vclock))
    start = vclock.now
    replies = [asyncio.ensure_future(bot.send_message(100 + i, "reply")) for i in range(90)]
    bulk = Bulk(limiter, vclock, backlog=1000)

    async def press() -> None:
        await vclock.sleep(0.5)
        await bot.answer_callback_query("q1")
        await bot.edit_message_text("edited", chat_id=5, message_id=1)

    await vclock.gather(press(), *replies)
    await bulk.stop()
    answer = next(c for c in tg.calls if isinstance(c.method, AnswerCallbackQuery))
    edit = next(c for c in tg.calls if isinstance(c.method, EditMessageText))
    assert answer.at == pytest.approx(start + 0.5) and edit.at == pytest.approx(start + 0.5)
    sends = [c.at for c in tg.calls if isinstance(c.method, SendMessage)]
    assert max(sends) - start >= 2.9  # three seconds of replies were queued meanwhile
    # A 429 pauses them too, though.
    tg.queue_error(429, "Too Many Requests: retry after 12", retry_after=12, method=SendMessage)
    with pytest.raises(Exception):  # noqa: B017 - aiogram's TelegramRetryAfter (too long to retry)
        await vclock.gather(bot.send_message(1, "x"))
    paused_at = vclock.now
    await vclock.gather(bot.answer_callback_query("q2"))
    assert tg.calls[-1].at >= paused_at + 12.0


async def test_wait_observer_hears_lane_and_seconds(vclock) -> None:
    heard: list[tuple[str, float]] = []
    limiter = make_limiter(vclock, on_wait=lambda lane, seconds: heard.append((lane, seconds)))
    await vclock.gather(limiter.acquire(1), limiter.acquire(1), limiter.acquire(2, lane=BULK))
    lanes = sorted(lane for lane, _ in heard)
    assert lanes == [BULK, INTERACTIVE, INTERACTIVE]
    # The second message to chat 1 waited out the chat's interval (1 s and its margin).
    assert max(s for lane, s in heard if lane == INTERACTIVE) == pytest.approx(
        limiter.per_chat_interval, abs=0.05
    )
    limiter.pause(1.5)
    await vclock.gather(limiter.wait_pause())
    assert heard[-1] == (INTERACTIVE, pytest.approx(1.5))


async def test_release_hook_runs_only_before_an_interactive_wait(vclock) -> None:
    tg = VSession(vclock)
    bot = Bot(TOKEN, session=tg)
    install(bot, make_limiter(vclock))
    released: list[float] = []

    async def hook() -> None:
        released.append(vclock.now)

    async def update(*calls) -> None:
        token = release_before_wait.set(hook)
        try:
            for call in calls:
                await call()
        finally:
            release_before_wait.reset(token)

    # The first reply goes at once: nothing released.
    await vclock.gather(update(lambda: bot.send_message(1, "first")))
    assert released == []
    # A second reply to the same chat waits a second: released first, once.
    await vclock.gather(update(lambda: bot.send_message(1, "second"), lambda: bot.answer_callback_query("q")))
    assert len(released) == 1
    # The bulk lane never runs an update's hook.

    async def bulk() -> None:
        lane = send_lane.set(BULK)
        try:
            await bot.send_message(1, "bulk")
        finally:
            send_lane.reset(lane)

    await vclock.gather(update(bulk))
    assert len(released) == 1
    # A pause in force: even a callback answer releases first.
    await vclock.gather(update(lambda: bot.answer_callback_query("q2")))
    assert len(released) == 1
    bot.session.middleware[0].limiter.pause(1.0)
    await vclock.gather(update(lambda: bot.answer_callback_query("q3")))
    assert len(released) == 2


# -- the database connection is given back while a reply waits --------------------------------------


async def _count(sessionmaker, model) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_checkpoint_commits_what_came_before_and_rolls_back_the_rest(sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        user = User(telegram_id=90001, language="uk")
        session.add(user)
    middleware = DbSessionMiddleware(sessionmaker)

    async def handler(event, data):
        session = data["session"]
        await enqueue(session, user=user, kind="case_status_changed", payload={}, due_at=utcnow())
        checkpoint = release_before_wait.get()
        assert checkpoint is not None
        await checkpoint()  # as the limiter does before a reply waits
        assert not session.in_transaction()  # no connection held
        assert await _count(sessionmaker, OutboxMessage) == 1  # visible to everyone now
        await enqueue(session, user=user, kind="case_status_changed", payload={}, due_at=utcnow())
        raise RuntimeError("a later step fails")

    with pytest.raises(RuntimeError):
        await middleware(handler, object(), {})
    assert await _count(sessionmaker, OutboxMessage) == 1
    assert release_before_wait.get() is None


@pytest.fixture
async def one_connection_app(settings, db, clock):
    """The app on an engine of one connection (PostgreSQL; SQLite has one writer anyway)."""
    engine = create_engine(db.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    held = {"now": 0, "max": 0}

    @event.listens_for(engine.sync_engine, "checkout")
    def _out(*_args):
        held["now"] += 1
        held["max"] = max(held["max"], held["now"])

    @event.listens_for(engine.sync_engine, "checkin")
    def _in(*_args):
        held["now"] -= 1

    app = build_app(settings, clock=clock, engine=engine)
    app.held = held
    yield app
    await app.close_dispatcher()
    await engine.dispose()


async def test_a_waiting_reply_does_not_block_another_persons_update(one_connection_app, reference) -> None:
    app = one_connection_app
    tg = RecordingSession()
    bot = Bot(TOKEN, session=tg)
    install(bot, RateLimiter(30, 1.2))  # real time; a second reply to one chat waits 1.2 s
    anna = BotClient(app.dispatcher, bot, tg, user_id=31001)
    boris = BotClient(app.dispatcher, bot, tg, user_id=31002)
    await anna.send("/start")
    # Anna's next reply must wait for her chat's interval, holding no connection meanwhile.
    waiting = asyncio.ensure_future(anna.send("/start"))
    await asyncio.sleep(0.15)
    assert not waiting.done()
    assert app.held["now"] == 0, "the waiting update holds a database connection"
    started = time.monotonic()
    await asyncio.wait_for(boris.send("/start"), timeout=0.9)  # would block on Anna's connection
    assert time.monotonic() - started < 0.9
    assert not waiting.done(), "Boris was served after Anna's reply instead of meanwhile"
    await waiting
    anna_calls = [c for c in tg.sent_to(31001) if isinstance(c.method, SendMessage)]
    boris_calls = [c for c in tg.sent_to(31002) if isinstance(c.method, SendMessage)]
    assert boris_calls[0].at < anna_calls[-1].at
    assert anna_calls[-1].at - anna_calls[0].at >= 1.2 - 1e-3
    async with app.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 2


async def test_a_reply_goes_ahead_of_the_deliverers_backlog(app, sessionmaker, reference) -> None:
    """Real time, the real deliverer: its backlog does not hold a handler's reply up."""
    from bot.delivery import OutboxDeliverer
    from tests.test_delivery import _people, _queue, assert_limits

    rate = 100
    tg = RecordingSession()
    bot = Bot(TOKEN, session=tg)
    install(bot, RateLimiter(rate, 1.0))
    people = await _people(sessionmaker, 150)
    await _queue(sessionmaker, people, 1, due_at=app.clock.now())
    deliverer = OutboxDeliverer(bot, sessionmaker, app.i18n, app.clock, app.settings)
    delivering = asyncio.ensure_future(deliverer.deliver_due())
    await asyncio.sleep(0.3)  # a batch of 100 claimed and being sent
    waits = []
    for i in range(5):
        asked = time.monotonic()
        await bot.send_message(900 + i, "a reply")
        waits.append(time.monotonic() - asked)
        await asyncio.sleep(0.05)
    assert await asyncio.wait_for(delivering, timeout=10) == 150
    print(f"\nreply waits while the deliverer drains: max {max(waits) * 1000:.1f} ms")
    # Booked ahead, the deliverer's batch of 100 would have held each reply up to a second.
    assert max(waits) < 0.3
    assert_limits(tg.calls, rate, 1.0)


async def test_a_press_is_answered_before_its_reply_waits_for_the_chat(app, reference) -> None:
    """Real time: the spinner stops at once even when the press's reply must wait out its chat's
    interval (a message just went to the same chat)."""
    tg = RecordingSession()
    bot = Bot(TOKEN, session=tg)
    install(bot, RateLimiter(30, 1.2))
    anna = BotClient(app.dispatcher, bot, tg, user_id=31101)
    await anna.send("/start")  # the greeting with the language buttons: her chat's last message
    pressed = time.monotonic()
    await anna.click("Українська")  # answered, then the consent message waits for the chat
    answers = [c for c in tg.calls if isinstance(c.method, AnswerCallbackQuery)]
    messages = [c for c in tg.sent_to(31101) if isinstance(c.method, SendMessage)]
    assert len(answers) == 1 and len(messages) >= 2
    assert answers[0].at - pressed < 0.3, "the spinner waited for the send budget"
    assert messages[-1].at - messages[0].at >= 1.2 - 1e-3  # the chat's interval still held
    assert answers[0].at < messages[-1].at
