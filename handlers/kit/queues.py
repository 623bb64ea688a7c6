"""Case lists shared by the worker's and the coordinator's queues: a page of cases with
status filters and paging, edited in place."""

from __future__ import annotations

from collections.abc import Callable

from aiogram.types import CallbackQuery, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import CaseCb, QueueCb
from handlers.kit.messages import edit_or_send
from handlers.kit.sla_words import sla_line
from services.queues import FILTERS, Page

PRIORITY_MARK = {0: "⚪", 1: "🟡", 2: "🟠"}


def priority_mark(priority: int) -> str:
    return PRIORITY_MARK.get(priority, "🔴")


def filter_name(code: str) -> str:
    return _("worker.filter.open") if code == "open" else _(f"case.status.{code}")


def page_screen(
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
        sla = sla_line(row.sla)
        builder.button(
            text=f"{priority_mark(row.priority)} {row.number} · {row.service_name(locale)} · "
            f"{_('case.status.' + row.status)}" + (f" · {sla}" if sla else ""),
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
    for extra in [*(extra_rows or []), [(_("worker.btn.panel"), QueueCb(scope="panel").pack())]]:
        for text, data in extra:
            builder.button(text=text, callback_data=data)
        sizes.append(len(extra))
    if sizes:
        builder.adjust(*sizes)
    return "\n".join(lines), builder.as_markup()


async def edit_list(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup) -> None:
    """Show a list page in place of the pressed message (pages, filters)."""
    await edit_or_send(query, text, markup)
