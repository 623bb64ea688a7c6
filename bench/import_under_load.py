"""Status imports under load: how long residents' updates wait while a worker's file is imported.

A steady load of updates — residents (consent given) each sending /help, then thinking
--think seconds, --residents of them at once, at most --inflight in the dispatcher (like a
webhook worker pool) — runs through the real dispatcher (`bot.factory.build_app`: the
production engine, pool 10 + 10 overflow, every middleware and router) on a throwaway
PostgreSQL database (127.0.0.1:5432, tests/pgtools.create_database), migrated and seeded with
data/sample_reference.yaml; Telegram is a recording session (no network). An update's latency
runs from the moment it is due (before the in-flight gate) to the end of its handling.

Phases, one after the other, each at least --seconds long; each import phase comes right after
a phase without an import, its baseline (the shared machine's load drifts over minutes):
  (a) no import;
  (b) a worker sends a hostile XLSX: about 1 MB that unpacks to ~300 MB of XML (a million
      copies of one row and a 76 MB shared-string table, tests/hostile/test_import_budgets.hostile_xlsx);
  (a2) no import;
  (c) a worker sends a normal 50,000-row XLSX (openpyxl-written, like bench/import.py).
Files go through the bot's real path (handler → background job). An import phase ends when its
import does (or after --cap seconds: the job is then cancelled; on a bot without budgets its
reading thread cannot be cancelled and goes on parsing into the next phases, and the script
leaves with os._exit after printing).

For each phase: p50/p95/max latency, updates served, the import's seconds and outcome (the
report's or the refusal's key facts) and the process's RSS growth during the phase.
Targets: p95 during the hostile import at most 1.5x that without an import, and the hostile
file refused. The last line printed is one JSON object with the figures, targets and
`meets_target`.

Usage:  python bench/import_under_load.py [--residents 24] [--think 0.05] [--inflight 16]
                                          [--seconds 10] [--cap 90] [--rows 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiogram import Bot  # noqa: E402
from aiogram.methods import EditMessageText, SendMessage  # noqa: E402
from aiogram.types import Chat, Document, Message, Update, User  # noqa: E402

from bench.intake import Person, add_residents  # noqa: E402
from bot.factory import build_app, create_bot, settle_for_serving  # noqa: E402
from bot.offline import RecordingSession  # noqa: E402
from infra.migrate import upgrade  # noqa: E402
from infra.settings import DatabaseSettings, load_settings  # noqa: E402
from services.reference_data import load_reference_file  # noqa: E402
from tests.factories import add_worker  # noqa: E402
from tests.hostile.test_import_budgets import hostile_xlsx  # noqa: E402
from tests.pgtools import create_database, drop_database  # noqa: E402

SAMPLE = ROOT / "data" / "sample_reference.yaml"
WORKER_ID = 9_000_001
TARGET_P95_RATIO = 1.5
HEADER = ["Номер заяви", "Телефон", "Вид допомоги", "Статус", "Дата зміни статусу"]
STATUSES = ["прийнято", "на розгляді", "бракує документів", "призначено", "відмовлено"]


def write_normal_xlsx(path: Path, rows: int) -> Path:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Заяви")
    ws.append(HEADER)
    for i in range(rows):
        ws.append(
            [
                f"ВПО-{i:07d}",
                f"+38050{i:07d}",
                "Житлова субсидія",
                STATUSES[i % 5],
                f"{1 + i % 28:02d}.11.2026",
            ]
        )
    wb.save(path)
    return path


class LoadSession(RecordingSession):
    """Keeps no log (a long run), but remembers the last text the worker was shown."""

    def __init__(self) -> None:
        super().__init__()
        self.worker_text = ""

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        if (
            isinstance(method, SendMessage | EditMessageText)
            and getattr(method, "chat_id", None) == WORKER_ID
        ):
            self.worker_text = method.text
        result = await super().make_request(bot, method, timeout)
        self.calls.clear()
        return result


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(
    dp: Any, bot: Bot, user_ids: list[int], args: argparse.Namespace, stop: asyncio.Event
) -> list[float]:
    gate = asyncio.Semaphore(args.inflight)
    latencies: list[float] = []

    async def resident(uid: int) -> None:
        person = Person(uid)
        while not stop.is_set():
            due = time.perf_counter()
            async with gate:
                await dp.feed_update(bot, person.text("/help"))
            latencies.append(time.perf_counter() - due)
            await asyncio.sleep(args.think)

    await asyncio.gather(*(resident(u) for u in user_ids))
    return latencies


async def phase(
    name: str,
    app: Any,
    bot: Bot,
    tg: LoadSession,
    user_ids: list[int],
    args: argparse.Namespace,
    file: Path | None,
) -> dict[str, Any]:
    dp = app.dispatcher
    jobs = dp["jobs"]
    stop = asyncio.Event()
    rss_start = rss_mb()
    rss_peak = rss_start
    load_task = asyncio.create_task(load(dp, bot, user_ids, args, stop))
    started = time.perf_counter()
    import_seconds = None
    cancelled = False
    if file is not None:
        await asyncio.sleep(1.0)  # the load settles first
        sent = time.perf_counter()
        document = Document(
            file_id=f"doc-{name}",
            file_unique_id=f"u-{name}",
            file_name=f"statuses-{name}.xlsx",
            file_size=await asyncio.to_thread(lambda: file.stat().st_size),
        )
        message = Message(
            message_id=1,
            date=datetime.now(UTC),
            chat=Chat(id=WORKER_ID, type="private"),
            from_user=User(id=WORKER_ID, is_bot=False, first_name="W", language_code="uk"),
            document=document,
        )
        dp["status_file_reader"] = lambda _bot, _doc, dest: asyncio.to_thread(shutil.copyfile, file, dest)
        await dp.feed_update(bot, Update(update_id=10**9 + len(name), message=message))
        while jobs.running and time.perf_counter() - sent < args.cap:
            rss_peak = max(rss_peak, rss_mb())
            await asyncio.sleep(0.1)
        if jobs.running:
            cancelled = True
            await jobs.close(timeout=0)
        import_seconds = time.perf_counter() - sent
    while time.perf_counter() - started < args.seconds:
        rss_peak = max(rss_peak, rss_mb())
        await asyncio.sleep(0.1)
    stop.set()
    latencies = await load_task
    elapsed = time.perf_counter() - started
    result = {
        "updates": len(latencies),
        "updates_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "seconds": round(elapsed, 1),
        "rss_start_mb": round(rss_start, 1),
        "rss_peak_growth_mb": round(rss_peak - rss_start, 1),
    }
    if file is not None:
        result["import_seconds"] = round(import_seconds or 0.0, 2)
        result["import_cancelled_after_cap"] = cancelled
        result["worker_saw"] = " ".join(tg.worker_text.split())[:160]
    print(f"({name}) {json.dumps(result, ensure_ascii=False)}", flush=True)
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="import-load-"))
    url, name = await create_database("hromada_bench")
    try:
        hostile = hostile_xlsx(folder / "hostile.xlsx")
        normal = write_normal_xlsx(folder / "normal.xlsx", args.rows)
        print(
            f"hostile {hostile.stat().st_size / 1e6:.2f} MB packed; normal {args.rows} rows "
            f"{normal.stat().st_size / 1e6:.2f} MB",
            flush=True,
        )
        await upgrade(url)
        settings = load_settings(database=DatabaseSettings(DATABASE_URL=url))
        app = build_app(settings)
        async with app.sessionmaker.begin() as session:
            await load_reference_file(session, SAMPLE)
        await add_worker(app.sessionmaker, WORKER_ID, "pyr-cnap")
        user_ids = [7_000_000 + i for i in range(args.residents)]
        await add_residents(app.sessionmaker, user_ids)
        settle_for_serving()
        tg = LoadSession()
        bot = create_bot(settings, session=tg)
        app.dispatcher["import_progress_interval"] = 2.0
        # Warm-up (imports, caches, connections), not measured.
        warm = argparse.Namespace(**{**vars(args), "seconds": 2.0})
        await phase("warm-up", app, bot, tg, user_ids, warm, None)
        results = {
            "a_no_import": await phase("a", app, bot, tg, user_ids, args, None),
            "b_hostile_import": await phase("b", app, bot, tg, user_ids, args, hostile),
            "a2_no_import": await phase("a2", app, bot, tg, user_ids, args, None),
            "c_normal_import": await phase("c", app, bot, tg, user_ids, args, normal),
        }
        await app.close()
    finally:
        await drop_database(name)
        shutil.rmtree(folder, ignore_errors=True)
    a, b = results["a_no_import"], results["b_hostile_import"]
    a2, c = results["a2_no_import"], results["c_normal_import"]
    ratio_b = b["p95_ms"] / a["p95_ms"]
    refused = "не імпортовано" in b["worker_saw"] or "not imported" in b["worker_saw"]
    summary: dict[str, Any] = {
        "bench": "import_under_load",
        "database": "postgresql",
        "residents": args.residents,
        "think_s": args.think,
        "inflight": args.inflight,
        **results,
        "p95_ratio_b_over_a": round(ratio_b, 2),
        "max_ratio_b_over_a": round(b["max_ms"] / a["max_ms"], 2),
        "p95_ratio_c_over_a2": round(c["p95_ms"] / a2["p95_ms"], 2),
        "max_ratio_c_over_a2": round(c["max_ms"] / a2["max_ms"], 2),
        "hostile_refused": refused,
        "targets": {"p95_ratio_b_over_a_max": TARGET_P95_RATIO, "hostile_refused": True},
    }
    summary["meets_target"] = ratio_b <= TARGET_P95_RATIO and refused
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=24)
    parser.add_argument("--think", type=float, default=0.05)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cap", type=float, default=90.0)
    parser.add_argument("--rows", type=int, default=50_000)
    options = parser.parse_args()

    async def run_and_leave() -> None:
        print(json.dumps(await main(options), ensure_ascii=False), flush=True)
        # A budget-less bot's reading thread may still be parsing the hostile file: asyncio.run
        # would wait for it on the way out.
        os._exit(0)

    asyncio.run(run_and_leave())
