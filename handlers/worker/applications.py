"""Application status by hand and the lookups report.

- `/app <number>`: the application's card with one button per status of the vocabulary; a press
  changes the status (audited, pushed to subscribers).
- `/lookups` (coordinators, admins): missed number lookups per user id, no numbers or phones.
Status-table imports are in imports.py."""

from __future__ import annotations

import html
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import AppStatusCb
from handlers.kit.filters import ActiveWorker, prune_callbacks
from handlers.kit.render import capped, kind_label
from infra.settings import Settings
from models import User, Worker
from services.application_desk import DeskCard
from services.applications import local_date, mask_phone
from services.hub import Services


def worker_card(desk: DeskCard, locale: str, tz: ZoneInfo) -> tuple[str, InlineKeyboardMarkup]:
    app, vocabulary = desk.application, desk.vocabulary
    history = [
        _("app.worker.history_line")
        % {
            "date": local_date(change.changed_at, tz),
            "status": html.escape(vocabulary.label(change.status_code, locale)),
            "source": _(f"app.worker.source.{change.source}"),
        }
        for change in desk.history
    ]
    text = _("app.worker.card") % {
        "number": html.escape(app.number),
        "kind": kind_label(app.kind),
        "phone": mask_phone(app.phone),
        "hromada": html.escape(desk.hromada.name(locale)) if desk.hromada else "—",
        "status": html.escape(vocabulary.label(app.status_code, locale)),
        "date": local_date(app.status_changed_at, tz),
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
    return capped(text, _("common.cut")), builder.as_markup()


async def open_application(
    message: Message,
    command: CommandObject,
    services: Services,
    worker: Worker,
    i18n: I18n,
    settings: Settings,
) -> None:
    if not command.args or not command.args.strip():
        await message.answer(_("app.worker.usage"))
        return
    desk = services.application_desk
    app = await desk.find(worker, command.args)
    if app is None:
        await message.answer(_("app.worker.not_found") % {"number": html.escape(command.args.strip()[:40])})
        return
    text, markup = worker_card(await desk.card(app), i18n.current_locale, settings.locale.tz)
    await message.answer(text, reply_markup=markup)


async def set_status(
    query: CallbackQuery,
    callback_data: AppStatusCb,
    services: Services,
    user: User,
    worker: Worker,
    i18n: I18n,
    settings: Settings,
    callback_answer: CallbackAnswer,
) -> None:
    desk = services.application_desk
    app, vocabulary = await desk.managed(worker, callback_data.application_id, callback_data.status)
    result = await services.applications.change_status(
        app, callback_data.status, vocabulary=vocabulary, source="worker", actor_user_id=user.id
    )
    if not result.changed:
        callback_answer.text = _("app.worker.same_status")
        return
    callback_answer.text = _("app.worker.changed") % {"n": result.pushes}
    if isinstance(query.message, Message):
        text, markup = worker_card(await desk.card(app), i18n.current_locale, settings.locale.tz)
        await query.message.edit_text(text, reply_markup=markup)


async def lookups_report(message: Message, services: Services, worker: Worker, settings: Settings) -> None:
    applications = services.applications
    if not await applications.is_coordinator(worker):
        await message.answer(_("app.lookups.forbidden"))
        return
    stats = await applications.lookup_stats(services.clock.now() - timedelta(hours=24))
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


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, AppStatusCb)
    router.callback_query.filter(ActiveWorker())
    router.message.register(open_application, Command("app"), ActiveWorker())
    router.message.register(lookups_report, Command("lookups"), ActiveWorker())
    router.callback_query.register(set_status, AppStatusCb.filter())
    return router
