"""The database goes away and comes back; nothing a person sent is lost.

The application talks to the real PostgreSQL through a TCP proxy (tests/tcpproxy.py) that can
refuse connections (a crash, a restart) or swallow every byte (a silent outage); updates reach
the webhook over real HTTP, and Telegram is a recording session. Nothing of ours is mocked.

- webhook: an update arriving while the database is away gets one apology and a 503; Telegram's
  redeliveries get no second apology; the first redelivery after the database is back is handled
  (the form step is taken, its reply sent), for a typed message and for a button press;
- polling: the person is asked to send it again (the update cannot come back);
- delivery: a message sent just before the database went away ends `sent`, is not resent, and is
  not turned "outcome unknown", even when another instance expired it meanwhile;
- a silent outage: updates succeed again within seconds after it ends (the seconds are printed);
- handling is bounded (503 in time) and concurrent (a slow person does not hold up another);
- SQLite held by a long writer: the same apology, 503 and handled redelivery;
- only outages count as outages: a bug is answered 200 as before; instances sharing Redis
  apologise once per update.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text

from bot.delivery import OUTCOME_UNKNOWN, OutboxDeliverer
from bot.factory import App, build_app, create_bot
from bot.offline import BotClient, RecordingSession
from bot.webhook import create_web_app
from infra.db import DbTimeouts, create_engine, create_sessionmaker, database_unavailable
from models import OutboxMessage, User
from models.outbox import FAILED, PENDING, SENT
from services.clock import FrozenClock
from services.outbox import enqueue
from services.reminders import ReminderRules
from tests.factories import add_resident
from tests.tcpproxy import BLACKHOLE, PASS, REFUSE, TcpProxy

SECRET = "outage-secret_0123456789abcdefABCDEF"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
APOLOGY_UK = "технічна проблема"
LATER_UK = "щойно її усунемо"
# Short bounds so the tests are quick; the recovery measurement uses the defaults.
QUICK = DbTimeouts(connect=1.0, command=1.0, pool=1.0, idle_check=1.0)


@pytest.fixture
def pg_only(db_url: str) -> str:
    if not db_url.startswith("postgresql"):
        pytest.skip("the TCP proxy stands between the bot and a PostgreSQL server")
    return db_url


@pytest_asyncio.fixture(loop_scope="session")
async def proxy(pg_only: str) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy("127.0.0.1", 5432).start()
    yield proxy
    await proxy.close()


@asynccontextmanager
async def proxied_app(settings, proxy: TcpProxy, timeouts: DbTimeouts, **kwargs: Any) -> AsyncIterator[App]:
    engine = create_engine(proxy.url_for(settings.database.url), timeouts=timeouts)
    app = build_app(settings, engine=engine, **kwargs)
    try:
        yield app
    finally:
        proxy.mode = PASS
        await app.close()


@asynccontextmanager
async def webhook(app: App, bot) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_web_app(app, bot, SECRET))) as client:
        yield client


def message_update(update_id: int, user_id: int, text: str, language: str = "uk") -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Test"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Test", "language_code": language},
            "text": text,
        },
    }


def press_update(update_id: int, user_id: int, data: str, message_id: int) -> dict:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"q{update_id}",
            "chat_instance": "ci",
            "data": data,
            "from": {"id": user_id, "is_bot": False, "first_name": "Test", "language_code": "uk"},
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": user_id, "type": "private", "first_name": "Test"},
                "from": {"id": 42, "is_bot": True, "first_name": "Hromada"},
                "text": "…",
            },
        },
    }


async def post(client: TestClient, update: dict) -> int:
    response = await client.post("/telegram/webhook", json=update, headers={HEADER: SECRET})
    return response.status


def apologies(tg: RecordingSession, chat_id: int) -> list[str]:
    texts = []
    for call in tg.calls:
        method = call.method
        if isinstance(method, SendMessage) and method.chat_id == chat_id and APOLOGY_UK in method.text:
            texts.append(method.text)
        if isinstance(method, AnswerCallbackQuery) and method.text and APOLOGY_UK in method.text:
            texts.append(method.text)
    return texts


async def to_step_one(client: BotClient) -> None:
    """/start, language, consent, "new request": the form waits for the hromada (step 1)."""
    await client.send("/start")
    await client.click("Українська")
    await client.click("Погоджуюсь")
    replies = await client.press("Нове звернення")
    assert "Крок 1" in replies[-1].text


# -- the webhook ----------------------------------------------------------------------------------


@pytest.mark.parametrize("outage", [REFUSE, BLACKHOLE])
async def test_a_form_step_sent_during_an_outage_is_handled_on_redelivery(
    settings, proxy: TcpProxy, reference: None, tg: RecordingSession, outage: str
) -> None:
    async with proxied_app(settings, proxy, QUICK) as app:
        bot = create_bot(settings, session=tg)
        person = BotClient(app.dispatcher, bot, tg, user_id=60_001)
        await to_step_one(person)
        step = message_update(900_001, 60_001, "Весел")
        async with webhook(app, bot) as http:
            proxy.mode = outage
            started = time.monotonic()
            assert await post(http, step) == 503
            answered_in = time.monotonic() - started
            told = apologies(tg, 60_001)
            assert len(told) == 1 and LATER_UK in told[0], told
            # Telegram delivers it again while the database is still away: no second apology.
            assert await post(http, step) == 503
            assert len(apologies(tg, 60_001)) == 1

            proxy.mode = PASS
            person.read()  # what came before
            assert await post(http, step) == 200
            replies = person.read()
            assert replies and "Веселівська" in str(replies[-1].inline), replies
            assert len(apologies(tg, 60_001)) == 1, "no apology once it was handled"
        # The form went on from the step taken on redelivery: its state was saved.
        await person.click("Веселівська")
        replies = await person.click("Матвіївка")
        assert any("Житлова субсидія" in str(r.inline) for r in replies), replies
    print(f"\n{outage}: 503 and apology after {answered_in:.2f} s (bounds of 1 s)")


async def test_a_button_press_during_an_outage_is_handled_on_redelivery(
    settings, proxy: TcpProxy, reference: None, tg: RecordingSession
) -> None:
    async with proxied_app(settings, proxy, QUICK) as app:
        bot = create_bot(settings, session=tg)
        person = BotClient(app.dispatcher, bot, tg, user_id=60_002)
        await to_step_one(person)
        await person.send("Весел")
        choice = next(r for r in reversed(person.messages.values()) if "Веселівська" in str(r.inline))
        data = next(d for row in choice.inline for label, d in row if "Веселівська" in label)
        press = press_update(900_101, 60_002, data, choice.message_id)
        async with webhook(app, bot) as http:
            proxy.mode = REFUSE
            assert await post(http, press) == 503
            alerts = [
                c.method
                for c in tg.calls
                if isinstance(c.method, AnswerCallbackQuery) and c.method.callback_query_id == "q900101"
            ]
            assert len(alerts) == 1 and alerts[0].show_alert and LATER_UK in (alerts[0].text or "")
            proxy.mode = PASS
            person.read()
            # The press was answered with the apology; Telegram refuses a second answer to it,
            # which must not undo the handled step.
            assert await post(http, press) == 200
        replies = person.read()
        assert any("Матвіївка" in str(r.inline) for r in replies), replies
        replies = await person.click("Матвіївка")
        assert any("Житлова субсидія" in str(r.inline) for r in replies), replies


async def test_english_speakers_are_told_in_english_and_bots_are_not_told(
    settings, proxy: TcpProxy, tg: RecordingSession
) -> None:
    async with proxied_app(settings, proxy, QUICK) as app:
        bot = create_bot(settings, session=tg)
        async with webhook(app, bot) as http:
            proxy.mode = REFUSE
            assert await post(http, message_update(900_201, 60_003, "/start", language="en")) == 503
            from_a_bot = message_update(900_202, 60_004, "hello")
            from_a_bot["message"]["from"]["is_bot"] = True
            assert await post(http, from_a_bot) == 503
        sent = [c.method.text for c in tg.calls if isinstance(c.method, SendMessage)]
        assert len(sent) == 1 and "technical problem" in sent[0] and "as soon as it is fixed" in sent[0]


async def test_a_bug_is_not_an_outage(settings, proxy: TcpProxy, tg: RecordingSession, sessionmaker) -> None:
    """A handler failing on a database error that is not about availability (here: a table the
    migrations did not make is gone) is answered 200 with the usual apology — a redelivery
    would fail the same way."""
    async with proxied_app(settings, proxy, QUICK) as app:
        bot = create_bot(settings, session=tg)
        async with sessionmaker.begin() as session:
            await session.execute(text("ALTER TABLE users RENAME TO users_gone"))
        try:
            async with webhook(app, bot) as http:
                assert await post(http, message_update(900_301, 60_005, "/start")) == 200
        finally:
            async with sessionmaker.begin() as session:
                await session.execute(text("ALTER TABLE users_gone RENAME TO users"))
        assert apologies(tg, 60_005) == []
        assert any("Вибачте" in c.method.text for c in tg.calls if isinstance(c.method, SendMessage))


# -- long polling ----------------------------------------------------------------------------------


async def test_polling_asks_to_send_again(settings, proxy: TcpProxy, tg: RecordingSession) -> None:
    async with proxied_app(settings, proxy, QUICK) as app:
        bot = create_bot(settings, session=tg)
        person = BotClient(app.dispatcher, bot, tg, user_id=60_006)
        proxy.mode = REFUSE
        replies = await person.send("/start")  # what aiogram's polling does: feed_update
        assert len(replies) == 1 and "надішліть його ще раз за кілька хвилин" in replies[0].text
        proxy.mode = PASS
        replies = await person.send("/start")
        assert "Вітаємо" in replies[-1].text


# -- delivery --------------------------------------------------------------------------------------


class CutAfterFirstSend(RecordingSession):
    """Telegram accepts a message; right after that the database goes away."""

    def __init__(self, proxy: TcpProxy) -> None:
        super().__init__()
        self.proxy = proxy

    async def make_request(self, bot, method, timeout=None):  # type: ignore[no-untyped-def]
        result = await super().make_request(bot, method, timeout)
        if isinstance(method, SendMessage) and self.proxy.mode == PASS and not getattr(self, "cut", False):
            self.cut = True
            self.proxy.mode = REFUSE
        return result


@pytest.mark.parametrize("expired_meanwhile", [False, True])
async def test_sent_marks_survive_a_blip(
    settings, proxy: TcpProxy, sessionmaker, expired_meanwhile: bool
) -> None:
    tg = CutAfterFirstSend(proxy)
    clock = FrozenClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    for tid in (61_001, 61_002):
        await add_resident(sessionmaker, tid)
    async with sessionmaker.begin() as session:
        for tid in (61_001, 61_002):
            user = await session.scalar(select(User).where(User.telegram_id == tid))
            await enqueue(
                session,
                user=user,
                kind="case_status_changed",
                urgent=True,
                payload={"number": f"VES-{tid}", "status": "in_progress", "team": "ЦНАП", "reason": None},
                due_at=clock.now(),
            )
    async with proxied_app(settings, proxy, QUICK, clock=clock) as app:
        bot = create_bot(settings, session=tg)
        deliverer = OutboxDeliverer(
            bot, app.sessionmaker, app.i18n, clock, settings, concurrency=1, rules=ReminderRules()
        )
        with pytest.raises(Exception) as failure:
            await deliverer.deliver_due()
        assert database_unavailable(failure.value)
        assert deliverer.pending_marks == 1
        with pytest.raises(Exception) as again:
            await deliverer.deliver_due()
        assert database_unavailable(again.value)
        assert deliverer.pending_marks == 1
        proxy.mode = PASS
        if expired_meanwhile:
            # The outage outlasted the send lease; another instance expired the row.
            clock.advance(seconds=deliverer.send_lease.total_seconds() + 1)
            other = OutboxDeliverer(bot, sessionmaker, app.i18n, clock, settings, rules=ReminderRules())
            assert await other.expire_stale_sending() == 1
        await deliverer.deliver_due()
        assert deliverer.pending_marks == 0
        # The row whose `sending` mark never committed is still claimed by us; once the claim
        # lease is over it goes out like any other.
        clock.advance(seconds=deliverer.claim_lease.total_seconds() + 1)
        await deliverer.deliver_due()

    async with sessionmaker() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars().all()
    assert [(r.state, r.last_error) for r in rows] == [(SENT, None), (SENT, None)]
    sends = [c.method.chat_id for c in tg.calls if isinstance(c.method, SendMessage)]
    assert sorted(sends) == [61_001, 61_002], "each message sent exactly once"
    assert OUTCOME_UNKNOWN not in {r.last_error for r in rows}
    assert FAILED not in {r.state for r in rows} and PENDING not in {r.state for r in rows}


# -- recovery from a silent outage -----------------------------------------------------------------


async def _until_handled(http: TestClient, first_id: int, user_id: int, limit: float) -> tuple[float, int]:
    started = time.monotonic()
    update_id = first_id
    while True:
        status = await post(http, message_update(update_id, user_id, "/start"))
        if status == 200:
            return time.monotonic() - started, update_id - first_id
        assert time.monotonic() - started < limit, "no recovery"
        update_id += 1
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("traffic_during_outage", [True, False])
async def test_recovery_from_a_silent_outage_takes_seconds(
    settings, proxy: TcpProxy, tg: RecordingSession, traffic_during_outage: bool
) -> None:
    # The default bounds (DatabaseSettings), as in production.
    async with proxied_app(settings, proxy, DbTimeouts.from_settings(settings.database)) as app:
        bot = create_bot(settings, session=tg)
        async with webhook(app, bot) as http:
            # A warm pool: several connections opened and idle.
            await asyncio.gather(
                *(post(http, message_update(901_000 + i, 62_000 + i, "/start")) for i in range(6))
            )
            proxy.mode = BLACKHOLE
            if traffic_during_outage:
                started = time.monotonic()
                assert await post(http, message_update(901_100, 62_100, "/start")) == 503
                failed_in = time.monotonic() - started
            else:
                await asyncio.sleep(3)
            proxy.mode = PASS
            recovered_in, failures = await _until_handled(http, 901_200, 62_200, limit=30)
    label = "with traffic during it" if traffic_during_outage else "idle during it"
    extra = f"; an update during it got its 503 after {failed_in:.1f} s" if traffic_during_outage else ""
    print(
        f"\nsilent outage ({label}): first update handled {recovered_in:.2f} s after it ended, "
        f"{failures} update(s) failed after it{extra}"
    )
    assert recovered_in < 5.0


# -- what counts as an outage ----------------------------------------------------------------------


def test_sqlite_busy_and_io_errors_are_outages_missing_tables_are_bugs(tmp_path) -> None:
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as busy:
        other.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as missing:
        other.execute("SELECT * FROM nowhere")
    holder.rollback()
    holder.close()
    other.close()
    wrapped = sa_exc.OperationalError("INSERT", {}, busy.value)
    wrapped.__cause__ = busy.value
    assert database_unavailable(busy.value) and database_unavailable(wrapped)
    assert not database_unavailable(missing.value)
    assert not database_unavailable(ValueError("a bug"))
    assert not database_unavailable(TimeoutError())  # not from the database: not an outage


async def test_sqlite_database_that_cannot_be_opened_is_an_outage(tmp_path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    try:
        with pytest.raises(Exception) as failure:
            async with create_sessionmaker(engine)() as session:
                await session.execute(text("SELECT 1"))
        assert database_unavailable(failure.value)
    finally:
        await engine.dispose()


def test_timeouts_come_from_settings(settings) -> None:
    bounds = DbTimeouts.from_settings(settings.database)
    assert (bounds.connect, bounds.command, bounds.pool) == (5.0, 10.0, 5.0)


async def test_instances_sharing_redis_apologise_once_per_update(settings) -> None:
    from redis.asyncio import Redis

    from bot.webhook import outage_memory
    from infra.once import RedisOnce

    probe = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        await probe.ping()
    except Exception as exc:  # whatever the client raises, Redis is not there
        pytest.skip(f"Redis not available: {type(exc).__name__}")
    finally:
        await probe.aclose()
    settings.redis.url = "redis://127.0.0.1:6379/0"
    first, second = outage_memory(settings), outage_memory(settings)
    assert isinstance(first, RedisOnce) and isinstance(second, RedisOnce)
    key = f"test:{time.time_ns()}"
    try:
        assert await first.first(key) is True
        assert await second.first(key) is False, "the other instance already told this update"
        assert await first.first(key) is False
    finally:
        await first.redis.delete(first.prefix + key)
        await first.close()
        await second.close()
    # Redis away: this process's memory decides (at worst one repeat per instance).
    lost = RedisOnce.from_url("redis://127.0.0.1:1/0", prefix="x:", ttl=60)
    try:
        assert await lost.first("k") is True
        assert await lost.first("k") is False
    finally:
        await lost.close()


async def test_handling_time_is_bounded(settings, proxy: TcpProxy, tg: RecordingSession) -> None:
    """An update stuck longer than WEBHOOK_HANDLE_TIMEOUT is given up: 503 (Telegram delivers it
    again) and the apology, well before Telegram stops waiting."""
    settings.telegram.webhook_handle_timeout = 1.0
    slow = DbTimeouts(connect=5.0, command=5.0, pool=5.0, idle_check=0)
    async with proxied_app(settings, proxy, slow) as app:
        bot = create_bot(settings, session=tg)
        async with webhook(app, bot) as http:
            assert await post(http, message_update(900_401, 60_007, "/start")) == 200
            proxy.mode = BLACKHOLE
            started = time.monotonic()
            assert await post(http, message_update(900_402, 60_007, "/start")) == 503
            took = time.monotonic() - started
    assert 1.0 <= took < 3.0, took
    assert len(apologies(tg, 60_007)) == 1


class SlowForOneChat(RecordingSession):
    """Telegram takes its time answering calls for one chat."""

    def __init__(self, slow_chat: int, delay: float) -> None:
        super().__init__()
        self.slow_chat, self.delay = slow_chat, delay

    async def make_request(self, bot, method, timeout=None):  # type: ignore[no-untyped-def]
        if getattr(method, "chat_id", None) == self.slow_chat:
            await asyncio.sleep(self.delay)
        return await super().make_request(bot, method, timeout)


async def test_updates_are_handled_concurrently(settings, db, pg_only: str, reference: None) -> None:
    """Handling inside the request does not serialise the webhook: a person whose reply is slow
    does not hold up another person's update. (PostgreSQL: SQLite has one writer at a time, and
    a reply is sent inside its update's transaction.)"""
    tg = SlowForOneChat(60_008, delay=2.0)
    app = build_app(settings, engine=db)
    bot = create_bot(settings, session=tg)
    try:
        async with webhook(app, bot) as http:

            async def timed(update: dict) -> tuple[int, float]:
                started = time.monotonic()
                status = await post(http, update)
                return status, time.monotonic() - started

            slow, fast = await asyncio.gather(
                timed(message_update(900_501, 60_008, "/start")),
                timed(message_update(900_502, 60_009, "/start")),
            )
    finally:
        await app.close_dispatcher()
    assert slow[0] == fast[0] == 200
    assert slow[1] >= 2.0 and fast[1] < 1.5, (slow, fast)


@pytest.mark.sqlite_only
async def test_sqlite_locked_by_a_long_writer_apologises_then_handles_the_redelivery(
    settings, db_url: str, db, reference: None, tg: RecordingSession
) -> None:
    """The embedded database held by another writer (a backup, a migration) longer than the
    handling bound: 503 and one apology; once it is free the redelivery is handled."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's single writer")
    settings.telegram.webhook_handle_timeout = 1.0
    app = build_app(settings, engine=db)
    bot = create_bot(settings, session=tg)
    person = BotClient(app.dispatcher, bot, tg, user_id=60_010)
    try:
        await to_step_one(person)
        step = message_update(900_601, 60_010, "Весел")
        path = db_url.split(":///", 1)[1]
        async with webhook(app, bot) as http:
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                assert await post(http, step) == 503
                assert await post(http, step) == 503
            finally:
                holder.rollback()
                holder.close()
            assert len(apologies(tg, 60_010)) == 1
            person.read()
            assert await post(http, step) == 200
            replies = person.read()
            assert replies and "Веселівська" in str(replies[-1].inline), replies
    finally:
        await app.close_dispatcher()
