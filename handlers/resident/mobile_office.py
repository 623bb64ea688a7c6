"""Mobile social office for residents (issue 4): upcoming trips of a settlement, subscribe to
day-before reminders, book one slot per trip, see and cancel bookings.

Every press re-checks on the server (MobileOfficeService): the trip exists on that date, the slot
is free, the booking is the presser's own.
"""

from __future__ import annotations

import html
from datetime import date, datetime

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import MobileOfficeCb
from handlers.kit.filters import MenuButton, prune_callbacks
from infra.settings import Settings
from models import Settlement, User
from services.clock import Clock
from services.mobile_office import MobileOfficeError, MobileOfficeService, Trip
from services.reminders import ReminderRules
from services.users import UserService

MAX_TRIPS_SHOWN = 6


def _service(session: AsyncSession, clock: Clock, settings: Settings) -> MobileOfficeService:
    return MobileOfficeService(session, clock, ReminderRules.from_settings(settings))


def _trip_line(trip: Trip) -> str:
    s = trip.schedule
    place = f" — {html.escape(s.place)}" if s.place else ""
    return f"• {trip.day:%d.%m.%Y}, {s.start_time:%H:%M}–{s.end_time:%H:%M}{place}"


async def _settlement_view(
    service: MobileOfficeService, user: User, settlement: Settlement, lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    trips = await service.upcoming(settlement.id)
    subscribed = await service.is_subscribed(user, settlement.id)
    lines = [_("mo.settlement_title") % {"settlement": html.escape(settlement.name(lang))}]
    lines += [_trip_line(t) for t in trips[:MAX_TRIPS_SHOWN]] or [_("mo.no_trips")]
    builder = InlineKeyboardBuilder()
    for trip in trips[:MAX_TRIPS_SHOWN]:
        builder.button(
            text=_("mo.btn.book_on") % {"date": f"{trip.day:%d.%m}"},
            callback_data=MobileOfficeCb(action="trip", id=trip.schedule.id, value=trip.key),
        )
    builder.button(
        text=_("mo.btn.unsubscribe") if subscribed else _("mo.btn.subscribe"),
        callback_data=MobileOfficeCb(action="sub", id=settlement.id),
    )
    builder.button(text=_("mo.btn.mine"), callback_data=MobileOfficeCb(action="mine"))
    builder.button(text=_("mo.btn.other"), callback_data=MobileOfficeCb(action="list"))
    builder.adjust(3, 3, 1, 1, 1)
    return "\n".join(lines), builder.as_markup()


async def _list_view(service: MobileOfficeService, lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
    places = await service.settlements_with_trips()
    if not places:
        return _("mo.none_anywhere"), None
    builder = InlineKeyboardBuilder()
    for hromada, settlement in places[:40]:
        builder.button(
            text=f"{settlement.name(lang)} ({hromada.name(lang)})",
            callback_data=MobileOfficeCb(action="settlement", id=settlement.id),
        )
    builder.adjust(1)
    return _("mo.choose_settlement"), builder.as_markup()


async def open_menu(
    message: Message, session: AsyncSession, user: User, clock: Clock, settings: Settings
) -> None:
    if not await UserService(session).has_consent(user):
        await message.answer(_("mo.need_consent"))
        return
    service = _service(session, clock, settings)
    lang = user.language or "uk"
    resident = await UserService(session).resident(user)
    settlement_id = resident.last_settlement_id if resident else None
    if settlement_id and await service.schedules_for([settlement_id]):
        settlement = await session.get(Settlement, settlement_id)
        text, markup = await _settlement_view(service, user, settlement, lang)
    else:
        text, markup = await _list_view(service, lang)
    await message.answer(text, reply_markup=markup)


async def on_button(
    query: CallbackQuery,
    callback_data: MobileOfficeCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
) -> None:
    if callback_data.action == "end":
        return await _skip(query)  # the coordinator's button, handled there
    if not await UserService(session).has_consent(user):
        await query.answer(_("mo.need_consent"), show_alert=True)
        return
    service = _service(session, clock, settings)
    lang = user.language or "uk"
    action = callback_data.action
    try:
        if action == "list":
            text, markup = await _list_view(service, lang)
            await query.answer()
            await query.message.edit_text(text, reply_markup=markup)
            return
        if action in ("settlement", "sub"):
            settlement = await session.get(Settlement, callback_data.id)
            if settlement is None:
                raise MobileOfficeError("not_found")
            toast = None
            if action == "sub":
                subscribed = await service.toggle_subscription(user, settlement.id)
                toast = _("mo.subscribed") if subscribed else _("mo.unsubscribed")
            text, markup = await _settlement_view(service, user, settlement, lang)
            await query.answer(toast)
            await query.message.edit_text(text, reply_markup=markup)
            return
        if action == "trip":
            day = _parse_day(callback_data.value)
            free = await service.free_slots(callback_data.id, day)
            builder = InlineKeyboardBuilder()
            for slot in free[:30]:
                builder.button(
                    text=f"{slot:%H:%M}",
                    callback_data=MobileOfficeCb(
                        action="book", id=callback_data.id, value=f"{day:%Y%m%d}{slot:%H%M}"
                    ),
                )
            builder.adjust(4)
            await query.answer()
            await query.message.answer(
                (_("mo.choose_slot") if free else _("mo.no_free_slots")) % {"date": f"{day:%d.%m.%Y}"},
                reply_markup=builder.as_markup() if free else None,
            )
            return
        if action == "book":
            try:
                moment = datetime.strptime(callback_data.value, "%Y%m%d%H%M")
            except ValueError:
                raise MobileOfficeError("no_slot") from None
            booking = await service.book(user, callback_data.id, moment.date(), moment.time())
            await query.answer()
            await query.message.edit_text(
                _("mo.booked")
                % {"date": f"{booking.trip_date:%d.%m.%Y}", "time": f"{booking.slot_start:%H:%M}"}
            )
            return
        if action == "mine":
            bookings = await service.my_bookings(user)
            builder = InlineKeyboardBuilder()
            lines = [_("mo.my_bookings")] if bookings else [_("mo.no_bookings")]
            for booking, _schedule in bookings:
                when = f"{booking.trip_date:%d.%m.%Y} {booking.slot_start:%H:%M}"
                lines.append(f"• {when}")
                builder.button(
                    text=_("mo.btn.cancel_booking") % {"when": when},
                    callback_data=MobileOfficeCb(action="cancel", id=booking.id),
                )
            builder.adjust(1)
            await query.answer()
            await query.message.answer(
                "\n".join(lines), reply_markup=builder.as_markup() if bookings else None
            )
            return
        if action == "cancel":
            await service.cancel_booking(user, callback_data.id)
            await query.answer(_("mo.booking_cancelled"), show_alert=True)
            await query.message.edit_reply_markup(reply_markup=None)
            return
    except MobileOfficeError as exc:
        await query.answer(_(f"mo.error.{exc.code}"), show_alert=True)
        return
    await query.answer(_("errors.stale_button"), show_alert=True)


async def _skip(query: CallbackQuery) -> None:
    await query.answer(_("errors.stale_button"), show_alert=True)


def _parse_day(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise MobileOfficeError("no_trip") from None


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, MobileOfficeCb)
    router.message.register(open_menu, MenuButton("menu.mobile_office"))
    router.callback_query.register(on_button, MobileOfficeCb.filter())
    return router
