"""Case reads at scale: do the bot's hot reads stay close to a primary-key lookup?

Builds a throw-away PostgreSQL database (migrated with the real Alembic migrations), fills it
fast with COPY — by default 1,000,000 cases of 100,000 residents in 50 hromadas (generated:
5 oblasts, 250 settlements, 7 services, 105 teams, 500 workers, ~1.9 M case events, 0.4 M
messages, 0.1 M attachments) — runs ANALYZE, then measures side by side, interleaved, through the SAME service
functions the bot calls:

  pk_lookup      one case by primary key (the yardstick)
  worker_queue   "My queue", first page      (QueueService.my_queue)
  team_queue     "Team queue", first page    (QueueService.team_queue)
  my_requests    a resident's "My requests"  (services.cases.ResidentCases.page)
  case_card      case + access + refs, events, messages, attachment count
                 (CaseActions.worker_case + QueueService.card)

Target: each median ≤ 3 × the PK lookup's median. Prints the EXPLAIN (ANALYZE) plans of every
statement each operation runs, then ONE JSON object as the last line.

Usage:  python bench/scale.py [--cases 1000000] [--iterations 300] [--keep]
Needs PostgreSQL at TEST_PG_ADMIN_DSN (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db import create_engine, create_sessionmaker
from infra.migrate import upgrade
from models import Case, TeamMember, Worker
from services.case_actions import CaseActions
from services.cases import ResidentCases
from services.clock import Clock
from services.queues import QueueService
from tests.pgtools import PG_ADMIN_DSN, create_database, drop_database

HROMADAS = 50
OBLASTS = 5
SETTLEMENTS_PER_HROMADA = 5
TEAMS_PER_HROMADA = 2
WORKERS_PER_TEAM = 5
SERVICES = (
    "subsidy",
    "social_assistance",
    "home_care",
    "humanitarian_aid",
    "child_protection",
    "idp_support",
    "employment",
)
# Most cases of a long-running system are closed; a quarter are open.
STATUS_WEIGHTS = {
    "resolved": 55,
    "rejected": 10,
    "cancelled": 10,
    "new": 8,
    "in_progress": 10,
    "waiting_documents": 4,
    "visit_planned": 3,
}
PRIORITY_WEIGHTS = {0: 80, 1: 10, 2: 7, 3: 2, 5: 1}
TARGET_RATIO = 3.0


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _code(i: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "H" + letters[i // 26] + letters[i % 26]


async def fill(dsn: str, cases: int, residents: int, seed: int = 7) -> dict[str, Any]:
    rnd = random.Random(seed)
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    conn = await asyncpg.connect(dsn)
    counts: dict[str, int] = {}
    try:

        async def copy(table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
            await conn.copy_records_to_table(table, records=records, columns=columns)
            counts[table] = counts.get(table, 0) + len(records)

        oblasts = [f"oblast{i}" for i in range(OBLASTS)]
        await copy(
            "hromadas",
            ["id", "code", "name_uk", "name_en", "oblast", "accepts_requests"],
            [
                (h + 1, _code(h), f"Громада {h}", f"Hromada {h}", oblasts[h % OBLASTS], True)
                for h in range(HROMADAS)
            ],
        )
        settlements = []
        for h in range(HROMADAS):
            for s in range(SETTLEMENTS_PER_HROMADA):
                sid = h * SETTLEMENTS_PER_HROMADA + s + 1
                settlements.append((sid, h + 1, f"s{s}", f"Село {sid}", f"Village {sid}", None))
        await copy(
            "settlements",
            ["id", "hromada_id", "code", "name_uk", "name_en", "starosta_district"],
            settlements,
        )
        await copy(
            "services",
            [
                "id",
                "code",
                "group_code",
                "name_uk",
                "name_en",
                "description_uk",
                "description_en",
                "sensitive",
                "position",
            ],
            [
                (i + 1, code, "social_assistance", code, code, "", "", code == "child_protection", i)
                for i, code in enumerate(SERVICES)
            ],
        )
        teams = []
        for h in range(HROMADAS):
            for t in range(TEAMS_PER_HROMADA):
                tid = h * TEAMS_PER_HROMADA + t + 1
                teams.append(
                    (
                        tid,
                        f"team-{tid}",
                        f"Команда {tid}",
                        f"Team {tid}",
                        h + 1,
                        oblasts[h % OBLASTS],
                        False,
                        "",
                        "",
                    )
                )
        for o, oblast in enumerate(oblasts):
            tid = HROMADAS * TEAMS_PER_HROMADA + o + 1
            teams.append((tid, f"oblast-{o}", f"Область {o}", f"Oblast {o}", None, oblast, True, "", ""))
        await copy(
            "teams",
            [
                "id",
                "code",
                "name_uk",
                "name_en",
                "hromada_id",
                "oblast",
                "is_oblast_fallback",
                "office_address_uk",
                "office_address_en",
            ],
            teams,
        )
        team_count = HROMADAS * TEAMS_PER_HROMADA
        workers_total = team_count * WORKERS_PER_TEAM
        users = [(u + 1, 1_000_000 + u, "uk", True, now) for u in range(residents + workers_total)]
        await copy("users", ["id", "telegram_id", "language", "reachable", "created_at"], users)
        await copy(
            "residents",
            ["id", "user_id", "consent_at", "consent_version", "phone", "last_hromada_id"],
            [
                (r + 1, r + 1, now, "bench", f"+380{500000000 + r}", r % HROMADAS + 1)
                for r in range(residents)
            ],
        )
        await copy(
            "workers",
            ["id", "user_id", "display_name", "is_admin", "active", "created_at"],
            [(w + 1, residents + w + 1, f"Worker {w}", False, True, now) for w in range(workers_total)],
        )
        await copy(
            "team_members",
            ["id", "team_id", "worker_id", "role", "on_duty", "joined_at"],
            [
                (
                    w + 1,
                    w // WORKERS_PER_TEAM + 1,
                    w + 1,
                    "coordinator" if w % WORKERS_PER_TEAM == 0 else "worker",
                    True,
                    now,
                )
                for w in range(workers_total)
            ],
        )

        # Bulk load first, secondary indexes after: building an index once is far cheaper than
        # keeping it up to date through millions of inserts. The definitions are the migrated
        # ones, read back from the catalogue and re-created unchanged.
        saved = await conn.fetch(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = 'public'
              AND i.tablename IN ('cases', 'case_events', 'case_messages', 'attachments')
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """
        )
        for row in saved:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')

        statuses = rnd.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()), k=cases)
        priorities = rnd.choices(list(PRIORITY_WEIGHTS), weights=list(PRIORITY_WEIGHTS.values()), k=cases)
        span = int(timedelta(days=730).total_seconds())
        case_rows = []
        event_rows = []
        message_rows = []
        attachment_rows: list[tuple[Any, ...]] = []
        event_id = message_id = 0
        for c in range(cases):
            resident = rnd.randrange(residents)
            h = resident % HROMADAS
            team = h * TEAMS_PER_HROMADA + rnd.randrange(TEAMS_PER_HROMADA) + 1
            status = statuses[c]
            assignee = (
                None
                if status == "new"
                else (team - 1) * WORKERS_PER_TEAM + rnd.randrange(WORKERS_PER_TEAM) + 1
            )
            created = now - timedelta(seconds=rnd.randrange(span))
            closed = status in ("resolved", "rejected", "cancelled")
            case_rows.append(
                (
                    c + 1,
                    f"{_code(h)}-{c + 1:08d}",
                    resident + 1,
                    False,
                    h + 1,
                    h * SETTLEMENTS_PER_HROMADA + rnd.randrange(SETTLEMENTS_PER_HROMADA) + 1,
                    rnd.randrange(len(SERVICES)) + 1,
                    team,
                    assignee,
                    status,
                    priorities[c],
                    "[]",
                    "Опис звернення",
                    "own",
                    "{}",
                    created,
                    created,
                    created + timedelta(days=3) if closed else None,
                )
            )
            event_id += 1
            event_rows.append((event_id, c + 1, created, None, "created", None, "new", None, "{}"))
            if status != "new":
                event_id += 1
                event_rows.append(
                    (
                        event_id,
                        c + 1,
                        created + timedelta(hours=2),
                        residents + assignee,
                        "status",
                        "new",
                        status,
                        None,
                        "{}",
                    )
                )
            if c % 10 == 3:
                attachment_rows.append(
                    (
                        c + 1,
                        "photo",
                        f"file-{c}",
                        f"uniq-{c}",
                        None,
                        None,
                        resident + 1,
                        created + timedelta(hours=1),
                    )
                )
            if c % 5 == 0:
                for m in range(2):
                    message_id += 1
                    message_rows.append(
                        (
                            message_id,
                            c + 1,
                            created + timedelta(hours=3 + m),
                            m == 0,
                            None,
                            "Текст повідомлення",
                        )
                    )
            if len(case_rows) >= 100_000:
                await copy("cases", CASE_COLUMNS, case_rows)
                await copy("case_events", EVENT_COLUMNS, event_rows)
                await copy("case_messages", MESSAGE_COLUMNS, message_rows)
                await copy("attachments", ATTACHMENT_COLUMNS, attachment_rows)
                case_rows, event_rows, message_rows, attachment_rows = [], [], [], []
        if case_rows:
            await copy("cases", CASE_COLUMNS, case_rows)
            await copy("case_events", EVENT_COLUMNS, event_rows)
            await copy("case_messages", MESSAGE_COLUMNS, message_rows)
            await copy("attachments", ATTACHMENT_COLUMNS, attachment_rows)
        for row in saved:
            await conn.execute(row["indexdef"])
        for table in (
            "hromadas",
            "settlements",
            "services",
            "teams",
            "users",
            "residents",
            "workers",
            "team_members",
            "cases",
            "case_events",
            "case_messages",
            "attachments",
        ):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return counts


CASE_COLUMNS = [
    "id", "number", "resident_id", "on_behalf", "hromada_id", "settlement_id", "service_id", "team_id",
    "assignee_worker_id", "status", "priority", "vulnerability", "description", "routing_kind",
    "routing_detail", "created_at", "updated_at", "closed_at",
]  # fmt: skip
EVENT_COLUMNS = ["id", "case_id", "at", "actor_user_id", "kind", "from_status", "to_status", "reason", "data"]
MESSAGE_COLUMNS = ["id", "case_id", "at", "from_resident", "author_user_id", "text"]
ATTACHMENT_COLUMNS = [
    "case_id", "kind", "file_id", "file_unique_id", "file_name", "mime_type", "uploaded_by_user_id", "at",
]  # fmt: skip


class Recorder:
    """Captures the SQL each operation sends, to EXPLAIN it afterwards."""

    def __init__(self) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.on:
            self.statements.append((statement, parameters))


async def measure(url: str, iterations: int, seed: int = 11) -> dict[str, Any]:
    engine = create_engine(url)
    recorder = Recorder()
    event.listen(engine.sync_engine, "before_cursor_execute", recorder)
    sessionmaker = create_sessionmaker(engine)
    clock = Clock()
    rnd = random.Random(seed)
    async with sessionmaker() as session:
        max_case = int(await session.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)) or 0)
        worker_ids = list((await session.scalars(select(Worker.id))).all())
        memberships = {
            w: t for w, t in (await session.execute(select(TeamMember.worker_id, TeamMember.team_id))).all()
        }
        max_resident = int(
            await session.scalar(select(Case.resident_id).order_by(Case.resident_id.desc()).limit(1)) or 0
        )

    # Each operation: a set-up (pick ids; load the worker row, which the bot already has from its
    # middleware) outside the timing, then the measured call of the bot's service functions.
    def pick_case() -> int:
        return rnd.randrange(1, max_case + 1)

    async def some_worker(session: AsyncSession, team_id: int | None = None) -> Worker:
        if team_id is None:
            worker_id = rnd.choice(worker_ids)
        else:
            worker_id = next(w for w, t in memberships.items() if t == team_id)
        worker = await session.get(Worker, worker_id)
        assert worker is not None
        return worker

    async def setup_pk(session: AsyncSession) -> Any:
        return pick_case()

    async def pk_lookup(session: AsyncSession, case_id: Any) -> None:
        (await session.execute(select(Case).where(Case.id == case_id))).scalar_one()

    async def setup_worker(session: AsyncSession) -> Any:
        return await some_worker(session)

    async def worker_queue(session: AsyncSession, worker: Any) -> None:
        await QueueService(session, clock).my_queue(worker, "open", 0)

    async def setup_team(session: AsyncSession) -> Any:
        return memberships[rnd.choice(worker_ids)]

    async def team_queue(session: AsyncSession, team_id: Any) -> None:
        await QueueService(session, clock).team_queue(team_id, "open", 0)

    async def setup_resident(session: AsyncSession) -> Any:
        return rnd.randrange(1, max_resident + 1)

    async def my_requests(session: AsyncSession, resident_id: Any) -> None:
        await ResidentCases(session).page(resident_id, 0, 10)

    async def setup_card(session: AsyncSession) -> Any:
        case_id = pick_case()
        team_id = await session.scalar(select(Case.team_id).where(Case.id == case_id))
        return case_id, await some_worker(session, team_id)

    async def case_card(session: AsyncSession, args: Any) -> None:
        case_id, worker = args
        case = await CaseActions(session, clock).worker_case(worker, case_id)
        await QueueService(session, clock).card(case)

    ops: dict[
        str, tuple[Callable[[AsyncSession], Awaitable[Any]], Callable[[AsyncSession, Any], Awaitable[None]]]
    ] = {
        "pk_lookup": (setup_pk, pk_lookup),
        "worker_queue": (setup_worker, worker_queue),
        "team_queue": (setup_team, team_queue),
        "my_requests": (setup_resident, my_requests),
        "case_card": (setup_card, case_card),
    }
    timings: dict[str, list[float]] = {name: [] for name in ops}

    async def run(name: str, record: bool = False) -> float:
        setup, op = ops[name]
        async with sessionmaker() as session:
            args = await setup(session)  # also opens the connection and the transaction
            session.expunge_all()  # nothing served from the identity map
            recorder.on = record
            start = time.perf_counter()
            await op(session, args)
            elapsed = time.perf_counter() - start
            recorder.on = False
            await session.rollback()
            return elapsed

    for _ in range(max(10, iterations // 10)):  # warm-up: caches, prepared statements
        for name in ops:
            await run(name)
    for _ in range(iterations):
        for name in ops:  # interleaved: every operation sees the same machine state
            timings[name].append(await run(name))

    plans: dict[str, list[str]] = {}
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        for name in ops:
            recorder.statements.clear()
            await run(name, record=True)
            plans[name] = []
            for statement, parameters in recorder.statements:
                args = tuple(parameters) if isinstance(parameters, (tuple, list)) else ()
                rows = await conn.fetch(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + statement, *args
                )
                plans[name].append("\n".join(r[0] for r in rows))
    finally:
        await conn.close()
    await engine.dispose()

    result: dict[str, Any] = {}
    for name, values in timings.items():
        values.sort()
        result[name] = {
            "median_ms": round(statistics.median(values) * 1000, 3),
            "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))] * 1000, 3),
        }
    return {"timings": result, "plans": plans}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--residents", type=int, default=None, help="default: cases / 10")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    residents = args.residents or max(100, args.cases // 10)

    url, name = await create_database("hromada_bench")
    try:
        started = time.perf_counter()
        await upgrade(url)
        counts = await fill(_asyncpg_dsn(url), args.cases, residents)
        fill_seconds = time.perf_counter() - started
        print(f"filled {counts} in {fill_seconds:.1f} s (migrations, COPY, ANALYZE)", flush=True)
        measured = await measure(url, args.iterations)
    finally:
        if not args.keep:
            await drop_database(name)
        else:
            print(f"kept database {name}")

    for op, plans in measured["plans"].items():
        print(f"\n=== EXPLAIN: {op} ({len(plans)} statement(s)) ===")
        for plan in plans:
            print(plan)
            print("---")
    timings = measured["timings"]
    base = timings["pk_lookup"]["median_ms"]
    print("\noperation        median ms   p99 ms   × PK median")
    summary: dict[str, Any] = {
        "bench": "scale",
        "database": "postgresql",
        "cases": args.cases,
        "residents": residents,
        "hromadas": HROMADAS,
        "iterations": args.iterations,
        "fill_seconds": round(fill_seconds, 1),
        "target_ratio_max": TARGET_RATIO,
    }
    ok = True
    for op, figures in timings.items():
        ratio = figures["median_ms"] / base if base else float("inf")
        print(f"{op:15s} {figures['median_ms']:9.3f} {figures['p99_ms']:8.3f}   {ratio:5.2f}")
        summary[op] = {**figures, "ratio_to_pk": round(ratio, 2), "within_target": ratio <= TARGET_RATIO}
        if op != "pk_lookup" and ratio > TARGET_RATIO:
            ok = False
    summary["all_within_target"] = ok
    summary["pg_admin_dsn_host"] = PG_ADMIN_DSN.rsplit("@", 1)[-1].split("/")[0]
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
