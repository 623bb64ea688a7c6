"""Application status by hand, status-table imports, the lookups report (issue 5).

- `/app <number>`: the application's card with one button per status of the vocabulary; a press
  changes the status (audited, pushed to subscribers).
- A worker sends a .csv/.xlsx file (or `/import`, then the file): it is downloaded to a temporary
  file and imported in batches; a progress message is edited at most every
  `import_progress_interval` seconds (workflow data, default 2) and ends as the report.
  The bytes come through `status_file_reader` (workflow data; default: `bot.download`), so tests
  can feed real files through the Telegram path.
- `/lookups` (coordinators, admins): missed number lookups per user id, no numbers or phones.
"""

from __future__ import annotations

import asyncio
import html
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Document, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import AppStatusCb
from handlers.kit.filters import prune_callbacks
from handlers.kit.render import kind_label
from infra.settings import Settings
from models import Application, ApplicationStatusChange, Hromada, User, Worker
from services.applications import ApplicationService, StatusVocabulary, local_date, mask_phone
from services.clock import Clock
from services.status_import import ImportProgress, ImportRefused, ImportReport, StatusImporter
from services.workers import WorkerService

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024  # what a bot may download from Telegram
EXTENSIONS = (".csv", ".xlsx")
REPORT_REJECTIONS = 20
StatusFileReader = Callable[[Bot, Document, Path], Awaitable[None]]


class ImportStates(StatesGroup):
    waiting_file = State()


class ActiveWorker(Filter):
    """Passes for an active worker and hands the row in as `worker`."""

    async def __call__(
        self, event: Any, session: AsyncSession, user: User | None = None
    ) -> bool | dict[str, Any]:
        if user is None:
            return False
        worker = await WorkerService(session).worker_for(user)
        return {"worker": worker} if worker is not None else False


class TableDocument(Filter):
    async def __call__(self, message: Message) -> bool:
        name = (message.document.file_name or "") if message.document else ""
        return name.lower().endswith(EXTENSIONS)


# -- rendering ---------------------------------------------------------------------------------


def render_report(
    report: ImportReport, gettext: Callable[[str], str], *, max_rejections: int = REPORT_REJECTIONS
) -> str:
    """The import report as plain text (no user-typed content: counts, lines, reason codes)."""
    lines = [gettext("app.import.report") % report.counts()]
    if report.older:
        lines.append(gettext("app.import.older") % {"older": report.older})
    if report.rejections:
        lines.append("")
        lines.append(gettext("app.import.rejected_title"))
        for rejection in report.rejections[:max_rejections]:
            reason = gettext(f"app.import.reason.{rejection.reason}")
            if "%(column)s" in reason:
                reason = reason % {"column": gettext(f"app.import.column.{rejection.column}")}
            lines.append(gettext("app.import.rejected_line") % {"line": rejection.line, "reason": reason})
        hidden = report.rejected - min(len(report.rejections), max_rejections)
        if hidden > 0:
            lines.append(gettext("app.import.rejected_more") % {"n": hidden})
    if report.stopped is not None:
        lines.append("")
        lines.append(
            gettext("app.import.stopped")
            % {
                "line": report.stopped.line or "?",
                "reason": gettext(f"app.import.refused.{report.stopped.code}"),
            }
        )
    return "\n".join(lines)


def render_refusal(refused: ImportRefused, gettext: Callable[[str], str]) -> str:
    detail = refused.detail
    if refused.code in ("missing_columns", "duplicate_column"):
        detail = ", ".join(gettext(f"app.import.column.{c.strip()}") for c in detail.split(","))
    reason = gettext(f"app.import.refused.{refused.code}")
    if "%(detail)s" in reason:
        reason = reason % {"detail": detail}
    return gettext("app.import.refused") % {"reason": reason}


async def worker_card(
    session: AsyncSession, app: Application, locale: str
) -> tuple[str, InlineKeyboardMarkup]:
    vocabulary = await StatusVocabulary.load(session)
    changes = (
        await session.execute(
            select(
                ApplicationStatusChange.to_status,
                ApplicationStatusChange.changed_at,
                ApplicationStatusChange.source,
            )
            .where(ApplicationStatusChange.application_id == app.id)
            .order_by(ApplicationStatusChange.changed_at, ApplicationStatusChange.id)
        )
    ).all()
    history = [
        _("app.worker.history_line")
        % {
            "date": local_date(at),
            "status": html.escape(vocabulary.label(code, locale)),
            "source": _(f"app.worker.source.{source}"),
        }
        for code, at, source in changes
    ]
    hromada = await session.get(Hromada, app.hromada_id) if app.hromada_id else None
    text = _("app.worker.card") % {
        "number": html.escape(app.number),
        "kind": kind_label(app.kind),
        "phone": mask_phone(app.phone),
        "hromada": html.escape(hromada.name(locale)) if hromada else "—",
        "status": html.escape(vocabulary.label(app.status_code, locale)),
        "date": local_date(app.status_changed_at),
        "history": "\n".join(history) or "—",
    }
    builder = InlineKeyboardBuilder()
    for code in vocabulary.codes():
        if code != app.status_code:
            builder.button(
                text=vocabulary.label(code, locale),
                callback_data=AppStatusCb(application_id=app.id, status=code),
            )
    builder.adjust(2)
    return text, builder.as_markup()


# -- status by hand ------------------------------------------------------------------------------


async def open_application(
    message: Message, command: CommandObject, session: AsyncSession, worker: Worker, clock: Clock, i18n: I18n
) -> None:
    if not command.args or not command.args.strip():
        await message.answer(_("app.worker.usage"))
        return
    service = ApplicationService(session, clock)
    app = await service.by_number(command.args)
    if app is None or not await service.worker_may_manage(worker, app):
        await message.answer(_("app.worker.not_found") % {"number": html.escape(command.args.strip()[:40])})
        return
    text, markup = await worker_card(session, app, i18n.current_locale)
    await message.answer(text, reply_markup=markup)


async def set_status(
    query: CallbackQuery,
    callback_data: AppStatusCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
) -> None:
    worker = await WorkerService(session).worker_for(user)
    service = ApplicationService(session, clock)
    app = await session.get(Application, callback_data.application_id)
    vocabulary = await StatusVocabulary.load(session)
    if (
        worker is None
        or app is None
        or callback_data.status not in vocabulary.by_code
        or not await service.worker_may_manage(worker, app)
    ):
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    result = await service.change_status(
        app, callback_data.status, vocabulary=vocabulary, source="worker", actor_user_id=user.id
    )
    if not result.changed:
        await query.answer(_("app.worker.same_status"))
        return
    await query.answer(_("app.worker.changed") % {"n": result.pushes})
    if isinstance(query.message, Message):
        text, markup = await worker_card(session, app, i18n.current_locale)
        await query.message.edit_text(text, reply_markup=markup)


# -- lookups report --------------------------------------------------------------------------------


async def lookups_report(
    message: Message, session: AsyncSession, worker: Worker, clock: Clock, settings: Settings
) -> None:
    service = ApplicationService(session, clock)
    if not await service.is_coordinator(worker):
        await message.answer(_("app.lookups.forbidden"))
        return
    stats = await service.lookup_stats(clock.now() - timedelta(hours=24))
    if not stats:
        await message.answer(_("app.lookups.none"))
        return
    lines = [_("app.lookups.title"), ""]
    for row in stats:
        lines.append(
            _("app.lookups.line")
            % {
                "user_id": row.user_id,
                "misses": row.misses,
                "attempts": row.attempts,
                "last": row.last_at.astimezone(settings.locale.tz).strftime("%d.%m.%Y %H:%M"),
            }
        )
    await message.answer("\n".join(lines))


# -- imports ---------------------------------------------------------------------------------------


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
    clock: Clock,
    i18n: I18n,
    session: AsyncSession,
    worker: Worker,
    sessionmaker: async_sessionmaker[AsyncSession],
    status_file_reader: StatusFileReader | None = None,
    import_progress_interval: float = 2.0,
) -> None:
    document = message.document
    assert document is not None
    await state.clear()
    if document.file_size and document.file_size > MAX_FILE_BYTES:
        await message.answer(_("app.import.too_big"))
        return
    scope = await ApplicationService(session, clock).hromada_scope(worker)
    # The import runs its own transactions, one per batch: end this update's unit of work
    # first, or its open write (the FSM clear) would hold SQLite's lock against them.
    await session.commit()
    locale = i18n.current_locale

    def gettext(key: str) -> str:
        return i18n.gettext(key, locale=locale)

    status = await message.answer(gettext("app.import.started"))
    last_edit = time.monotonic()

    async def on_progress(progress: ImportProgress) -> None:
        nonlocal last_edit
        if time.monotonic() - last_edit < import_progress_interval:
            return
        last_edit = time.monotonic()
        percent = f" ({progress.fraction:.0%})" if progress.fraction is not None else ""
        await status.edit_text(gettext("app.import.progress") % {"rows": progress.rows, "percent": percent})

    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hromada-import-"))
    try:
        suffix = ".xlsx" if (document.file_name or "").lower().endswith(".xlsx") else ".csv"
        path = folder / f"table{suffix}"
        try:
            await (status_file_reader or download_document)(bot, document, path)
        except Exception as exc:  # network, Telegram error: nothing imported
            log.warning("status file download failed for user %s: %s", user.id, type(exc).__name__)
            await status.edit_text(render_refusal(ImportRefused("download_failed"), gettext))
            return
        importer = StatusImporter(sessionmaker, clock)
        try:
            report = await importer.import_file(
                path, actor_user_id=user.id, progress=on_progress, hromada_scope=scope
            )
        except ImportRefused as refused:
            log.info("status import refused for user %s: %s", user.id, refused.code)
            await status.edit_text(render_refusal(refused, gettext))
            return
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    log.info("status import %s by user %s: %s", report.batch, user.id, report.counts())
    await status.edit_text(html.escape(render_report(report, gettext)))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, AppStatusCb)
    router.message.register(open_application, Command("app"), ActiveWorker())
    router.message.register(lookups_report, Command("lookups"), ActiveWorker())
    router.message.register(ask_file, Command("import"), ActiveWorker())
    router.message.register(
        import_document, StateFilter(ImportStates.waiting_file), F.document, TableDocument(), ActiveWorker()
    )
    router.message.register(import_document, StateFilter(None), F.document, TableDocument(), ActiveWorker())
    router.message.register(wrong_file, StateFilter(ImportStates.waiting_file), F.document)
    # Commands (/cancel) pass through to their own handlers.
    router.message.register(file_expected, StateFilter(ImportStates.waiting_file), ~F.text.startswith("/"))
    router.callback_query.register(set_status, AppStatusCb.filter())
    return router
