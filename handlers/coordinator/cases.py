"""Coordinators: all cases of their hromadas, unassigned and stale ones (issue 3). Reassigning
is the case card's "Assign" button (handlers/worker/cases.py), shown to coordinators."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.callbacks import QueueCb
from handlers.kit.filters import prune_callbacks
from handlers.worker.queues import STALE_DAYS, current_worker, filter_name, render_page, show_text
from models import User
from services.clock import Clock
from services.queues import FILTERS, QueueService


async def coordinator_queue(
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
    if not await queues.coordinated_hromadas(worker):
        await query.answer(_("coord.not_coordinator"), show_alert=True)
        return
    locale = i18n.current_locale
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
    text, markup = render_page(
        page,
        title,
        locale,
        lambda p, f: QueueCb(scope=scope, status=f, page=p),
        current_filter=current,
    )
    await show_text(query, text, markup)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, QueueCb)
    router.callback_query.register(
        coordinator_queue, QueueCb.filter(F.scope.in_({"hromada", "unassigned", "stale"}))
    )
    return router
