"""Mobile office schedules for coordinators (issue 4).

/mobile_office — the schedules of the settlements this coordinator manages, each with an "end"
button, and how to add one:
/mobile_office_add <settlement code> <weekday 1–7> <HH:MM-HH:MM> [every N weeks] [slot minutes] [place]
e.g. `/mobile_office_add matviivka 2 10:00-13:00 1 20 Будинок культури` (every Tuesday).
"""

from __future__ import annotations

import html
import re
from datetime import time

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import MobileOfficeCb
from handlers.kit.filters import prune_callbacks
from infra.settings import Settings
from models import User
from services.clock import Clock
from services.mobile_office import MobileOfficeError, MobileOfficeService
from services.reminders import ReminderRules
from services.workers import WorkerService

_ADD = re.compile(
    r"^(?P<code>[a-z0-9_\-]{1,40})\s+(?P<weekday>[1-7])\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})"
    r"(?:\s+(?P<every>\d{1,2}))?(?:\s+(?P<slot>\d{1,3}))?(?:\s+(?P<place>.+))?$",
    re.DOTALL,
)


async def _coordinator(session: AsyncSession, user: User | None):
    if user is None:
        return None
    worker = await WorkerService(session).worker_for(user)
    if worker is None or not worker.active:
        return None
    return worker


async def show(message: Message, session: AsyncSession, user: User, clock: Clock, settings: Settings) -> None:
    worker = await _coordinator(session, user)
    service = MobileOfficeService(session, clock, ReminderRules.from_settings(settings))
    settlements = await service.managed_settlements(worker) if worker else []
    if not settlements:
        await message.answer(_("mo.coord.not_allowed"))
        return
    lang = user.language or "uk"
    names = {s.id: s for s in settlements}
    schedules = await service.schedules_for(list(names))
    weekdays = _("mo.weekdays").split()
    lines = [_("mo.coord.title")]
    builder = InlineKeyboardBuilder()
    for schedule in schedules:
        settlement = names[schedule.settlement_id]
        lines.append(
            _("mo.coord.line")
            % {
                "id": schedule.id,
                "settlement": html.escape(settlement.name(lang)),
                "weekday": weekdays[schedule.weekday],
                "every": schedule.every_weeks,
                "from": f"{schedule.start_time:%H:%M}",
                "to": f"{schedule.end_time:%H:%M}",
                "slot": schedule.slot_minutes,
                "place": html.escape(schedule.place or "—"),
            }
        )
        builder.button(
            text=_("mo.coord.btn_end") % {"id": schedule.id},
            callback_data=MobileOfficeCb(action="end", id=schedule.id),
        )
    if not schedules:
        lines.append(_("mo.coord.empty"))
    lines.append("")
    lines.append(_("mo.coord.howto"))
    lines.append(", ".join(f"<code>{html.escape(s.code)}</code>" for s in settlements[:40]))
    builder.adjust(2)
    await message.answer("\n".join(lines), reply_markup=builder.as_markup() if schedules else None)


async def add(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
) -> None:
    worker = await _coordinator(session, user)
    service = MobileOfficeService(session, clock, ReminderRules.from_settings(settings))
    settlements = await service.managed_settlements(worker) if worker else []
    if not settlements:
        await message.answer(_("mo.coord.not_allowed"))
        return
    match = _ADD.match((command.args or "").strip())
    if match is None:
        await message.answer(_("mo.coord.bad_format"))
        return
    by_code = {s.code: s for s in settlements}
    settlement = by_code.get(match["code"])
    if settlement is None:
        await message.answer(_("mo.error.not_allowed"))
        return
    try:
        start = time(int(match["h1"]), int(match["m1"]))
        end = time(int(match["h2"]), int(match["m2"]))
    except ValueError:
        await message.answer(_("mo.error.bad_hours"))
        return
    try:
        schedule = await service.add_schedule(
            worker,
            settlement.id,
            weekday=int(match["weekday"]) - 1,
            start_time=start,
            end_time=end,
            every_weeks=int(match["every"] or 1),
            slot_minutes=int(match["slot"] or 20),
            place=match["place"] or "",
        )
    except MobileOfficeError as exc:
        await message.answer(_(f"mo.error.{exc.code}"))
        return
    trips = await service.upcoming(settlement.id)
    next_trip = next((t for t in trips if t.schedule.id == schedule.id), None)
    await message.answer(
        _("mo.coord.added") % {"id": schedule.id, "next": f"{next_trip.day:%d.%m.%Y}" if next_trip else "—"}
    )


async def end(
    query: CallbackQuery,
    callback_data: MobileOfficeCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
) -> None:
    worker = await _coordinator(session, user)
    if worker is None:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    service = MobileOfficeService(session, clock, ReminderRules.from_settings(settings))
    try:
        await service.end_schedule(worker, callback_data.id)
    except MobileOfficeError as exc:
        await query.answer(_(f"mo.error.{exc.code}"), show_alert=True)
        return
    await query.answer(_("mo.coord.ended") % {"id": callback_data.id}, show_alert=True)


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, MobileOfficeCb)
    router.message.register(show, Command("mobile_office"))
    router.message.register(add, Command("mobile_office_add"))
    router.callback_query.register(end, MobileOfficeCb.filter(F.action == "end"))
    return router
