"""`hromada-bot` command line: run, webhook, migrate, seed, console, import-statuses, sla-backfill.

A missing or malformed setting ends the command with one line naming the variable (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.logformat import configure_logging
from infra.settings import Settings, SettingsError, load_settings

log = logging.getLogger("hromada_bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hromada-bot", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO (console: WARNING)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot with long polling (needs BOT_TOKEN)")
    commands.add_parser("webhook", help="run the webhook server (needs BOT_TOKEN, WEBHOOK_SECRET)")
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head")
    migrate.add_argument("--downgrade", action="store_true", help="go down to --revision instead of up")
    seed = commands.add_parser(
        "seed", help="load reference data (hromadas, services, teams, routing) from YAML"
    )
    seed.add_argument("--file", type=Path, help="the YAML: services, teams, routing (and hromadas)")
    seed.add_argument(
        "--katottg-oblast",
        action="append",
        default=[],
        metavar="OBLAST",
        help="also load every hromada and settlement of this oblast from the official codifier "
        "(KATOTTG code like UA23000000000064947 or UA23, a name like Запорізька, or all); "
        "repeat or separate by commas",
    )
    console = commands.add_parser("console", help="talk to the bot in this terminal; no token, no network")
    console.add_argument("--no-sample", action="store_true", help="do not load the sample reference data")
    backfill = commands.add_parser(
        "sla-backfill", help="give due times to open cases filed before their service had an SLA policy"
    )
    backfill.add_argument("--batch", type=int, default=500, help="cases per transaction")
    imports = commands.add_parser("import-statuses", help="import an application status table (CSV/XLSX)")
    imports.add_argument("file", type=Path)
    imports.add_argument("--no-progress", action="store_true")
    return parser


async def _migrate(settings: Settings, revision: str, down: bool) -> int:
    from infra.migrate import downgrade, upgrade

    if down:
        await downgrade(settings.database.url, revision)
    else:
        await upgrade(settings.database.url, revision)
    print(f"database at revision {revision}")
    return 0


async def _seed(settings: Settings, path: Path | None, oblasts: Sequence[str]) -> int:
    import time

    from infra.db import create_engine, create_sessionmaker
    from infra.migrate import prepare_embedded_database
    from services.places import CodifierError, load_codifier, read_codifier
    from services.reference_data import ReferenceDataError, load_reference_file

    if path is None and not oblasts:
        print("seed: give --file, --katottg-oblast, or both", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        # Read (and check) the codifier before touching the database.
        codifier = await asyncio.to_thread(read_codifier, oblasts) if oblasts else None
    except CodifierError as exc:
        print(f"refused, nothing was changed: {exc}", file=sys.stderr)
        return 1
    await prepare_embedded_database(settings.database.url)
    engine = create_engine(settings.database.url)
    lines = []
    try:
        sessionmaker = create_sessionmaker(engine)
        # One transaction: the codifier first, so that the YAML's teams and rules may name its
        # hromadas and settlements by KATOTTG code.
        async with sessionmaker.begin() as session:
            if codifier is not None:
                lines.append((await load_codifier(session, codifier)).summary())
            if path is not None:
                report = await load_reference_file(session, path)
                lines.append(f"reference data loaded from {path}: {report.summary()}")
        if path is not None:  # policies may be new: open cases filed before them get due times
            lines.append(await backfill_sla(sessionmaker, settings.locale.tz))
    except (ReferenceDataError, CodifierError) as exc:
        print(f"refused, nothing was changed: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    for line in lines:
        print(line)
    print(f"seed took {time.perf_counter() - started:.1f} s")
    return 0


async def backfill_sla(sessionmaker: Any, zone: Any, batch: int = 500, clock: Any = None) -> str:
    """Backfill in batches, one transaction each (services/sla_backfill.py), then one summary
    notice per coordinator of a team with overdue cases; returns a line of counts."""
    from services.clock import Clock
    from services.sla_backfill import backfill_batch, notify_backfill

    clock = clock or Clock()
    started: Counter[int] = Counter()
    breached: Counter[int] = Counter()
    after_id = 0
    while True:
        async with sessionmaker.begin() as session:
            done = await backfill_batch(session, clock, zone, after_id=after_id, batch=batch)
        if done.last_id is None:
            break
        after_id = done.last_id
        started.update(done.started)
        breached.update(done.breached)
    async with sessionmaker.begin() as session:
        notices = await notify_backfill(session, clock.now(), zone, started, breached)
    return (
        f"SLA backfill: {started.total()} open case(s) given due times, {breached.total()} already "
        f"overdue, {notices} summary notice(s) queued"
    )


async def _sla_backfill(settings: Settings, batch: int) -> int:
    from infra.db import create_engine, create_sessionmaker

    engine = create_engine(settings.database.url)
    try:
        print(await backfill_sla(create_sessionmaker(engine), settings.locale.tz, batch))
    finally:
        await engine.dispose()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = args.log_level or ("WARNING" if args.command == "console" else "INFO")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"hromada-bot: {exc}", file=sys.stderr)
        return 2
    configure_logging(level, settings.logging.log_format)
    if level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # it announces every plugin at INFO
    try:
        if args.command == "migrate":
            return asyncio.run(_migrate(settings, args.revision, args.downgrade))
        if args.command == "seed":
            return asyncio.run(_seed(settings, args.file, args.katottg_oblast))
        if args.command == "console":
            from bot.console import run_console

            return asyncio.run(run_console(settings, load_sample=not args.no_sample))
        if args.command == "run":
            from bot.runner import run_polling

            return asyncio.run(run_polling(settings))
        if args.command == "webhook":
            from bot.webhook import run_webhook

            return asyncio.run(run_webhook(settings))
        if args.command == "sla-backfill":
            return asyncio.run(_sla_backfill(settings, args.batch))
        if args.command == "import-statuses":
            from bot.import_statuses import run as run_import

            return asyncio.run(run_import(settings, args.file, show_progress=not args.no_progress))
    except SettingsError as exc:
        print(f"hromada-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
