"""Mobile office schedules for coordinators.

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
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import MobileOfficeCb
from handlers.kit.filters import ActiveWorker, prune_callbacks
from models import User, Worker
from services.hub import Services
from services.mobile_office import MobileOfficeError

_ADD = re.compile(
    r"^(?P<code>[a-z0-9_\-]{1,40})\s+(?P<weekday>[1-7])\s+(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})"
    r"(?:\s+(?P<every>\d{1,2}))?(?:\s+(?P<slot>\d{1,3}))?(?:\s+(?P<place>.+))?$",
    re.DOTALL,
)


async def not_allowed(message: Message) -> None:
    await message.answer(_("mo.coord.not_allowed"))


async def show(message: Message, services: Services, user: User, worker: Worker) -> None:
    service = services.mobile_office
    settlements = await service.managed_settlements(worker)
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
    services: Services,
    worker: Worker,
) -> None:
    service = services.mobile_office
    settlements = await service.managed_settlements(worker)
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
        raise MobileOfficeError("not_allowed")
    try:
        start = time(int(match["h1"]), int(match["m1"]))
        end = time(int(match["h2"]), int(match["m2"]))
    except ValueError:
        raise MobileOfficeError("bad_hours") from None
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
    trips = await service.upcoming(settlement.id)
    next_trip = next((t for t in trips if t.schedule.id == schedule.id), None)
    await message.answer(
        _("mo.coord.added") % {"id": schedule.id, "next": f"{next_trip.day:%d.%m.%Y}" if next_trip else "—"}
    )


async def end(
    query: CallbackQuery,
    callback_data: MobileOfficeCb,
    services: Services,
    worker: Worker,
    callback_answer: CallbackAnswer,
) -> None:
    await services.mobile_office.end_schedule(worker, callback_data.id)
    callback_answer.text = _("mo.coord.ended") % {"id": callback_data.id}
    callback_answer.show_alert = True


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, MobileOfficeCb)
    router.message.register(show, Command("mobile_office"), ActiveWorker())
    router.message.register(add, Command("mobile_office_add"), ActiveWorker())
    router.message.register(not_allowed, Command("mobile_office", "mobile_office_add"))
    router.callback_query.register(end, MobileOfficeCb.filter(F.action == "end"), ActiveWorker())
    return router
