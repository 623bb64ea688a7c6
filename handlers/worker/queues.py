"""Worker panel, "My queue" and "Team queue" with status filters and pages."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import AnnCb, QueueCb, ReplyAdminCb, ReportCb, RuleCb
from handlers.kit.filters import ActiveWorker, MenuButton, prune_callbacks
from handlers.kit.queues import edit_list, filter_name, page_screen
from models import Worker
from services.errors import StaleAction
from services.hub import Services
from services.queues import FILTERS, STALE_DAYS
from services.workers import NotWorker


def panel_markup(coordinator: bool, reports: bool = False) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("worker.btn.my_queue"), callback_data=QueueCb(scope="my"))
    builder.button(text=_("worker.btn.team_queue"), callback_data=QueueCb(scope="team"))
    sizes = [2]
    if coordinator:
        builder.button(text=_("coord.btn.hromada"), callback_data=QueueCb(scope="hromada"))
        builder.button(text=_("coord.btn.unassigned"), callback_data=QueueCb(scope="unassigned"))
        builder.button(text=_("coord.btn.stale") % {"days": STALE_DAYS}, callback_data=QueueCb(scope="stale"))
        builder.button(text=_("coord.btn.routing"), callback_data=RuleCb(action="list"))
        builder.button(text=_("replies.btn.manage"), callback_data=ReplyAdminCb(action="teams"))
        builder.button(text=_("ann.btn.panel"), callback_data=AnnCb(action="start"))
        sizes += [1, 1, 1, 1, 1, 1]
    if reports:
        builder.button(text=_("reports.btn.menu"), callback_data=ReportCb(action="menu"))
        sizes.append(1)
    builder.adjust(*sizes)
    return builder.as_markup()


def panel_text(worker: Worker, coordinator: bool) -> str:
    """The panel's title and the commands this worker can use (they are not all buttons)."""
    lines = [_("worker.panel"), "", _("worker.panel.commands")]
    if worker.is_admin or coordinator:
        lines.append(_("worker.panel.coordinator_commands"))
    return "\n".join(lines)


async def _send_panel(message: Message, services: Services, worker: Worker) -> None:
    coordinator = bool(await services.queues.coordinated_hromadas(worker))
    reports = await services.reports.may_report(worker)
    await message.answer(panel_text(worker, coordinator), reply_markup=panel_markup(coordinator, reports))


async def panel(message: Message, services: Services, worker: Worker) -> None:
    await _send_panel(message, services, worker)


async def panel_button(query: CallbackQuery, services: Services, worker: Worker) -> None:
    if isinstance(query.message, Message):
        await _send_panel(query.message, services, worker)


async def not_a_worker(event: object) -> None:
    raise NotWorker()


async def worker_queue(
    query: CallbackQuery,
    callback_data: QueueCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    if callback_data.status not in FILTERS:
        raise StaleAction()
    queues = services.queues
    locale = i18n.current_locale
    status = callback_data.status
    if callback_data.scope == "my":
        page = await queues.my_queue(worker, status, callback_data.page)
        title = _("worker.queue.my") % {"filter": filter_name(status), "page": page.page + 1}
        text, markup = page_screen(
            page, title, locale, lambda p, f: QueueCb(scope="my", status=f, page=p), current_filter=status
        )
        await edit_list(query, text, markup)
        return
    team, teams = await queues.queue_team(worker, callback_data.team_id)
    if team is None:
        callback_answer.text = _("worker.queue.no_team")
        callback_answer.show_alert = True
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
    team_id = team.id
    text, markup = page_screen(
        page,
        title,
        locale,
        lambda p, f: QueueCb(scope="team", status=f, page=p, team_id=team_id),
        current_filter=status,
        extra_rows=other_teams,
    )
    await edit_list(query, text, markup)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, QueueCb)
    router.message.register(panel, MenuButton("menu.worker_panel"), ActiveWorker())
    router.message.register(panel, Command("worker"), ActiveWorker())
    router.message.register(not_a_worker, MenuButton("menu.worker_panel"))
    router.message.register(not_a_worker, Command("worker"))
    router.callback_query.register(panel_button, QueueCb.filter(F.scope == "panel"), ActiveWorker())
    router.callback_query.register(not_a_worker, QueueCb.filter(F.scope == "panel"))
    router.callback_query.register(worker_queue, QueueCb.filter(F.scope.in_({"my", "team"})), ActiveWorker())
    return router
