"""Status-table imports from Telegram: a worker sends a .csv/.xlsx file (or `/import`, then
the file). The handler answers at once with a progress message and starts a background job
(`jobs`, workflow data) that downloads the file to a temporary folder and imports it in
batches, each in its own transaction; the job edits the progress message at most every
`import_progress_interval` seconds (workflow data, default 2) and ends it as the report.

Imports run one at a time (the jobs' "status-import" lane: a second file waits its turn), each
on a database connection of its own (`import_sessions`, workflow data), within the budgets of
`import_limits` (workflow data; default `ImportLimits()`): an import can neither take the
connections updates are served from nor hold the bot for long.

The bytes come through `status_file_reader` (workflow data; default: `bot.download`), so tests
can feed real files through the Telegram path."""

from __future__ import annotations

import asyncio
import html
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiogram import Bot, F, Router
from aiogram.filters import Command, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Document, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.filters import ActiveWorker
from handlers.kit.import_report import render_refusal, render_report
from handlers.kit.jobs import Jobs
from models import User, Worker
from services.clock import Clock
from services.hub import Services
from services.status_import import (
    ImportLimits,
    ImportProgress,
    ImportRefused,
    ImportSessions,
    SessionFactory,
    StatusImporter,
)

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024  # what a bot may download from Telegram
IMPORT_LANE = "status-import"
# An import idles as long as each batch took (half the speed, so updates keep their pace), in
# batches small enough that one write holds the event loop for a few milliseconds only.
IMPORT_PACE = 1.0
IMPORT_BATCH = 250
EXTENSIONS = (".csv", ".xlsx")
StatusFileReader = Callable[[Bot, Document, Path], Awaitable[None]]
Gettext = Callable[[str], str]


class ImportStates(StatesGroup):
    waiting_file = State()


class TableDocument(Filter):
    async def __call__(self, message: Message) -> bool:
        name = (message.document.file_name or "") if message.document else ""
        return name.lower().endswith(EXTENSIONS)


async def ask_file(message: Message, state: FSMContext) -> None:
    await state.set_state(ImportStates.waiting_file)
    await message.answer(_("app.import.send_file"))


async def file_expected(message: Message) -> None:
    await message.answer(_("app.import.need_file"))


async def wrong_file(message: Message) -> None:
    await message.answer(_("app.import.bad_type"))


async def download_document(bot: Bot, document: Document, destination: Path) -> None:
    await bot.download(document, destination=destination)


async def import_document(
    message: Message,
    bot: Bot,
    state: FSMContext,
    user: User,
    worker: Worker,
    services: Services,
    clock: Clock,
    i18n: I18n,
    import_sessions: ImportSessions,
    jobs: Jobs,
    status_file_reader: StatusFileReader | None = None,
    import_progress_interval: float = 2.0,
    import_limits: ImportLimits | None = None,
) -> None:
    document = message.document
    assert document is not None
    await state.clear()
    if document.file_size and document.file_size > MAX_FILE_BYTES:
        await message.answer(_("app.import.too_big"))
        return
    scope = await services.applications.hromada_scope(worker)
    locale = i18n.current_locale

    def gettext(key: str) -> str:
        return i18n.gettext(key, locale=locale)

    queued = jobs.waiting(IMPORT_LANE)
    status = await message.answer(gettext("app.import.queued" if queued else "app.import.started"))

    def importer(sessions: SessionFactory) -> StatusImporter:
        return StatusImporter(
            sessions, clock, batch_size=IMPORT_BATCH, limits=import_limits, pace=IMPORT_PACE
        )

    job = import_job(
        status,
        bot,
        document,
        status_file_reader or download_document,
        importer,
        import_sessions,
        actor_user_id=user.id,
        scope=scope,
        gettext=gettext,
        interval=import_progress_interval,
    )
    jobs.start(job, name=f"status-import-{user.id}", lane=IMPORT_LANE)


async def import_job(
    status: Message,
    bot: Bot,
    document: Document,
    read_file: StatusFileReader,
    importer: Callable[[SessionFactory], StatusImporter],
    import_sessions: ImportSessions,
    *,
    actor_user_id: int,
    scope: set[int] | None,
    gettext: Gettext,
    interval: float,
) -> None:
    """Download, import and report by editing `status` (runs after the update, on its own)."""
    last_edit = time.monotonic()

    async def on_progress(progress: ImportProgress) -> None:
        nonlocal last_edit
        if time.monotonic() - last_edit < interval:
            return
        last_edit = time.monotonic()
        percent = f" ({progress.fraction:.0%})" if progress.fraction is not None else ""
        await status.edit_text(gettext("app.import.progress") % {"rows": progress.rows, "percent": percent})

    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hromada-import-"))
    try:
        suffix = ".xlsx" if (document.file_name or "").lower().endswith(".xlsx") else ".csv"
        path = folder / f"table{suffix}"
        try:
            await read_file(bot, document, path)
        except Exception as exc:  # network, Telegram error: nothing imported, say so
            log.warning("status file download failed for user %s: %s", actor_user_id, type(exc).__name__)
            await status.edit_text(render_refusal(ImportRefused("download_failed"), gettext))
            return
        try:
            async with import_sessions() as sessions:
                report = await importer(sessions).import_file(
                    path, actor_user_id=actor_user_id, progress=on_progress, hromada_scope=scope
                )
        except ImportRefused as refused:  # the file as a whole: the report is the refusal
            log.info("status import refused for user %s: %s", actor_user_id, refused.code)
            await status.edit_text(render_refusal(refused, gettext))
            return
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    log.info("status import %s by user %s: %s", report.batch, actor_user_id, report.counts())
    await status.edit_text(html.escape(render_report(report, gettext)))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(ask_file, Command("import"), ActiveWorker())
    router.message.register(
        import_document, StateFilter(ImportStates.waiting_file), F.document, TableDocument(), ActiveWorker()
    )
    router.message.register(import_document, StateFilter(None), F.document, TableDocument(), ActiveWorker())
    router.message.register(wrong_file, StateFilter(ImportStates.waiting_file), F.document)
    # Commands (/cancel) pass through to their own handlers.
    router.message.register(file_expected, StateFilter(ImportStates.waiting_file), ~F.text.startswith("/"))
    return router
