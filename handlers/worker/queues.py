"""Worker panel, "My queue" and "Team queue" with status filters and pages (issue 3).

Shared with the coordinator's lists: `current_worker`, `render_page`."""

from __future__ import annotations

from collections.abc import Callable

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import CaseCb, QueueCb, RuleCb
from handlers.kit.filters import MenuButton, prune_callbacks
from models import Team, User, Worker
from services.clock import Clock
from services.queues import FILTERS, Page, QueueService
from services.workers import WorkerService

STALE_DAYS = 7
PRIORITY_MARK = {0: "⚪", 1: "🟡", 2: "🟠"}


async def current_worker(session: AsyncSession, user: User) -> Worker | None:
    return await WorkerService(session).worker_for(user)


def priority_mark(priority: int) -> str:
    return PRIORITY_MARK.get(priority, "🔴")


def filter_name(code: str) -> str:
    return _("worker.filter.open") if code == "open" else _(f"case.status.{code}")


def render_page(
    page: Page,
    title: str,
    locale: str,
    make_cb: Callable[[int, str], QueueCb],
    *,
    current_filter: str | None,
    extra_rows: list[list[tuple[str, str]]] | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """A list message: one button per case, then filters, then paging (prev/next)."""
    builder = InlineKeyboardBuilder()
    lines = [title]
    if not page.rows:
        lines.append(_("worker.queue.empty"))
    for row in page.rows:
        builder.button(
            text=f"{priority_mark(row.priority)} {row.number} · {row.service_name(locale)} · "
            f"{_('case.status.' + row.status)}",
            callback_data=CaseCb(action="open", case_id=row.id),
        )
    sizes = [1] * len(page.rows)
    if current_filter is not None:
        for code in FILTERS:
            mark = "• " if code == current_filter else ""
            builder.button(text=mark + filter_name(code), callback_data=make_cb(0, code))
        sizes += [4, 4]
    paging = 0
    if page.page > 0:
        builder.button(
            text=_("worker.btn.prev"), callback_data=make_cb(page.page - 1, current_filter or "open")
        )
        paging += 1
    if page.has_next:
        builder.button(
            text=_("worker.btn.next"), callback_data=make_cb(page.page + 1, current_filter or "open")
        )
        paging += 1
    if paging:
        sizes.append(paging)
    for row in [*(extra_rows or []), [(_("worker.btn.panel"), QueueCb(scope="panel").pack())]]:
        for text, data in row:
            builder.button(text=text, callback_data=data)
        sizes.append(len(row))
    if sizes:
        builder.adjust(*sizes)
    return "\n".join(lines), builder.as_markup()


async def panel_markup(session: AsyncSession, worker: Worker) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("worker.btn.my_queue"), callback_data=QueueCb(scope="my"))
    builder.button(text=_("worker.btn.team_queue"), callback_data=QueueCb(scope="team"))
    sizes = [2]
    if await QueueService(session).coordinated_hromadas(worker):
        builder.button(text=_("coord.btn.hromada"), callback_data=QueueCb(scope="hromada"))
        builder.button(text=_("coord.btn.unassigned"), callback_data=QueueCb(scope="unassigned"))
        builder.button(text=_("coord.btn.stale") % {"days": STALE_DAYS}, callback_data=QueueCb(scope="stale"))
        builder.button(text=_("coord.btn.routing"), callback_data=RuleCb(action="list"))
        sizes += [1, 1, 1, 1]
    builder.adjust(*sizes)
    return builder.as_markup()


async def panel(message: Message, session: AsyncSession, user: User) -> None:
    worker = await current_worker(session, user)
    if worker is None:
        await message.answer(_("worker.not_worker"))
        return
    await message.answer(await panel_text(session, worker), reply_markup=await panel_markup(session, worker))


async def panel_text(session: AsyncSession, worker: Worker) -> str:
    """The panel's title and the commands this worker can use (they are not all buttons)."""
    lines = [_("worker.panel"), "", _("worker.panel.commands")]
    if worker.is_admin or await QueueService(session).coordinated_hromadas(worker):
        lines.append(_("worker.panel.coordinator_commands"))
    return "\n".join(lines)


async def panel_button(query: CallbackQuery, session: AsyncSession, user: User) -> None:
    worker = await current_worker(session, user)
    if worker is None:
        await query.answer(_("worker.not_worker"), show_alert=True)
        return
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            await panel_text(session, worker), reply_markup=await panel_markup(session, worker)
        )


async def show_text(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup) -> None:
    """Edit the list in place (pages, filters)."""
    await query.answer()
    if query.message is not None:
        await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]


async def worker_queue(
    query: CallbackQuery,
    callback_data: QueueCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
) -> None:
    worker = await current_worker(session, user)
    if worker is None or callback_data.status not in FILTERS:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    queues = QueueService(session, clock)
    locale = i18n.current_locale
    status = callback_data.status
    if callback_data.scope == "my":
        page = await queues.my_queue(worker, status, callback_data.page)
        title = _("worker.queue.my") % {"filter": filter_name(status), "page": page.page + 1}
        text, markup = render_page(
            page, title, locale, lambda p, f: QueueCb(scope="my", status=f, page=p), current_filter=status
        )
        await show_text(query, text, markup)
        return
    teams = await queues.worker_teams(worker)
    if not teams:
        await query.answer(_("worker.queue.no_team"), show_alert=True)
        return
    team: Team | None = teams[0]
    if callback_data.team_id:
        team = next((t for t in teams if t.id == callback_data.team_id), None)
    if team is None:  # forged or stale: not a team of theirs
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    page = await queues.team_queue(team.id, status, callback_data.page)
    title = _("worker.queue.team") % {
        "team": team.name(locale),
        "filter": filter_name(status),
        "page": page.page + 1,
    }
    other_teams = [
        [(t.name(locale), QueueCb(scope="team", team_id=t.id).pack())] for t in teams if t.id != team.id
    ]
    text, markup = render_page(
        page,
        title,
        locale,
        lambda p, f: QueueCb(scope="team", status=f, page=p, team_id=team.id),
        current_filter=status,
        extra_rows=other_teams,
    )
    await show_text(query, text, markup)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, QueueCb)
    router.message.register(panel, MenuButton("menu.worker_panel"))
    router.message.register(panel, Command("worker"))
    router.callback_query.register(panel_button, QueueCb.filter(F.scope == "panel"))
    router.callback_query.register(worker_queue, QueueCb.filter(F.scope.in_({"my", "team"})))
    return router
