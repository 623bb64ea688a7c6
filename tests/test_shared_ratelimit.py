"""The send budget shared through Redis: two limiter instances (as two processes would have, each
with its own Redis client) never book one slot twice, keep the per-chat spacing and the global
rate together, honour each other's 429 pause; when Redis is away an instance keeps its own
limits instead of going quiet. Against the real Redis (TEST_REDIS_URL, 127.0.0.1:6379), each
test under a key prefix of its own, removed afterwards."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
import uuid

import pytest
import redis.asyncio as redis
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, SendMessage

from bot.offline import RecordingSession
from infra.ratelimit import BULK, WINDOW_MARGIN, Busy, install
from infra.shared_ratelimit import SharedRateLimiter
from tests.conftest import IN_CI
from tests.test_delivery import ClockedSession, FakeTime
from tests.test_ratelimit_lanes import max_in_one_second

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TOKEN = "42:TEST-TOKEN"


@pytest.fixture
async def prefix():
    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        await client.aclose()
        if IN_CI:
            pytest.fail(f"Redis is required in CI and does not answer at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not available: {exc}")
    name = f"test:ratelimit:{uuid.uuid4().hex}"
    yield name
    keys = [k async for k in client.scan_iter(match="{" + name + "}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def pair(prefix):
    """Two instances' limiters on one fake clock (passed to Redis as the time)."""
    fake = FakeTime()
    made = [
        SharedRateLimiter.from_url(
            REDIS_URL,
            30,
            1.0,
            prefix=prefix,
            clock=fake.monotonic,
            monotonic=fake.monotonic,
            sleep=fake.sleep,
        )
        for _ in range(2)
    ]
    yield fake, made
    for limiter in made:
        await limiter.close()


async def test_two_instances_never_share_a_slot(pair) -> None:
    fake, (a, b) = pair
    chats = [i % 7 for i in range(200)]
    delays = await asyncio.gather(*((a if i % 2 else b).book(chat) for i, chat in enumerate(chats)))
    slots = [fake.now + d for d in delays]
    interval = (1 + WINDOW_MARGIN) / 30
    assert all(y - x >= interval - 1e-6 for x, y in itertools.pairwise(sorted(slots)))
    for chat in range(7):
        mine = sorted(s for s, c in zip(slots, chats, strict=True) if c == chat)
        assert all(y - x >= 1.0 - 1e-6 for x, y in itertools.pairwise(mine))
    assert max_in_one_second(slots) <= 30


async def test_replies_booked_by_one_instance_keep_the_others_bulk_waiting(pair) -> None:
    fake, (a, b) = pair
    for chat in range(60):  # two seconds of replies on instance a
        await a.book(chat)
    with pytest.raises(Busy):
        await b.acquire(999, lane=BULK, give_up_after=1.0)
    assert fake.slept <= 1.0 + 1e-6
    # Once those replies are past, b's bulk send gets its slot just in time.
    fake.now += 2.1
    waited = await b.acquire(999, lane=BULK, give_up_after=1.0)
    assert waited <= 2 * b.interval + 1e-6


async def test_a_pause_set_by_one_instance_is_honoured_by_the_other(pair) -> None:
    fake, (a, b) = pair
    tg_a, tg_b = ClockedSession(fake), ClockedSession(fake)
    bot_a, bot_b = Bot(TOKEN, session=tg_a), Bot(TOKEN, session=tg_b)
    install(bot_a, a)
    install(bot_b, b)
    # Long enough that the reply is not sent again by itself: the caller gets the 429.
    tg_a.queue_error(429, "Too Many Requests: retry after 12", retry_after=12, method=SendMessage)
    with pytest.raises(TelegramRetryAfter):
        await bot_a.send_message(1, "reply")
    paused_at = fake.now
    await bot_b.answer_callback_query("q1")
    await bot_b.send_message(2, "reply")
    assert [type(c.method) for c in tg_b.calls] == [AnswerCallbackQuery, SendMessage]
    assert all(c.at >= paused_at + 12.0 - 1e-6 for c in tg_b.calls)


async def test_two_instances_keep_the_limits_together_in_real_time(prefix) -> None:
    rate, per_chat = 40, 0.5
    limiters = [SharedRateLimiter.from_url(REDIS_URL, rate, per_chat, prefix=prefix) for _ in range(2)]
    sessions = [RecordingSession(), RecordingSession()]
    bots = [Bot(TOKEN, session=s) for s in sessions]
    for bot, limiter in zip(bots, limiters, strict=True):
        install(bot, limiter)
    try:
        started = time.monotonic()
        # 50 messages at 40/s: instance 0 to chats 0–24, instance 1 to chats 12–36 (13 chats get
        # one message from each instance).
        await asyncio.gather(
            *(bots[0].send_message(chat, "a") for chat in range(25)),
            *(bots[1].send_message(chat, "b") for chat in range(12, 37)),
        )
        took = time.monotonic() - started
    finally:
        for limiter in limiters:
            await limiter.close()
    calls = [c for s in sessions for c in s.calls]
    most = max_in_one_second([c.at for c in calls])
    print(f"\ntwo shared limiters: {len(calls)} sends in {took:.2f} s, at most {most} in any 1-s window")
    assert len(calls) == 50 and most <= rate
    for chat in range(12, 25):
        a, b = sorted(c.at for c in calls if c.method.chat_id == chat)
        assert b - a >= per_chat - 1e-3


async def test_without_redis_an_instance_keeps_its_own_limits(caplog) -> None:
    fake = FakeTime()
    # Nothing listens on port 1: every Redis call fails at once.
    limiter = SharedRateLimiter.from_url(
        "redis://127.0.0.1:1/0", 30, 1.0, monotonic=fake.monotonic, sleep=fake.sleep
    )
    tg = ClockedSession(fake)
    bot = Bot(TOKEN, session=tg)
    install(bot, limiter)
    try:
        with caplog.at_level(logging.WARNING, logger="infra.shared_ratelimit"):
            for _ in range(3):
                await bot.send_message(7001, "a reply")
            await bot.answer_callback_query("q")
    finally:
        await limiter.close()
    sends = [c.at for c in tg.calls if isinstance(c.method, SendMessage)]
    assert len(sends) == 3
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(sends))  # per chat, locally
    warnings = [r for r in caplog.records if r.name == "infra.shared_ratelimit"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "7001" not in warnings[0].getMessage()


async def test_keys_expire_by_themselves(pair, prefix) -> None:
    _, (a, b) = pair
    await a.acquire(5)
    await b.pause_all(2.0)
    client = redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match="{" + prefix + "}*")]
        assert keys
        ttls = [await client.pttl(k) for k in keys]
    finally:
        await client.aclose()
    assert all(0 < ttl <= 15_000 for ttl in ttls), dict(zip(keys, ttls, strict=True))


async def test_with_redis_url_the_scheduler_shares_the_budget(app, bot, sessionmaker, reference) -> None:
    from bot.scheduler import setup_scheduler
    from infra.ratelimit import installed
    from infra.settings import RedisSettings, load_settings

    settings = load_settings(
        database=app.settings.database,
        delivery=app.settings.delivery,
        redis=RedisSettings(REDIS_URL=REDIS_URL),
    )
    runtime = setup_scheduler(
        app.dispatcher, bot=bot, sessionmaker=sessionmaker, i18n=app.i18n, clock=app.clock, settings=settings
    )
    limiter = installed(bot)
    try:
        assert isinstance(limiter, SharedRateLimiter)
        assert runtime.deliverer.limiter is limiter
        assert limiter.prefix == "{hromada:ratelimit:42}"  # per bot: two bots never share a budget
    finally:
        await limiter.close()


async def test_the_deliverer_sends_through_a_shared_limiter(app, prefix, sessionmaker, reference) -> None:
    from bot.delivery import OutboxDeliverer
    from tests.test_delivery import _people, _queue, assert_limits

    fake = FakeTime()
    tg = ClockedSession(fake)
    bot = Bot(TOKEN, session=tg)
    limiter = SharedRateLimiter.from_url(
        REDIS_URL, 30, 1.0, prefix=prefix, clock=fake.monotonic, monotonic=fake.monotonic, sleep=fake.sleep
    )
    install(bot, limiter)
    try:
        people = await _people(sessionmaker, 20)
        await _queue(sessionmaker, people, 2, due_at=app.clock.now())
        deliverer = OutboxDeliverer(bot, sessionmaker, app.i18n, app.clock, app.settings, concurrency=1)
        assert deliverer.limiter is limiter
        assert await deliverer.deliver_due() == 40
    finally:
        await limiter.close()
    assert_limits(tg.calls, 30, 1.0)


class Proxy:
    """A TCP relay to Redis that can be cut and restored (a Redis outage, as the bot sees it)."""

    def __init__(self, target_port: int = 6379) -> None:
        self.target_port = target_port
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_redis_going_away_and_back(prefix, caplog) -> None:
    proxy = Proxy()
    await proxy.start()
    db = REDIS_URL.rsplit("/", 1)[1]
    limiter = SharedRateLimiter.from_url(
        f"redis://127.0.0.1:{proxy.port}/{db}", 30, 1.0, prefix=prefix, retry_redis_after=0.2
    )
    try:
        with caplog.at_level(logging.WARNING, logger="infra.shared_ratelimit"):
            await limiter.acquire(1)
            assert not caplog.records
            await proxy.cut()
            for chat in range(2, 6):  # still sending, on this instance's own books
                await limiter.acquire(chat)
            assert len(caplog.records) == 1 and "unavailable" in caplog.records[0].getMessage()
            await proxy.start()  # Redis is back (same port)
            await asyncio.sleep(0.25)
            await limiter.acquire(6)
            assert len(caplog.records) == 2 and "again" in caplog.records[1].getMessage()
        client = redis.from_url(REDIS_URL)
        try:
            assert await client.exists("{" + prefix + "}:chat:6")  # booked in Redis again
        finally:
            await client.aclose()
    finally:
        await limiter.close()
        await proxy.cut()


async def test_the_shared_limiter_reports_its_waits(prefix) -> None:
    fake = FakeTime()
    heard: list[tuple[str, float]] = []
    limiter = SharedRateLimiter.from_url(
        REDIS_URL,
        30,
        1.0,
        prefix=prefix,
        clock=fake.monotonic,
        monotonic=fake.monotonic,
        sleep=fake.sleep,
        on_wait=lambda lane, seconds: heard.append((lane, seconds)),
    )
    try:
        await limiter.acquire(1)
        await limiter.acquire(1)
        await limiter.acquire(2, lane=BULK)
    finally:
        await limiter.close()
    assert [lane for lane, _ in heard] == ["interactive", "interactive", BULK]
    assert heard[1][1] == pytest.approx(limiter.per_chat_interval, abs=0.05)
