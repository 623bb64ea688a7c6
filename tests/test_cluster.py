"""One bot across instances: three `hromada-bot webhook` processes on one PostgreSQL and Redis,
behind HAProxy on loopback, talking to a Bot API stand-in that enforces Telegram's limits.

Twenty residents go through first contact and the whole intake form at once (pressing "Send"
twice, as impatient people do), the workers of the teams press "Take" on their notices (twice as
well), and 150 due reminders drain meanwhile. Then: no duplicate case, assignment or reminder
(database and stand-in), every update answered, and what reached "Telegram" kept its limits —
never more than 30 messages in any one second, never two messages to one chat less than 1 s
apart, no 429.

The stand-in itself is checked first, against aiogram's real session (no processes needed).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter, TelegramServerError
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlalchemy import func, select

from infra.telegram_session import HromadaAiohttpSession, MalformedAnswer
from models import Case, CaseEvent, OutboxMessage
from models.outbox import SENT
from tests.pgtools import PG_ADMIN_DSN, pg_problem
from tools.cluster import Cluster, FlowAbandoned, ensure_haproxy, file_request
from tools.telegram_standin import (
    Call,
    Fault,
    TelegramStandIn,
    max_in_any_second,
    per_chat_gaps,
    per_chat_violations,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TOKEN = "123456:TEST-token-for-the-local-stand-in-api"

RESIDENTS = 20
RESIDENT_BASE = 7_100_000
WORKER_BASE = 7_200_000
REMINDERS = 150
REMINDER_BASE = 7_300_000
# Each reply normally comes within a second or two; a reply answered 429 never comes.
STEP_TIMEOUT = 10.0


# -- the stand-in ---------------------------------------------------------------------------------
@pytest.fixture(params=["same-loop", "own-thread", "own-process"])
async def standin_bot(request):
    standin = TelegramStandIn(token=TOKEN)
    base = await standin.start(thread=request.param == "own-thread", process=request.param == "own-process")
    bot = Bot(TOKEN, session=HromadaAiohttpSession(api=TelegramAPIServer.from_base(base)))
    yield standin, bot
    await bot.session.close()
    await standin.stop()


async def test_standin_answers_the_bots_methods_in_telegrams_shapes(standin_bot) -> None:
    standin, bot = standin_bot
    assert (await bot.get_me()).id == 123456
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Так", callback_data="x:1")]])
    sent = await bot.send_message(501, "Вітаємо", reply_markup=keyboard)
    assert sent.chat.id == 501 and sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "x:1"
    await standin.synced()
    assert standin.keyboard(501, "x:1") == sent.message_id
    edited = await bot.edit_message_text("Змінено", chat_id=501, message_id=sent.message_id)
    assert edited.message_id == sent.message_id and edited.text == "Змінено"
    await standin.synced()
    assert standin.keyboard(501, "x:1") is None, "the edit took the keyboard away"
    assert await bot.answer_callback_query("q-1", text="ok") is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("q-1")  # one answer per press, as Telegram
    album = await bot.send_media_group(
        502, [{"type": "photo", "media": "f1"}, {"type": "photo", "media": "f2"}]
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
    assert (await bot.copy_message(503, 501, sent.message_id)).message_id > 0
    assert (await bot.get_file("doc-1")).file_path
    assert await bot.delete_message(501, sent.message_id) is True
    assert await bot.set_webhook("https://bot.example.org/hook", secret_token="s" * 32) is True
    await standin.synced()
    assert [c.method for c in standin.calls if c.ok][:3] == ["getMe", "sendMessage", "editMessageText"]


async def test_standin_enforces_telegrams_limits_with_retry_after(standin_bot) -> None:
    standin, bot = standin_bot
    await bot.send_message(601, "one")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(601, "too soon for this chat")
    assert caught.value.retry_after >= 1
    # Edits and callback answers are not message-creating: not limited.
    await bot.edit_message_text("edit", chat_id=601, message_id=1000)
    await standin.synced()
    refused = 0
    for chat in range(700, 740):  # 40 chats, one message each, as fast as possible
        try:
            await bot.send_message(chat, "x")
        except TelegramRetryAfter:
            refused += 1
    await standin.synced()
    accepted = [c for c in standin.sends() if c.ok]
    assert len(accepted) <= 30 or accepted[-1].at - accepted[-31].at >= 1.0 - standin.tolerance
    assert refused >= 40 + 1 - 30, "at most 30 messages are accepted in one second"
    assert standin.responses_429() == refused + 1
    limited = next(c for c in standin.calls if c.limited)
    assert limited.retry_after is not None and limited.retry_after >= 1


# Faults are injected into a stand-in in this process (its loop or a thread of its own).
@pytest.mark.parametrize("standin_bot", ["same-loop", "own-thread"], indirect=True)
async def test_standin_faults_look_like_a_broken_network(standin_bot) -> None:
    standin, bot = standin_bot
    standin.inject(Fault("html", status=502, method="sendMessage"))
    with pytest.raises(MalformedAnswer):
        await bot.send_message(801, "x")
    standin.inject(Fault("cut", method="sendMessage"))
    with pytest.raises(MalformedAnswer):
        await bot.send_message(802, "x")
    standin.inject(Fault("error", status=500, method="sendMessage"))
    with pytest.raises(TelegramServerError):
        await bot.send_message(803, "x")
    standin.inject(Fault("delay", delay=0.3, method="getMe"))
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started >= 0.3
    assert (await bot.send_message(804, "x")).chat.id == 804, "faults are used up"
    assert [c.fault for c in standin.calls if c.fault] == ["html", "cut", "error"]


def test_rate_checks_count_every_attempt() -> None:
    def call(seq: int, at: float, chat: int, status: int = 200) -> Call:
        return Call(seq, at, "sendMessage", chat, {}, status)

    calls = [call(i, i * 0.02, 1000 + i) for i in range(31)]  # 31 in 0.6 s
    assert max_in_any_second(calls) == 31
    assert max_in_any_second(calls[:30]) == 30
    spaced = [call(0, 0.0, 5), call(1, 0.999, 5, 429), call(2, 2.0, 5)]
    assert per_chat_violations(spaced) == 0, "0.999 s is within the jitter tolerance"
    spaced = [call(0, 0.0, 5), call(1, 0.9, 5, 429), call(2, 2.0, 5)]
    assert per_chat_violations(spaced) == 1 and min(per_chat_gaps(spaced)) == pytest.approx(0.9)


# -- three instances behind HAProxy -----------------------------------------------------------
async def _need_services() -> None:
    problem = await pg_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and does not answer at {PG_ADMIN_DSN}: {problem}")
        pytest.skip(f"PostgreSQL not available: {problem}")
    if ensure_haproxy() is None:
        if IN_CI:
            pytest.fail("haproxy is required in CI (apt-get install -y haproxy) and could not be installed")
        pytest.skip("haproxy is not installed and cannot be installed here (not root or no apt-get)")


async def test_three_instances_behind_haproxy_keep_limits_and_never_double() -> None:
    await _need_services()
    rng = random.Random(11)
    t0 = time.monotonic()
    async with Cluster(instances=3) as cluster:
        print(f"cluster up in {time.monotonic() - t0:.1f} s")
        routes = await cluster.routes()
        teams = await cluster.add_workers(1, WORKER_BASE)
        reminder_chats = [REMINDER_BASE + i for i in range(REMINDERS)]
        started = time.monotonic()
        cluster.standin.loop_lag_max = 0.0
        stop = asyncio.Event()
        workers = [cluster.worker(tg, timeout=STEP_TIMEOUT) for ids in teams.values() for tg in ids]
        taking = [asyncio.create_task(w.take_cases(stop, double_tap=True)) for w in workers]

        async def resident(i: int) -> bool:
            await asyncio.sleep(i * 0.1)
            person = cluster.person(RESIDENT_BASE + i, timeout=STEP_TIMEOUT)
            try:
                await file_request(
                    person, routes[i % len(routes)], think=lambda: rng.uniform(0.2, 0.6), double_tap=True
                )
            except FlowAbandoned:
                return False
            return True

        await cluster.add_due_reminders(reminder_chats)
        finished = await asyncio.gather(*(resident(i) for i in range(RESIDENTS)))

        # Let the notices, the takes and the reminders finish (bounded).
        sm = cluster.sessionmaker
        assert sm is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            async with sm() as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.state.in_(("pending", "sending")))
                )
                untaken = await session.scalar(
                    select(func.count()).select_from(Case).where(Case.status == "new")
                )
            if not waiting and not untaken:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)  # the last takes' answers
        stop.set()
        await asyncio.gather(*taking)
        await cluster.standin.synced()
        elapsed = time.monotonic() - started
        stats = await cluster.balancer_stats()
        calls = [c for c in cluster.standin.calls if c.at >= started]

        async with sm() as session:
            per_resident = (
                await session.execute(select(Case.resident_id, func.count()).group_by(Case.resident_id))
            ).all()
            cases = (await session.scalars(select(Case))).all()
            created = Counter(
                (await session.scalars(select(CaseEvent.case_id).where(CaseEvent.kind == "created"))).all()
            )
            assigned = Counter(
                (await session.scalars(select(CaseEvent.case_id).where(CaseEvent.kind == "assigned"))).all()
            )
            to_progress = Counter(
                (
                    await session.scalars(
                        select(CaseEvent.case_id).where(
                            CaseEvent.kind == "status", CaseEvent.to_status == "in_progress"
                        )
                    )
                ).all()
            )
            notices = Counter(
                (
                    await session.execute(
                        select(OutboxMessage.kind, OutboxMessage.case_id, OutboxMessage.chat_id).where(
                            OutboxMessage.case_id.is_not(None)
                        )
                    )
                ).all()
            )
            reminder_states = Counter(
                (
                    await session.scalars(
                        select(OutboxMessage.state).where(OutboxMessage.chat_id.in_(reminder_chats))
                    )
                ).all()
            )

    # The balancer spread the updates over all three.
    assert len(stats) == 3 and all(s["requests"] > 0 for s in stats.values()), stats

    # Never doubled: one case per resident (each pressed "Send" twice), one "created" event per
    # case, at most one assignment and one move to "in progress" per case (each worker pressed
    # "Take" twice), one notice of each kind per case and chat, one reminder per reminder chat.
    assert all(n == 1 for _resident, n in per_resident), per_resident
    assert all(n == 1 for n in created.values()), created
    assert all(n == 1 for n in assigned.values()), assigned
    assert all(n == 1 for n in to_progress.values()), to_progress
    assert all(n == 1 for n in notices.values()), [k for k, n in notices.items() if n > 1]
    reminders_received = Counter(
        c.chat_id for c in calls if c.ok and c.method == "sendMessage" and c.chat_id in set(reminder_chats)
    )
    assert all(n == 1 for n in reminders_received.values()), [
        k for k, n in reminders_received.items() if n > 1
    ]

    # Whole: every resident finished, every case filed and taken, every reminder sent.
    sends = [c for c in calls if c.creates_message]
    figures = {
        "seconds": round(elapsed, 1),
        "residents_finished": sum(finished),
        "cases": len(cases),
        "cases_in_progress": sum(1 for c in cases if c.status == "in_progress"),
        "reminders_sent": reminder_states.get(SENT, 0),
        "reminder_states": dict(reminder_states),
        "message_calls": len(sends),
        "max_in_any_second": max_in_any_second(sends, window=1.0 - cluster.standin.tolerance),
        "per_chat_violations": per_chat_violations(sends, tolerance=cluster.standin.tolerance),
        "min_per_chat_gap_s": round(min(per_chat_gaps(sends), default=1.0), 3),
        "responses_429": cluster.standin.responses_429(calls),
        "responses_429_by_limit": dict(Counter(c.limit for c in calls if c.limited)),
        "standin_loop_lag_max_ms": round(cluster.standin.loop_lag_max * 1000, 1),
        "balancer": stats,
    }
    print(figures)
    problems = []
    if sum(finished) != RESIDENTS or len(cases) != RESIDENTS:
        problems.append("not every resident's request was filed")
    if figures["cases_in_progress"] != RESIDENTS:
        problems.append("not every case was taken")
    if figures["reminders_sent"] != REMINDERS or len(reminders_received) != REMINDERS:
        problems.append("not every reminder was sent")
    if figures["max_in_any_second"] > 30:
        problems.append("more than 30 messages in one second across the instances")
    if figures["per_chat_violations"]:
        problems.append("two messages to one chat less than 1 s apart")
    if figures["responses_429"]:
        problems.append("Telegram answered 429")
    assert not problems, f"{'; '.join(problems)}: {figures}"
