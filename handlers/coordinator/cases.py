"""Coordinators: all cases of their hromadas, unassigned and stale ones. Reassigning is the
case card's "Assign" button (the worker's case router), shown to coordinators."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import QueueCb
from handlers.kit.filters import ActiveWorker, prune_callbacks
from handlers.kit.queues import edit_list, filter_name, page_screen
from models import Worker
from services.errors import StaleAction
from services.hub import Services
from services.queues import FILTERS, STALE_DAYS
from services.workers import NotCoordinator


async def coordinator_queue(
    query: CallbackQuery, callback_data: QueueCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    if callback_data.status not in FILTERS:
        raise StaleAction()
    queues = services.queues
    if not await queues.coordinated_hromadas(worker):
        raise NotCoordinator()
    scope = callback_data.scope
    if scope == "hromada":
        page = await queues.hromada_cases(worker, callback_data.status, callback_data.page)
        title = _("coord.queue.hromada") % {
            "filter": filter_name(callback_data.status),
            "page": page.page + 1,
        }
        current: str | None = callback_data.status
    elif scope == "unassigned":
        page = await queues.unassigned(worker, callback_data.page)
        title = _("coord.queue.unassigned") % {"page": page.page + 1}
        current = None
    else:
        page = await queues.stale(worker, STALE_DAYS, callback_data.page)
        title = _("coord.queue.stale") % {"days": STALE_DAYS, "page": page.page + 1}
        current = None
    text, markup = page_screen(
        page,
        title,
        i18n.current_locale,
        lambda p, f: QueueCb(scope=scope, status=f, page=p),
        current_filter=current,
    )
    await edit_list(query, text, markup)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, QueueCb)
    router.callback_query.filter(ActiveWorker())
    router.callback_query.register(
        coordinator_queue, QueueCb.filter(F.scope.in_({"hromada", "unassigned", "stale"}))
    )
    return router
