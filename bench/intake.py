"""Intake CPU-cost profile: the whole new-request form through the real dispatcher, next to bare aiogram.

N residents (default 200, consent already given) each drive the complete form — /new, hromada
search, hromada, settlement, service, a vulnerability marker, Done, description, "no files",
"for myself", their own contact, confirm: 12 updates each — concurrently through the real
Dispatcher (`bot.factory.build_app`: DB-session and user middlewares, i18n, our SQL FSM storage,
every router) on a throwaway PostgreSQL database (127.0.0.1:5432, like
tests/pgtools.create_database), migrated with `infra.migrate.upgrade` and seeded with
data/sample_reference.yaml. Telegram is a recording session (no network).

In the same run and over the same updates, a bare aiogram Dispatcher with one trivial async
handler per update type is fed the same way: a yardstick of what aiogram alone costs, whose
handler returns without a reply. For context a second bare Dispatcher answers like aiogram's
echo bot (a message gets `message.answer(text)`, a press `query.answer()`): one API call
through the same recording session, where the real flow makes one to three. The same number of `/help` updates
(the cheapest path through the real app: middlewares, the user row, FSM pre-read, one reply)
is measured too (over a quarter of the updates). Rounds alternate full / bare / echo / floor;
medians are quoted.
Every full round is checked: exactly N new cases.

At most --inflight updates are in the dispatcher at once (like a webhook worker pool); each
update uses one database connection (the FSM storage joins the update's session).

This is a profile of CPU cost per update, with no pass/fail: how the bot behaves for people
(latency, the send budget, losses under load, several instances) is measured over real HTTP by
bench/load.py, whose targets are the ones that count. The ratio to a no-op dispatcher it once
had as a target says little about that and is printed only as a figure.

Usage:  python bench/intake.py [--residents 200] [--rounds 3] [--inflight 16]
The last line printed is one JSON object with the figures (no target, no meets_target).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher  # noqa: E402
from aiogram.types import (  # noqa: E402
    CallbackQuery,
    Chat,
    Contact,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from sqlalchemy import func, select  # noqa: E402

from bot.factory import build_app, create_bot, settle_for_serving  # noqa: E402
from bot.offline import RecordingSession  # noqa: E402
from handlers.kit.callbacks import IntakeCb  # noqa: E402
from infra.migrate import upgrade  # noqa: E402
from infra.settings import DatabaseSettings, load_settings  # noqa: E402
from models import Case, Hromada, Resident, Service, Settlement  # noqa: E402
from models import User as DbUser  # noqa: E402
from services.reference_data import load_reference_file  # noqa: E402
from tests.pgtools import create_database, drop_database  # noqa: E402
from tools.cluster import DESCRIPTION, ROUTES  # noqa: E402

SAMPLE = ROOT / "data" / "sample_reference.yaml"
UPDATES_PER_FLOW = 12
# The same routes and description as the load bench drives over HTTP (tools/cluster.py).


class BenchSession(RecordingSession):
    """Remembers the newest inline keyboard per chat (to find the confirm button), keeps no log."""

    def __init__(self) -> None:
        super().__init__()
        self.last_markup: dict[int, InlineKeyboardMarkup] = {}

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        markup = getattr(method, "reply_markup", None)
        chat_id = getattr(method, "chat_id", None)
        if isinstance(markup, InlineKeyboardMarkup) and isinstance(chat_id, int):
            self.last_markup[chat_id] = markup
        result = await super().make_request(bot, method, timeout)
        self.calls.clear()
        return result


_ids = itertools.count(1)


class Person:
    """Builds the updates one Telegram user would send (like bot.offline.BotClient)."""

    def __init__(self, user_id: int) -> None:
        self.user = User(id=user_id, is_bot=False, first_name="R", language_code="uk")
        self.chat = Chat(id=user_id, type="private")
        self.bot_user = User(id=42, is_bot=True, first_name="Hromada")

    def text(self, text: str) -> Update:
        return Update(update_id=next(_ids), message=self._message(text=text))

    def contact(self, phone: str) -> Update:
        contact = Contact(phone_number=phone, first_name="R", user_id=self.user.id)
        return Update(update_id=next(_ids), message=self._message(contact=contact))

    def click(self, data: str) -> Update:
        message = Message(
            message_id=1, date=datetime.now(UTC), chat=self.chat, from_user=self.bot_user, text=""
        )
        query = CallbackQuery(
            id=f"cb{next(_ids)}", from_user=self.user, chat_instance="ci", message=message, data=data
        )
        return Update(update_id=next(_ids), callback_query=query)

    def _message(self, **fields: Any) -> Message:
        return Message(
            message_id=next(_ids), date=datetime.now(UTC), chat=self.chat, from_user=self.user, **fields
        )


async def route_ids(sessionmaker) -> list[tuple[str, int, int, int]]:
    out = []
    async with sessionmaker() as session:
        for text, h_code, st_code, sv_code in ROUTES:
            h = await session.scalar(select(Hromada).where(Hromada.code == h_code))
            st = await session.scalar(
                select(Settlement).where(Settlement.hromada_id == h.id, Settlement.code == st_code)
            )
            sv = await session.scalar(select(Service).where(Service.code == sv_code))
            out.append((text, h.id, st.id, sv.id))
    return out


async def add_residents(sessionmaker, user_ids: list[int]) -> None:
    async with sessionmaker.begin() as session:
        for uid in user_ids:
            user = DbUser(telegram_id=uid, language="uk")
            session.add(user)
            await session.flush()
            session.add(Resident(user_id=user.id, consent_at=datetime.now(UTC), consent_version="bench"))


def flow_steps(person: Person, route: tuple[str, int, int, int], tg: BenchSession) -> list[Any]:
    """The 12 updates of one filing; the last is built from the summary's confirm button."""
    text, hromada_id, settlement_id, service_id = route

    def confirm() -> Update:
        markup = tg.last_markup[person.chat.id]
        data = next(
            b.callback_data
            for row in markup.inline_keyboard
            for b in row
            if "confirm" in (b.callback_data or "")
        )
        return person.click(data)

    return [
        lambda: person.text("/new"),
        lambda: person.text(text),
        lambda: person.click(IntakeCb(action="h", value=str(hromada_id)).pack()),
        lambda: person.click(IntakeCb(action="st", value=str(settlement_id)).pack()),
        lambda: person.click(IntakeCb(action="sv", value=str(service_id)).pack()),
        lambda: person.click(IntakeCb(action="vul", value="elderly_alone").pack()),
        lambda: person.click(IntakeCb(action="vdone").pack()),
        lambda: person.text(DESCRIPTION),
        lambda: person.click(IntakeCb(action="adone").pack()),
        lambda: person.click(IntakeCb(action="beh", value="self").pack()),
        lambda: person.contact(f"+38050{person.user.id % 10_000_000:07d}"),
        confirm,
    ]


Route = tuple[str, int, int, int]


def flows_for(user_ids: list[int], routes: list[Route], tg: BenchSession) -> list[list[Any]]:
    """One filing per resident, spread over the routes."""
    return [flow_steps(Person(u), routes[i % len(routes)], tg) for i, u in enumerate(user_ids)]


async def drive(dp: Dispatcher, bot: Bot, flows: list[list[Any]], inflight: int) -> float:
    gate = asyncio.Semaphore(inflight)

    async def one(steps: list[Any]) -> None:
        for make in steps:
            update = make()
            async with gate:
                await dp.feed_update(bot, update)

    started = time.perf_counter()
    await asyncio.gather(*(one(steps) for steps in flows))
    return time.perf_counter() - started


BASELINE_REPEATS = 5


async def baseline(dp: Dispatcher, bot: Bot, tg: BenchSession, user_ids, routes, inflight: int) -> float:
    """Median seconds of BASELINE_REPEATS runs of the same residents' updates through `dp`."""
    runs = []
    for _ in range(BASELINE_REPEATS):
        runs.append(await drive(dp, bot, flows_for(user_ids, routes, tg), inflight))
    return statistics.median(runs)


def bare_dispatcher() -> Dispatcher:
    dp = Dispatcher()

    async def trivial(event: Any) -> None:
        return None

    dp.message.register(trivial)
    dp.callback_query.register(trivial)
    return dp


def echo_dispatcher() -> Dispatcher:
    """aiogram's echo bot: the cheapest handler that still talks to Telegram."""
    dp = Dispatcher()

    async def echo(message: Message) -> None:
        await message.answer(message.text or "ok")

    async def press(query: CallbackQuery) -> None:
        await query.answer()

    dp.message.register(echo)
    dp.callback_query.register(press)
    return dp


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=16)
    args = parser.parse_args()
    n, inflight = args.residents, args.inflight

    url, name = await create_database("hromada_bench")
    try:
        await upgrade(url)
        settings = load_settings(database=DatabaseSettings(DATABASE_URL=url))
        app = build_app(settings)  # the production engine: pool 10 + 10 overflow
        async with app.sessionmaker.begin() as session:
            await load_reference_file(session, SAMPLE)
        routes = await route_ids(app.sessionmaker)
        settle_for_serving()  # as `hromada-bot run` and `webhook` do before serving
        tg = BenchSession()
        bot = create_bot(settings, session=tg)
        bare = bare_dispatcher()
        echo = echo_dispatcher()

        full_rates: list[float] = []
        bare_rates: list[float] = []
        echo_rates: list[float] = []
        floor_rates: list[float] = []
        updates = n * UPDATES_PER_FLOW
        # A warm-up flow (imports, caches, first connections) that is not measured.
        warm = [5_000_000 + i for i in range(4)]
        await add_residents(app.sessionmaker, warm)
        await drive(
            app.dispatcher,
            bot,
            flows_for(warm, routes, tg),
            inflight,
        )
        for round_no in range(args.rounds):
            user_ids = [1_000_000 * (round_no + 1) + i for i in range(n)]
            await add_residents(app.sessionmaker, user_ids)
            async with app.sessionmaker() as session:
                before = await session.scalar(select(func.count()).select_from(Case))
            flows = flows_for(user_ids, routes, tg)
            full_s = await drive(app.dispatcher, bot, flows, inflight)
            async with app.sessionmaker() as session:
                filed = (await session.scalar(select(func.count()).select_from(Case))) - before
            if filed != n:
                raise SystemExit(f"round {round_no}: {filed} cases filed, expected {n}")
            # The baselines send no keyboard, so their confirm step reuses the full round's button.
            # They take about a second, so each is run BASELINE_REPEATS times and its median kept:
            # one short run is at the mercy of whatever else the shared machine does that second.
            bare_s = await baseline(bare, bot, tg, user_ids, routes, inflight)
            echo_s = await baseline(echo, bot, tg, user_ids, routes, inflight)
            # Context: the cheapest path of the real app (/help: middlewares, user row, one reply).
            # Over a quarter of the updates, to keep the default run short.
            floor_users = user_ids[: max(1, n // 4)]
            floor_flows = [[(lambda p=Person(u): p.text("/help"))] * UPDATES_PER_FLOW for u in floor_users]
            floor_s = await drive(app.dispatcher, bot, floor_flows, inflight)
            floor_s *= updates / (len(floor_users) * UPDATES_PER_FLOW)
            full_rates.append(updates / full_s)
            bare_rates.append(updates / bare_s)
            echo_rates.append(updates / echo_s)
            floor_rates.append(updates / floor_s)
            print(
                f"round {round_no + 1}: full {updates / full_s:8.1f} updates/s ({full_s:.2f} s), "
                f"bare {updates / bare_s:8.1f} updates/s ({bare_s:.2f} s), "
                f"echo {updates / echo_s:8.1f} updates/s, "
                f"app floor /help {updates / floor_s:8.1f} updates/s, {filed} cases",
                flush=True,
            )
        await app.close()
    finally:
        await drop_database(name)

    full = statistics.median(full_rates)
    bare_rate = statistics.median(bare_rates)
    ratio = full / bare_rate
    floor = statistics.median(floor_rates)
    echo_rate = statistics.median(echo_rates)
    print(
        f"median over {args.rounds} rounds, {updates} updates each ({n} residents x {UPDATES_PER_FLOW}, "
        f"{inflight} in flight): full {full:.1f}/s, bare {bare_rate:.1f}/s, ratio {ratio:.3f}; "
        f"echo bot {echo_rate:.1f}/s = {echo_rate / bare_rate:.3f} of bare, "
        f"full = {full / echo_rate:.3f} of echo; "
        f"app floor (/help) {floor:.1f}/s = {floor / bare_rate:.3f} of bare"
    )
    print(
        json.dumps(
            {
                "full_updates_per_s": round(full, 1),
                "bare_updates_per_s": round(bare_rate, 1),
                "ratio": round(ratio, 3),
                "residents": n,
                "updates_per_round": updates,
                "rounds": args.rounds,
                "inflight": inflight,
                "echo_updates_per_s": round(echo_rate, 1),
                "echo_ratio_of_bare": round(echo_rate / bare_rate, 3),
                "full_ratio_of_echo": round(full / echo_rate, 3),
                "app_floor_help_updates_per_s": round(floor, 1),
                "app_floor_ratio": round(floor / bare_rate, 3),
                "full_rounds_per_s": [round(x, 1) for x in full_rates],
                "bare_rounds_per_s": [round(x, 1) for x in bare_rates],
                "echo_rounds_per_s": [round(x, 1) for x in echo_rates],
                "database": "postgresql",
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
