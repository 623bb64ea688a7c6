"""Mobile social office for residents: upcoming trips of a settlement, subscribe to day-before
reminders, book one slot per trip, see and cancel bookings.

Every press re-checks on the server (MobileOfficeService): the trip exists on that date, the slot
is free, the booking is the presser's own."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date, datetime, time

from aiogram import Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import MobileOfficeCb
from handlers.kit.filters import MenuButton, prune_callbacks
from models import Hromada, MobileOfficeBooking, MobileOfficeSchedule, Settlement, User
from services.errors import StaleAction
from services.hub import Services
from services.mobile_office import MobileOfficeError, Trip

MAX_TRIPS_SHOWN = 6
MAX_PLACES_SHOWN = 40
MAX_SLOTS_SHOWN = 30


# -- screens (pure) --------------------------------------------------------------------------------
def _trip_line(trip: Trip) -> str:
    s = trip.schedule
    place = f" — {html.escape(s.place)}" if s.place else ""
    return f"• {trip.day:%d.%m.%Y}, {s.start_time:%H:%M}–{s.end_time:%H:%M}{place}"


def settlement_screen(
    settlement: Settlement, trips: Sequence[Trip], subscribed: bool, lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    shown = trips[:MAX_TRIPS_SHOWN]
    lines = [_("mo.settlement_title") % {"settlement": html.escape(settlement.name(lang))}]
    lines += [_trip_line(t) for t in shown] or [_("mo.no_trips")]
    builder = InlineKeyboardBuilder()
    for trip in shown:
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


def places_screen(
    places: Sequence[tuple[Hromada, Settlement]], lang: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    if not places:
        return _("mo.none_anywhere"), None
    builder = InlineKeyboardBuilder()
    for hromada, settlement in places[:MAX_PLACES_SHOWN]:
        builder.button(
            text=f"{settlement.name(lang)} ({hromada.name(lang)})",
            callback_data=MobileOfficeCb(action="settlement", id=settlement.id),
        )
    builder.adjust(1)
    return _("mo.choose_settlement"), builder.as_markup()


def slots_screen(
    schedule_id: int, day: date, free: Sequence[time]
) -> tuple[str, InlineKeyboardMarkup | None]:
    if not free:
        return _("mo.no_free_slots") % {"date": f"{day:%d.%m.%Y}"}, None
    builder = InlineKeyboardBuilder()
    for slot in free[:MAX_SLOTS_SHOWN]:
        builder.button(
            text=f"{slot:%H:%M}",
            callback_data=MobileOfficeCb(action="book", id=schedule_id, value=f"{day:%Y%m%d}{slot:%H%M}"),
        )
    builder.adjust(4)
    return _("mo.choose_slot") % {"date": f"{day:%d.%m.%Y}"}, builder.as_markup()


def bookings_screen(
    bookings: Sequence[tuple[MobileOfficeBooking, MobileOfficeSchedule]],
) -> tuple[str, InlineKeyboardMarkup | None]:
    if not bookings:
        return _("mo.no_bookings"), None
    builder = InlineKeyboardBuilder()
    lines = [_("mo.my_bookings")]
    for booking, _schedule in bookings:
        when = f"{booking.trip_date:%d.%m.%Y} {booking.slot_start:%H:%M}"
        lines.append(f"• {when}")
        builder.button(
            text=_("mo.btn.cancel_booking") % {"when": when},
            callback_data=MobileOfficeCb(action="cancel", id=booking.id),
        )
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


# -- parsing ---------------------------------------------------------------------------------------
def _parse_day(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise MobileOfficeError("no_trip") from None


def _parse_moment(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%d%H%M")
    except ValueError:
        raise MobileOfficeError("no_slot") from None


# -- handlers --------------------------------------------------------------------------------------
async def open_menu(message: Message, services: Services, user: User) -> None:
    if not await services.users.has_consent(user):
        await message.answer(_("mo.need_consent"))
        return
    office = services.mobile_office
    lang = user.language or "uk"
    settlement = await office.home_settlement(user)
    markup: InlineKeyboardMarkup | None
    if settlement is not None:
        trips = await office.upcoming(settlement.id)
        subscribed = await office.is_subscribed(user, settlement.id)
        text, markup = settlement_screen(settlement, trips, subscribed, lang)
    else:
        text, markup = places_screen(await office.settlements_with_trips(), lang)
    await message.answer(text, reply_markup=markup)


async def on_button(
    query: CallbackQuery,
    callback_data: MobileOfficeCb,
    services: Services,
    user: User,
    callback_answer: CallbackAnswer,
) -> None:
    action = callback_data.action
    message = query.message
    # "end" is the coordinator's button, handled by their router: here it is stale.
    if action == "end" or not isinstance(message, Message):
        raise StaleAction()
    if not await services.users.has_consent(user):
        callback_answer.text = _("mo.need_consent")
        callback_answer.show_alert = True
        return
    office = services.mobile_office
    lang = user.language or "uk"
    if action == "list":
        text, places_markup = places_screen(await office.settlements_with_trips(), lang)
        await message.edit_text(text, reply_markup=places_markup)
    elif action in ("settlement", "sub"):
        settlement = await office.settlement(callback_data.id)
        if action == "sub":
            subscribed = await office.toggle_subscription(user, settlement.id)
            callback_answer.text = _("mo.subscribed") if subscribed else _("mo.unsubscribed")
        trips = await office.upcoming(settlement.id)
        subscribed = await office.is_subscribed(user, settlement.id)
        text, markup = settlement_screen(settlement, trips, subscribed, lang)
        await message.edit_text(text, reply_markup=markup)
    elif action == "trip":
        day = _parse_day(callback_data.value)
        text, slots_markup = slots_screen(
            callback_data.id, day, await office.free_slots(callback_data.id, day)
        )
        await message.answer(text, reply_markup=slots_markup)
    elif action == "book":
        moment = _parse_moment(callback_data.value)
        booking = await office.book(user, callback_data.id, moment.date(), moment.time())
        when = {"date": f"{booking.trip_date:%d.%m.%Y}", "time": f"{booking.slot_start:%H:%M}"}
        await message.edit_text(_("mo.booked") % when)
    elif action == "mine":
        text, bookings_markup = bookings_screen(await office.my_bookings(user))
        await message.answer(text, reply_markup=bookings_markup)
    elif action == "cancel":
        await office.cancel_booking(user, callback_data.id)
        callback_answer.text = _("mo.booking_cancelled")
        callback_answer.show_alert = True
        await message.edit_reply_markup(reply_markup=None)
    else:
        raise StaleAction()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, MobileOfficeCb)
    router.message.register(open_menu, MenuButton("menu.mobile_office"))
    router.callback_query.register(on_button, MobileOfficeCb.filter())
    return router
