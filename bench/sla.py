"""The SLA sweep at scale: does the every-minute job stay a cheap index range scan?

Builds a throw-away PostgreSQL database with bench/scale.py's fill (by default 1,000,000 cases),
gives every open case SLA due times and a next-check moment spread over the coming month (as
filing and the hooks would), runs ANALYZE, then measures through the SAME function the
scheduler calls (`services.sla_sweep.sweep_sla`, each run in its own transaction):

  pk_lookup   one case by primary key (the yardstick)
  sweep idle  a run when nothing is due: must read no case and take ≤ 50 ms
  sweep busy  --busy-rounds runs, each after `--due` other cases' next check came (overdue
              cases: breach + escalation notices through the outbox); the rows each touched are
              counted, and the median time per due case must stay within one primary-key lookup
              timed right before each run (the run is a fixed number of bulk statements, so a
              due case must cost less than reading one case, never a round trip of its own)

Prints the EXPLAIN (ANALYZE, BUFFERS) plan of the sweep's statement (it must use
ix_cases_sla_next_check), then ONE JSON object as the last line with sweep_ms (idle median),
sweep_busy_ms, sweep_busy_per_case_ms, pk_lookup_ms, busy_per_case_to_pk_lookup, rows_touched and
meets_target.

Usage:  python bench/sla.py [--cases 1000000] [--iterations 100] [--due 200] [--busy-rounds 5] [--keep]
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql

from bench.scale import _asyncpg_dsn, fill
from infra.db import create_engine, create_sessionmaker
from infra.migrate import upgrade
from models import Case, OutboxMessage
from services.clock import FrozenClock
from services.sla_sweep import SWEEP_BATCH, due_cases_statement, sweep_sla
from tests.pgtools import PG_ADMIN_DSN, create_database, drop_database

# The fill's "now" (bench/scale.py): cases were filed during the two years before it.
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KYIV = ZoneInfo("Europe/Kyiv")
TARGET_IDLE_MS = 50.0
# The busy sweep's time per due case, in primary-key lookups measured in the same run.
TARGET_BUSY_PER_CASE_TO_PK = 1.0
OPEN = ("new", "in_progress", "waiting_documents", "visit_planned")


async def give_open_cases_sla(dsn: str) -> int:
    """Due times and a next check for every open, unpaused case, as the hooks would write them:
    next checks spread over the month after NOW (nothing due at NOW)."""
    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.execute(
            """
            UPDATE cases SET
                first_response_due_at = $1::timestamptz + (id % 20) * interval '1 hour',
                resolution_due_at = $1::timestamptz + (id % 40) * interval '1 day',
                sla_state = 'on_time',
                sla_next_check_at = $1::timestamptz + (1 + id % 43200) * interval '1 minute',
                sla_paused_at = CASE WHEN status IN ('waiting_documents', 'visit_planned')
                                     THEN $1::timestamptz END
            WHERE status IN ('new', 'in_progress', 'waiting_documents', 'visit_planned')
            """,
            NOW,
        )
        # A paused case has no next check (services/sla.py).
        await conn.execute("UPDATE cases SET sla_next_check_at = NULL WHERE sla_paused_at IS NOT NULL")
        await conn.execute("VACUUM ANALYZE cases")
        return int(status.split()[-1])
    finally:
        await conn.close()


async def make_due(dsn: str, count: int, seed: int = 5, skip: frozenset[int] = frozenset()) -> list[int]:
    """`count` running cases (none of `skip`) whose first response was due a day ago: their
    check has come."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM cases WHERE sla_next_check_at IS NOT NULL ORDER BY id LIMIT $1", count * 20
            )
            if r["id"] not in skip
        ]
        chosen = random.Random(seed).sample(ids, min(count, len(ids)))
        await conn.execute(
            """
            UPDATE cases SET first_response_due_at = $2::timestamptz - interval '1 day',
                             sla_next_check_at = $2::timestamptz - interval '1 minute',
                             sla_escalation_step = 0
            WHERE id = ANY($1::bigint[])
            """,
            chosen,
            NOW,
        )
        return chosen
    finally:
        await conn.close()


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


async def measure(url: str, iterations: int, due: int, busy_rounds: int) -> dict[str, Any]:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    clock = FrozenClock(NOW)
    result: dict[str, Any] = {}
    try:
        async with sessionmaker() as session:
            max_id = int(await session.scalar(select(func.max(Case.id))) or 1)
        rnd = random.Random(3)
        pk, idle = [], []

        async def pk_lookup() -> float:
            async with sessionmaker.begin() as session:
                started = time.perf_counter()
                await session.execute(select(Case).where(Case.id == rnd.randint(1, max_id)))
                return (time.perf_counter() - started) * 1000

        async def sweep() -> tuple[float, tuple[int, int]]:
            async with sessionmaker.begin() as session:
                started = time.perf_counter()
                outcome = await sweep_sla(session, clock, KYIV)
                return (time.perf_counter() - started) * 1000, outcome

        for _ in range(iterations):  # interleaved, so both see the same machine load
            pk.append(await pk_lookup())
            took, (looked, queued) = await sweep()
            idle.append(took)
            assert (looked, queued) == (0, 0), "an idle sweep found work: the fill is wrong"
        result["pk_lookup"] = _ms(pk)
        result["sweep_idle"] = _ms(idle)

        statement = due_cases_statement(NOW, SWEEP_BATCH, lock=True)
        sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        async with sessionmaker.begin() as session:
            plan = "\n".join(
                row[0] for row in (await session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))).all()
            )
        result["plan"] = plan
        result["uses_index"] = "ix_cases_sla_next_check" in plan

        # The first busy run of a process also imports the holiday tables and compiles its
        # statements; a running bot did that long ago. Timed, reported, and not the target.
        warm_up = await make_due(_asyncpg_dsn(url), due, seed=4)
        first_busy_ms, _ = await sweep()
        used = set(warm_up)
        rounds: list[dict[str, Any]] = []
        for round_no in range(busy_rounds):
            chosen = await make_due(_asyncpg_dsn(url), due, seed=10 + round_no, skip=frozenset(used))
            used.update(chosen)
            # The machine as it is right now, for this round's ratio.
            yardstick = [await pk_lookup() for _ in range(21)]
            busy_ms, (looked, queued) = await sweep()
            async with sessionmaker() as session:
                outbox = int(
                    await session.scalar(
                        select(func.count(OutboxMessage.id)).where(OutboxMessage.case_id.in_(chosen))
                    )
                    or 0
                )
            pk_ms = statistics.median(yardstick)
            per_case = busy_ms / max(1, looked)
            rounds.append(
                {
                    "busy_ms": round(busy_ms, 3),
                    "due_cases": len(chosen),
                    "rows_touched": looked,
                    "queued": queued,
                    "outbox_rows": outbox,
                    "pk_lookup_ms": round(pk_ms, 3),
                    "per_case_ms": round(per_case, 3),
                    "per_case_to_pk": round(per_case / pk_ms, 3),
                }
            )
        # Once taken, the steps are not taken again: the next run is idle again.
        after_ms, again = await sweep()
        result.update(
            first_busy_ms=round(first_busy_ms, 3),
            rounds=rounds,
            busy_ms=round(statistics.median(r["busy_ms"] for r in rounds), 3),
            per_case_ms=round(statistics.median(r["per_case_ms"] for r in rounds), 3),
            per_case_to_pk=round(statistics.median(r["per_case_to_pk"] for r in rounds), 3),
            all_touched=all(r["rows_touched"] == r["due_cases"] for r in rounds),
            rows_touched=sum(r["rows_touched"] for r in rounds),
            due_cases=sum(r["due_cases"] for r in rounds),
            queued=sum(r["queued"] for r in rounds),
            after_busy=again,
            after_busy_ms=round(after_ms, 3),
        )
    finally:
        await engine.dispose()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--residents", type=int, default=None, help="default: cases / 10")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--due", type=int, default=200, help="cases due in the busy run")
    parser.add_argument("--busy-rounds", type=int, default=5, help="busy runs; the median counts")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    residents = args.residents or max(100, args.cases // 10)

    url, name = await create_database("hromada_bench_sla")
    try:
        started = time.perf_counter()
        await upgrade(url)
        counts = await fill(_asyncpg_dsn(url), args.cases, residents)
        with_sla = await give_open_cases_sla(_asyncpg_dsn(url))
        fill_seconds = time.perf_counter() - started
        print(f"filled {counts}; {with_sla} open cases given SLA due times; {fill_seconds:.1f} s", flush=True)
        measured = await measure(url, args.iterations, args.due, args.busy_rounds)
    finally:
        if not args.keep:
            await drop_database(name)
        else:
            print(f"kept database {name}")

    print("\n=== EXPLAIN: the sweep's statement (idle: nothing due) ===")
    print(measured["plan"])
    pk, idle = measured["pk_lookup"], measured["sweep_idle"]
    print("\noperation          median ms   p99 ms")
    print(f"pk_lookup          {pk['median_ms']:9.3f} {pk['p99_ms']:8.3f}")
    print(f"sweep (idle)       {idle['median_ms']:9.3f} {idle['p99_ms']:8.3f}")
    for number, run in enumerate(measured["rounds"], 1):
        print(
            f"sweep (busy {number})     {run['busy_ms']:9.3f}            "
            f"{run['rows_touched']} case(s) touched, "
            f"{run['queued']} notice(s) queued; {run['per_case_ms']:.3f} ms per case = "
            f"{run['per_case_to_pk']:.2f} pk lookups ({run['pk_lookup_ms']:.3f} ms)"
        )
    print(f"sweep (first busy) {measured['first_busy_ms']:9.3f}            the process's first busy run")
    per_case, ratio = measured["per_case_ms"], measured["per_case_to_pk"]
    print(
        f"sweep (busy) per due case, median {per_case:.3f} ms = {ratio:.2f} pk lookups "
        f"(target ≤ {TARGET_BUSY_PER_CASE_TO_PK})"
    )
    after = measured["after_busy"]
    print(f"sweep (after busy) {measured['after_busy_ms']:9.3f}            looked/queued {after}")
    meets = (
        idle["median_ms"] <= TARGET_IDLE_MS
        and ratio <= TARGET_BUSY_PER_CASE_TO_PK
        and measured["all_touched"]
        and measured["uses_index"]
        and tuple(measured["after_busy"]) == (0, 0)
    )
    summary = {
        "bench": "sla",
        "database": "postgresql",
        "cases": args.cases,
        "open_cases_with_sla": with_sla,
        "iterations": args.iterations,
        "fill_seconds": round(fill_seconds, 1),
        "sweep_ms": idle["median_ms"],
        "sweep_p99_ms": idle["p99_ms"],
        "sweep_busy_ms": measured["busy_ms"],
        "sweep_busy_per_case_ms": per_case,
        "sweep_first_busy_ms": measured["first_busy_ms"],
        "due_cases": measured["due_cases"],
        "pk_lookup_ms": pk["median_ms"],
        "rows_touched": measured["rows_touched"],
        "notices_queued": measured["queued"],
        "uses_index": measured["uses_index"],
        "target_idle_ms": TARGET_IDLE_MS,
        "busy_per_case_to_pk_lookup": ratio,
        "busy_rounds": len(measured["rounds"]),
        "target_busy_per_case_to_pk_lookup": TARGET_BUSY_PER_CASE_TO_PK,
        "meets_target": meets,
        "pg_admin_dsn_host": PG_ADMIN_DSN.rsplit("@", 1)[-1].split("/")[0],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
