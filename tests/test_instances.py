"""Several instances of the bot on one database without Redis.

Each "instance" here is what a second process would build: its own app (dispatcher, FSM
storage, per-person lock) or its own scheduler runtime, over its own engine, on the same
database. The per-person lock across instances is a PostgreSQL advisory lock; on SQLite (one
file, one process) the lock stays in the process and those tests are PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
import pytest_asyncio
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import SendMessage
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.delivery import OutboxDeliverer
from bot.factory import App, build_app, create_bot
from bot.offline import BotClient, RecordingSession
from bot.scheduler import DeliveryRuntime
from infra.db import create_engine, create_sessionmaker
from infra.isolation import PersonLockTimeout, PgAdvisoryIsolation, person_key, try_job_lock
from models import (
    Case,
    MobileOfficeSchedule,
    MobileOfficeSubscription,
    OutboxMessage,
    Settlement,
    User,
    Worker,
)
from models.outbox import PENDING, SENT
from services.clock import FrozenClock
from services.outbox import enqueue
from services.reminders import ReminderRules
from services.visits import VisitService
from tests.factories import add_resident, add_worker
from tests.seeded_cases import make_case
from tests.test_intake import DESCRIPTION, _to_description

KYIV = ReminderRules().tz
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=KYIV).astimezone(UTC)  # Monday, 10:00 in Kyiv


def _url(db: AsyncEngine) -> str:
    return db.url.render_as_string(hide_password=False)


def _postgres_only(db: AsyncEngine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("SQLite is one file used by one process: the per-person lock stays in the process")


class _Instance:
    """A second bot process on the same database: its own engine and app."""

    def __init__(self, settings, bot, tg) -> None:
        self.app: App = build_app(settings)  # an engine of its own, from the settings
        self.bot, self.tg = bot, tg

    def client(self, user_id: int) -> BotClient:
        return BotClient(self.app.dispatcher, self.bot, self.tg, user_id=user_id)

    async def close(self) -> None:
        await self.app.close()


@pytest_asyncio.fixture(loop_scope="session")
async def other(settings, db, bot, tg) -> AsyncIterator[_Instance]:
    instance = _Instance(settings, bot, tg)
    yield instance
    await instance.close()


# -- per-person lock through the whole bot ----------------------------------------------------------
@pytest.mark.postgres_only
async def test_album_split_across_two_instances_keeps_every_file(
    app, make_client, other, reference, db
) -> None:
    """An album's photos are separate updates; behind a load balancer they reach different
    instances at the same moment. Both must end up in the draft."""
    _postgres_only(db)
    assert isinstance(app.dispatcher.workflow_data["event_isolation"], PgAdvisoryIsolation)
    for round_ in range(5):
        here = make_client()
        await here.send("/start")
        await here.click("Українська")
        await here.click("Погоджуюсь")
        await _to_description(here)
        await here.send(DESCRIPTION)
        there = other.client(here.user.id)
        await asyncio.gather(here.send_photo(), there.send_photo(), here.send_photo(), there.send_photo())
        here.read()
        await here.click("Готово")
        await here.click("Для себе")
        replies = await here.share_contact()
        assert "Файлів: 4" in replies[-1].text, (round_, replies[-1].text)


# -- the isolation itself ---------------------------------------------------------------------------
KEY = StorageKey(bot_id=42, chat_id=1001, user_id=1001)
OTHER_KEY = StorageKey(bot_id=42, chat_id=1002, user_id=1002)


@pytest_asyncio.fixture(loop_scope="session")
async def two_isolations(db) -> AsyncIterator[tuple[PgAdvisoryIsolation, PgAdvisoryIsolation]]:
    _postgres_only(db)
    first, second = PgAdvisoryIsolation(_url(db)), PgAdvisoryIsolation(_url(db))
    yield first, second
    await first.close()
    await second.close()


async def _hold(
    isolation: PgAdvisoryIsolation, key: StorageKey, entered: asyncio.Event, leave: asyncio.Event
):
    async with isolation.lock(key):
        entered.set()
        await leave.wait()


async def _enters_within(isolation: PgAdvisoryIsolation, key: StorageKey, seconds: float) -> bool:
    async def enter() -> None:
        async with isolation.lock(key):
            pass

    try:
        await asyncio.wait_for(enter(), seconds)
    except TimeoutError:
        return False
    return True


@pytest.mark.postgres_only
async def test_same_person_waits_for_the_other_instance(two_isolations) -> None:
    first, second = two_isolations
    entered, leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(first, KEY, entered, leave))
    await entered.wait()
    assert not await _enters_within(second, KEY, 0.5)  # held elsewhere: it waits
    waiter = asyncio.create_task(_enters_within(second, KEY, 5))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    leave.set()
    await holder
    assert await waiter  # and gets it once the other instance is done


@pytest.mark.postgres_only
async def test_other_people_go_in_parallel(two_isolations) -> None:
    first, second = two_isolations
    entered, leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(first, KEY, entered, leave))
    await entered.wait()
    try:
        assert await _enters_within(second, OTHER_KEY, 1)
        assert await _enters_within(first, OTHER_KEY, 1)
    finally:
        leave.set()
        await holder


@pytest.mark.postgres_only
async def test_one_process_two_updates_of_one_person_take_turns(two_isolations) -> None:
    """PostgreSQL's session locks are re-entrant for their connection: the in-process lock is
    what keeps two local updates of one person apart."""
    first, _ = two_isolations
    inside, most = 0, 0

    async def update() -> None:
        nonlocal inside, most
        async with first.lock(KEY):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(update() for _ in range(5)))
    assert most == 1
    assert first._local == {}  # nothing kept for people who are not waiting


@pytest.mark.postgres_only
async def test_lock_goes_with_its_connection_and_the_instance_reconnects(two_isolations, db, caplog) -> None:
    first, second = two_isolations
    entered, leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(first, KEY, entered, leave))
    await entered.wait()
    assert not await _enters_within(second, KEY, 0.3)
    # The holder's connection dies (a network cut, a restarted pooler, an admin's kill).
    k = person_key(KEY)
    async with db.connect() as conn:
        pids = (
            (
                await conn.execute(
                    text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND classid = :hi AND objid = :lo AND objsubid = 1"
                    ),
                    {"hi": (k >> 32) & 0xFFFFFFFF, "lo": k & 0xFFFFFFFF},
                )
            )
            .scalars()
            .all()
        )
        assert len(pids) == 1
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
    assert await _enters_within(second, KEY, 3)  # PostgreSQL released it
    with caplog.at_level(logging.WARNING, logger="infra.isolation"):
        leave.set()
        await holder  # the holder ends without an error; the loss is logged
    assert "lost" in caplog.text
    # The first instance carries on over a new connection, and its locks hold again.
    entered2, leave2 = asyncio.Event(), asyncio.Event()
    holder2 = asyncio.create_task(_hold(first, KEY, entered2, leave2))
    await asyncio.wait_for(entered2.wait(), 3)
    assert not await _enters_within(second, KEY, 0.3)
    leave2.set()
    await holder2
    assert await _enters_within(second, KEY, 1)


@pytest.mark.postgres_only
async def test_waiting_is_bounded(two_isolations, db) -> None:
    first, _ = two_isolations
    impatient = PgAdvisoryIsolation(_url(db), wait_timeout=0.3)
    entered, leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(first, KEY, entered, leave))
    await entered.wait()
    try:
        with pytest.raises(PersonLockTimeout, match="another instance"):
            async with impatient.lock(KEY):
                pass
    finally:
        leave.set()
        await holder
        await impatient.close()


@pytest.mark.postgres_only
async def test_cancelled_waiter_leaves_no_lock_behind(two_isolations) -> None:
    first, second = two_isolations
    entered, leave = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_hold(first, KEY, entered, leave))
    await entered.wait()
    for _ in range(20):  # cancelled at different points of its polling
        waiter = asyncio.create_task(_enters_within(second, KEY, 5))
        await asyncio.sleep(0.003)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    leave.set()
    await holder
    await asyncio.sleep(0.05)  # a take-back of a lock granted to a cancelled waiter
    assert await _enters_within(first, KEY, 1)
    assert await _enters_within(second, KEY, 1)
    assert second._local == {}


# -- scheduled jobs across instances ----------------------------------------------------------------
class _Runtime:
    """The scheduler side of one instance: its own engine, bot session and deliverer."""

    def __init__(self, url: str, app: App, clock: FrozenClock, batch_size: int = 100) -> None:
        self.engine = create_engine(url)
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)
        self.tg = RecordingSession()
        self.bot = create_bot(app.settings, session=self.tg)
        deliverer = OutboxDeliverer(
            self.bot, self.sessionmaker, app.i18n, clock, app.settings, batch_size=batch_size
        )
        self.runtime = DeliveryRuntime(deliverer, self.sessionmaker, clock, app.settings)

    def sent(self) -> list[int]:
        return [c.method.chat_id for c in self.tg.calls if isinstance(c.method, SendMessage)]

    async def close(self) -> None:
        await self.engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def runtimes(app, db) -> AsyncIterator[tuple[_Runtime, _Runtime]]:
    clock = FrozenClock(NOW)
    pair = (_Runtime(_url(db), app, clock, batch_size=5), _Runtime(_url(db), app, clock, batch_size=5))
    yield pair
    for r in pair:
        await r.close()


async def _due_planning_work(sessionmaker) -> int:
    """Resolved renewable cases, mobile-office subscribers for tomorrow's trip and a worker with
    visits today. Returns how many reminders planning must produce."""
    residents = list(range(3001, 3013))
    for tid in residents:
        await add_resident(sessionmaker, tid)
    for tid in residents:
        case_id = await make_case(sessionmaker, tid, service_code="idp_support", status="resolved")
        async with sessionmaker.begin() as session:
            (await session.get(Case, case_id)).closed_at = datetime(2026, 10, 1, 12, 0, tzinfo=KYIV)
    expected = 2 * len(residents)  # idp_support: 30 and 7 days before renewal
    async with sessionmaker.begin() as session:
        matviivka = await session.scalar(select(Settlement).where(Settlement.code == "matviivka"))
        session.add(
            MobileOfficeSchedule(
                settlement_id=matviivka.id,
                weekday=1,  # Tuesday: tomorrow
                every_weeks=1,
                start_time=time(10, 0),
                end_time=time(12, 0),
                slot_minutes=20,
                place="Клуб",
                valid_from=date(2026, 11, 1),
            )
        )
        users = (await session.scalars(select(User).where(User.telegram_id.in_(residents)))).all()
        for user in users:
            session.add(MobileOfficeSubscription(user_id=user.id, settlement_id=matviivka.id))
    expected += len(residents)
    worker = await add_worker(sessionmaker, 3901, "ves-csp")
    clock = FrozenClock(NOW)
    for tid in residents[:2]:
        case_id = await make_case(sessionmaker, tid, service_code="home_care")
        async with sessionmaker.begin() as session:
            starts = datetime(2026, 11, 23, 14 + tid % 2, 0, tzinfo=KYIV)
            await VisitService(session, clock).schedule(
                await session.get(Case, case_id),
                await session.get(Worker, worker.id),
                starts,
                starts + timedelta(hours=1),
                "",
                "",
            )
    expected += 1  # one agenda for the worker
    return expected


async def _planned(sessionmaker) -> Counter[str]:
    async with sessionmaker() as session:
        keys = (
            await session.scalars(
                select(OutboxMessage.dedupe_key).where(
                    OutboxMessage.kind.in_(("renewal_due", "mo_day_before", "visit_agenda"))
                )
            )
        ).all()
    return Counter(keys)


async def test_two_instances_plan_each_reminder_once(runtimes, sessionmaker, reference, caplog) -> None:
    expected = await _due_planning_work(sessionmaker)
    a, b = runtimes
    with caplog.at_level(logging.INFO, logger="bot.scheduler"):
        for _ in range(3):
            await asyncio.gather(
                a.runtime.plan_renewals(),
                b.runtime.plan_renewals(),
                a.runtime.plan_mobile_office(),
                b.runtime.plan_mobile_office(),
                a.runtime.plan_agendas(),
                b.runtime.plan_agendas(),
            )
    planned = await _planned(sessionmaker)
    assert len(planned) == expected and set(planned.values()) == {1}
    assert "failed" not in caplog.text
    # What the runs reported adds up to the rows: no run counted rows another one wrote.
    reported = sum(
        int(r.getMessage().split(": ")[1].split()[0]) for r in caplog.records if "planned" in r.getMessage()
    )
    assert reported == expected


@pytest.mark.postgres_only
async def test_a_job_running_at_another_instance_is_skipped_here(
    runtimes, sessionmaker, db, reference
) -> None:
    _postgres_only(db)
    expected = await _due_planning_work(sessionmaker)
    a, _ = runtimes
    async with sessionmaker.begin() as session:  # another instance is planning renewals now
        assert await try_job_lock(session, "renewals")
        await a.runtime.plan_renewals()
        await a.runtime.plan_mobile_office()  # another job is not held up
    planned = await _planned(sessionmaker)
    assert not any(k.startswith("renewal:") for k in planned)
    assert sum(k.startswith("mo:") for k in planned) > 0
    await a.runtime.plan_renewals()  # the other run ended (here: without planning): runs now
    await a.runtime.plan_agendas()
    assert len(await _planned(sessionmaker)) == expected


async def test_the_same_dedupe_key_from_two_transactions_at_once_adds_one_row(
    sessionmaker, db, reference
) -> None:
    await add_resident(sessionmaker, 3501)
    other_engine = create_engine(_url(db))
    others = create_sessionmaker(other_engine)
    try:
        async with sessionmaker() as first:
            await first.begin()
            user = await first.scalar(select(User).where(User.telegram_id == 3501))
            row = await enqueue(first, user=user, kind="renewal_due", due_at=NOW, dedupe_key="same")
            assert row is not None and row.id is not None

            async def second() -> object:
                async with others.begin() as session:
                    user2 = await session.scalar(select(User).where(User.telegram_id == 3501))
                    return await enqueue(
                        session, user=user2, kind="renewal_due", due_at=NOW, dedupe_key="same"
                    )

            racer = asyncio.create_task(second())
            await asyncio.sleep(0.3)  # it waits on our uncommitted row (PG) or for the write lock (SQLite)
            assert not racer.done()
            await first.commit()
            assert await racer is None
    finally:
        await other_engine.dispose()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


async def test_two_deliverers_send_each_message_once(runtimes, sessionmaker, reference) -> None:
    people = list(range(4001, 4041))
    for tid in people:
        await add_resident(sessionmaker, tid)
    async with sessionmaker.begin() as session:
        for user in (await session.scalars(select(User).where(User.telegram_id.in_(people)))).all():
            await enqueue(
                session,
                user=user,
                kind="renewal_due",
                payload={"number": "VES-1", "service": "S", "due": "2027-01-01"},
                due_at=NOW - timedelta(minutes=1),
            )
    a, b = runtimes
    await asyncio.gather(a.runtime.deliver(), b.runtime.deliver(), a.runtime.deliver(), b.runtime.deliver())
    sent = Counter(a.sent() + b.sent())
    assert sorted(sent) == people and set(sent.values()) == {1}
    assert a.sent() and b.sent()  # both instances took a share
    async with sessionmaker() as session:
        states = Counter((await session.scalars(select(OutboxMessage.state))).all())
    assert states == {SENT: len(people)} and PENDING not in states
