"""Status-table import benchmark: throughput and memory against file size.

Generates status tables (CSV and XLSX) of 20,000 and 100,000 rows, imports each into a throwaway
PostgreSQL database (tests/pgtools.create_database; 127.0.0.1:5432) and prints rows/s and
the importing process's peak RSS. Each import runs in a fresh child process so its peak RSS is
its own; tables are emptied before every run, so every run inserts all rows. Sizes and formats
run side by side in the same invocation; with --repeat N the medians are quoted.

Memory must not grow with file size: the 100k-row import's peak RSS should be within a few MB
of the 20k-row one (the target below), because both readers stream (csv over a text wrapper,
openpyxl read_only + values_only) and rows are applied in batches of 1,000. One exception is
inherent to XLSX: openpyxl loads the workbook's shared-string table (every distinct text) whole,
so an XLSX of many distinct texts grows by those strings (~6 MB for 80,000 more rows of unique
numbers and phones here); the rows themselves are streamed.

Usage:  python bench/import.py [--repeat 3] [--sizes 20000,100000] [--formats csv,xlsx]
The last line printed is one JSON object with the figures and targets.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = ["Номер заяви", "Телефон", "Вид допомоги", "Статус", "Дата зміни статусу", "Громада"]
STATUSES = ["прийнято", "на розгляді", "бракує документів", "призначено", "відмовлено"]
KINDS = ["Довідка ВПО", "Допомога на проживання", "Житлова субсидія"]
HROMADAS = ["Пирятинська", "PYR", "Веселівська", ""]
TARGET_RSS_GROWTH_MB = 15.0  # 5x the rows may cost at most this much more peak memory
TARGET_ROWS_PER_S = 2_000


def row(i: int) -> list[str]:
    return [
        f"ВПО-{i:07d}",
        f"+38050{i:07d}",
        KINDS[i % len(KINDS)],
        STATUSES[i % len(STATUSES)],
        f"{1 + i % 28:02d}.{1 + i % 10:02d}.2026",
        HROMADAS[i % len(HROMADAS)],
    ]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow(row(i))


def write_xlsx(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Заяви")
    ws.append(HEADER)
    for i in range(rows):
        ws.append(row(i))
    wb.save(path)


# -- child: one import, reports its own figures ----------------------------------------------------


async def child(url: str, path: Path) -> None:
    from infra.db import create_engine, create_sessionmaker
    from services.status_import import StatusImporter

    engine = create_engine(url)
    try:
        importer = StatusImporter(create_sessionmaker(engine))
        started = time.perf_counter()
        report = await importer.import_file(path)
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_rss_mb(), **report.counts()}))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the address space and starts afresh at exec;
    getrusage's ru_maxrss would carry the parent's peak over into the child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- parent ------------------------------------------------------------------------------------------


async def empty_tables(url: str) -> None:
    from sqlalchemy import text

    from infra.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "TRUNCATE applications, application_status_changes, outbox, audit_log"
                    " RESTART IDENTITY CASCADE"
                )
            )
    finally:
        await engine.dispose()


async def prepare(url: str) -> None:
    from infra.db import create_engine, create_sessionmaker
    from infra.migrate import upgrade
    from services.reference_data import load_reference_file

    await upgrade(url)
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            await load_reference_file(session, ROOT / "data" / "sample_reference.yaml")
    finally:
        await engine.dispose()


def run_child(url: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


async def main(args: argparse.Namespace) -> dict[str, object]:
    from tests.pgtools import create_database, drop_database

    sizes = [int(s) for s in args.sizes.split(",")]
    formats = args.formats.split(",")
    url, name = await create_database("hromada_bench")
    results: dict[str, dict[str, float]] = {}
    try:
        await prepare(url)
        with tempfile.TemporaryDirectory(prefix="import-bench-") as folder:
            files: dict[tuple[str, int], Path] = {}
            for fmt in formats:
                for size in sizes:
                    path = Path(folder) / f"statuses-{size}.{fmt}"
                    started = time.perf_counter()
                    (write_csv if fmt == "csv" else write_xlsx)(path, size)
                    print(
                        f"generated {path.name}: {path.stat().st_size / 1e6:.1f} MB "
                        f"in {time.perf_counter() - started:.1f} s",
                        flush=True,
                    )
                    files[(fmt, size)] = path
            runs: dict[tuple[str, int], list[dict[str, float]]] = {key: [] for key in files}
            for attempt in range(args.repeat):
                for key, path in files.items():  # interleaved: formats and sizes side by side
                    await empty_tables(url)
                    figures = run_child(url, path)
                    assert figures["added"] == key[1], figures
                    runs[key].append(figures)
                    print(
                        f"run {attempt + 1}: {key[0]} {key[1]:>7,} rows: {figures['seconds']:.2f} s, "
                        f"{key[1] / figures['seconds']:,.0f} rows/s, "
                        f"peak RSS {figures['peak_rss_mb']:.1f} MB",
                        flush=True,
                    )
            for (fmt, size), figures in runs.items():
                seconds = statistics.median(f["seconds"] for f in figures)
                results[f"{fmt}_{size}"] = {
                    "rows": size,
                    "median_seconds": round(seconds, 2),
                    "median_rows_per_s": round(size / seconds),
                    "median_peak_rss_mb": round(statistics.median(f["peak_rss_mb"] for f in figures), 1),
                }
    finally:
        await drop_database(name)

    summary: dict[str, object] = {"bench": "status_import", "db": "postgresql", "repeat": args.repeat}
    summary.update(results)
    growth: dict[str, float] = {}
    if len(sizes) >= 2:
        small, big = min(sizes), max(sizes)
        print(f"\n{'format':<6} {'rows':>8} {'rows/s':>9} {'peak RSS MB':>12}")
        for fmt in formats:
            for size in sizes:
                r = results[f"{fmt}_{size}"]
                print(f"{fmt:<6} {size:>8,} {r['median_rows_per_s']:>9,} {r['median_peak_rss_mb']:>12}")
            growth[fmt] = round(
                results[f"{fmt}_{big}"]["median_peak_rss_mb"]
                - results[f"{fmt}_{small}"]["median_peak_rss_mb"],
                1,
            )
            print(f"{fmt}: {big // small}x the rows → peak RSS +{growth[fmt]} MB")
    summary["rss_growth_mb"] = growth
    summary["targets"] = {"rss_growth_mb_max": TARGET_RSS_GROWTH_MB, "rows_per_s_min": TARGET_ROWS_PER_S}
    summary["ok"] = all(g <= TARGET_RSS_GROWTH_MB for g in growth.values()) and all(
        r["median_rows_per_s"] >= TARGET_ROWS_PER_S for r in results.values()
    )
    return summary


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        asyncio.run(child(sys.argv[2], Path(sys.argv[3])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--formats", default="csv,xlsx")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    print(json.dumps(asyncio.run(main(parser.parse_args())), ensure_ascii=False))
