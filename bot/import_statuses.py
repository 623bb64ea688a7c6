"""`hromada-bot import-statuses FILE`: import an application status table (CSV or XLSX).

Prints the report (in DEFAULT_LANGUAGE) on stdout and, with `show_progress`, a progress bar on
stderr. Exit codes: 0 every row applied, 1 some rows rejected (listed) or the file broke part-way,
2 the file was refused as a whole (nothing changed). See services/status_import.py for columns.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from infra.settings import Settings
from services.status_import import ImportProgress, ImportRefused, StatusImporter

CLI_REJECTIONS = 200


class ProgressBar:
    """A one-line bar on a terminal stream, redrawn at most every `interval` seconds."""

    def __init__(self, stream: TextIO, interval: float = 0.2, width: int = 30) -> None:
        self.stream = stream
        self.interval = interval
        self.width = width
        self._last = 0.0
        self._drawn = False

    async def __call__(self, progress: ImportProgress) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        if progress.fraction is None:
            line = f"\r{progress.rows:>10,} rows"
        else:
            filled = int(progress.fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"\r[{bar}] {progress.fraction:4.0%} {progress.rows:>10,} rows"
        self.stream.write(line)
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


async def run(settings: Settings, path: Path, *, show_progress: bool = True) -> int:
    from handlers.kit.import_report import render_refusal, render_report
    from infra.db import dedicated_sessionmaker, is_sqlite
    from infra.i18n import create_i18n
    from infra.migrate import upgrade

    i18n = create_i18n(settings.locale.default_language)
    locale = settings.locale.default_language

    def gettext(key: str) -> str:
        return i18n.gettext(key, locale=locale)

    path = Path(path)
    if not path.is_file():
        print(render_refusal(ImportRefused("unreadable"), gettext), file=sys.stderr)
        return 2
    if is_sqlite(settings.database.url):
        # The embedded SQLite default migrates itself (as `seed` does); PostgreSQL is migrated
        # by `hromada-bot migrate`.
        await upgrade(settings.database.url)
    bar = ProgressBar(sys.stderr) if show_progress else None
    try:
        # The same budgets as a file sent to the bot (ImportLimits), on one connection.
        async with dedicated_sessionmaker(settings.database.url) as sessions:
            importer = StatusImporter(sessions, tz=settings.locale.tz)
            report = await importer.import_file(path, progress=bar)
    except ImportRefused as refused:
        if bar:
            bar.finish()
        print(render_refusal(refused, gettext), file=sys.stderr)
        return 2
    if bar:
        bar.finish()
    print(render_report(report, gettext, max_rejections=CLI_REJECTIONS))
    return 1 if report.rejected or report.stopped else 0
