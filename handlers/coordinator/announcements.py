"""Announcements for coordinators: "📣 Announcement" on the panel or /announce.

text (or a photo with a caption) → audience (residents of settlements or mobile-office
subscribers) → settlements of their hromadas, by buttons → the recipient count → now or at a
typed time (dd.mm HH:MM) → confirm. Then a delivery report (sent / pending / unreachable /
failed), refreshable; /announcements lists the latest ones. The draft lives in the FSM data;
every id in it is checked again by the service when the announcement is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiogram import Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.coordinator import announcements_screens as screens
from handlers.kit.callbacks import AnnCb
from handlers.kit.filters import Action, ActiveWorker, NotCommand, NotMenuButton, prune_callbacks
from handlers.kit.messages import edit_or_send
from models import Worker
from models.announcements import AUDIENCES
from services.errors import StaleAction
from services.hub import Services

DRAFT = "announcement"


class AnnouncementForm(StatesGroup):
    text = State()
    choose = State()  # audience, settlements, when: by buttons
    time = State()


async def _draft(state: FSMContext) -> dict[str, Any]:
    """The form's draft; a press without one is an old button."""
    draft = (await state.get_data()).get(DRAFT)
    if not isinstance(draft, dict):
        raise StaleAction()
    return draft


async def _draft_with_audience(state: FSMContext) -> dict[str, Any]:
    """The draft past the audience step (settlements are picked for an audience)."""
    draft = await _draft(state)
    if "audience" not in draft:
        raise StaleAction()
    return draft


async def _save(state: FSMContext, draft: dict[str, Any]) -> None:
    await state.update_data({DRAFT: draft})


async def _end(state: FSMContext) -> None:
    data = await state.get_data()
    await state.set_state(None)
    await state.set_data({k: v for k, v in data.items() if k != DRAFT})


async def start(message: Message, services: Services, worker: Worker, state: FSMContext) -> None:
    await services.announcements.settlements(worker)  # refused for a worker who coordinates nothing
    await state.set_state(AnnouncementForm.text)
    await _save(state, {})
    text, markup = screens.ask_text()
    await message.answer(text, reply_markup=markup)


async def start_button(query: CallbackQuery, services: Services, worker: Worker, state: FSMContext) -> None:
    if isinstance(query.message, Message):
        await start(query.message, services, worker, state)


async def on_text(message: Message, services: Services, state: FSMContext) -> None:
    draft = await _draft(state)
    if message.photo:
        draft["text"] = services.announcements.check_text(message.caption, with_photo=True)
        draft["photo"] = message.photo[-1].file_id
    elif message.text is not None:
        draft["text"] = services.announcements.check_text(message.text, with_photo=False)
        draft["photo"] = None
    else:
        await message.answer(_("ann.text_only"))
        return
    await _save(state, draft)
    await state.set_state(AnnouncementForm.choose)
    text, markup = screens.ask_audience()
    await message.answer(text, reply_markup=markup)


async def _pick_screen(
    query: CallbackQuery, services: Services, worker: Worker, draft: dict[str, Any], locale: str
) -> None:
    settlements = await services.announcements.settlements(worker)
    text, markup = screens.pick_settlements(
        settlements, set(draft.get("settlements", [])), draft["audience"], locale, int(draft.get("page", 0))
    )
    await edit_or_send(query, text, markup)


async def on_audience(
    query: CallbackQuery,
    callback_data: AnnCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
) -> None:
    draft = await _draft(state)
    if callback_data.value not in AUDIENCES or "text" not in draft:
        raise StaleAction()
    draft["audience"] = callback_data.value
    draft.setdefault("settlements", [])
    draft["page"] = 0
    await _save(state, draft)
    await _pick_screen(query, services, worker, draft, i18n.current_locale)


async def on_pick(
    query: CallbackQuery,
    callback_data: AnnCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
) -> None:
    draft = await _draft_with_audience(state)
    chosen = set(draft.get("settlements", []))
    if callback_data.id in chosen:
        chosen.discard(callback_data.id)
    else:
        chosen.add((await services.announcements.allowed(worker, [callback_data.id]))[0])
    draft["settlements"] = sorted(chosen)
    await _save(state, draft)
    await _pick_screen(query, services, worker, draft, i18n.current_locale)


async def on_page(
    query: CallbackQuery,
    callback_data: AnnCb,
    services: Services,
    worker: Worker,
    state: FSMContext,
    i18n: I18n,
) -> None:
    """Another page of settlements; what was ticked stays ticked."""
    draft = await _draft_with_audience(state)
    draft["page"] = max(0, callback_data.id)
    await _save(state, draft)
    await _pick_screen(query, services, worker, draft, i18n.current_locale)


async def on_done(query: CallbackQuery, services: Services, worker: Worker, state: FSMContext) -> None:
    draft = await _draft_with_audience(state)
    recipients = await services.announcements.count(worker, draft["audience"], draft.get("settlements", []))
    draft["recipients"] = recipients
    await _save(state, draft)
    text, markup = screens.ask_when(recipients)
    await edit_or_send(query, text, markup)


async def _confirm(target: CallbackQuery | Message, services: Services, draft: dict[str, Any]) -> None:
    send_at = datetime.fromisoformat(draft["send_at"]) if draft.get("send_at") else None
    local = send_at.astimezone(services.announcements.tz) if send_at else None
    text, markup = screens.confirm(
        draft["text"],
        draft["audience"],
        len(draft["settlements"]),
        draft["recipients"],
        local,
        bool(draft.get("photo")),
    )
    if isinstance(target, CallbackQuery):
        await edit_or_send(target, text, markup)
    else:
        await target.answer(text, reply_markup=markup)


async def on_now(query: CallbackQuery, services: Services, state: FSMContext) -> None:
    draft = await _draft(state)
    if "recipients" not in draft:
        raise StaleAction()
    draft["send_at"] = None
    await _save(state, draft)
    await _confirm(query, services, draft)


async def on_later(query: CallbackQuery, state: FSMContext) -> None:
    draft = await _draft(state)
    if "recipients" not in draft:
        raise StaleAction()
    await state.set_state(AnnouncementForm.time)
    if isinstance(query.message, Message):
        await query.message.answer(screens.ask_time())


async def on_time(message: Message, services: Services, state: FSMContext) -> None:
    draft = await _draft(state)
    if message.text is None:
        await message.answer(_("ann.time_only"))
        return
    draft["send_at"] = services.announcements.parse_send_at(message.text).isoformat()
    await _save(state, draft)
    await state.set_state(AnnouncementForm.choose)
    await _confirm(message, services, draft)


async def on_send(query: CallbackQuery, services: Services, worker: Worker, state: FSMContext) -> None:
    draft = await _draft(state)
    if "recipients" not in draft or "send_at" not in draft:
        raise StaleAction()
    service = services.announcements
    announcement = await service.create(
        worker,
        text=draft["text"],
        photo_file_id=draft.get("photo"),
        audience=draft["audience"],
        settlement_ids=draft["settlements"],
        send_at=datetime.fromisoformat(draft["send_at"]) if draft["send_at"] else None,
    )
    await _end(state)
    text, markup = screens.queued(announcement, announcement.send_at.astimezone(service.tz))
    await edit_or_send(query, text, markup)


async def on_cancel(query: CallbackQuery, state: FSMContext, callback_answer: CallbackAnswer) -> None:
    await _end(state)
    callback_answer.text = _("ann.cancelled")
    if isinstance(query.message, Message):
        await query.message.edit_reply_markup(reply_markup=None)


async def on_report(query: CallbackQuery, callback_data: AnnCb, services: Services, worker: Worker) -> None:
    service = services.announcements
    announcement, counts = await service.report(worker, callback_data.id)
    text, markup = screens.report(announcement, counts, announcement.send_at.astimezone(service.tz))
    await edit_or_send(query, text, markup)


async def on_withdraw(query: CallbackQuery, callback_data: AnnCb, services: Services, worker: Worker) -> None:
    announcement, pending = await services.announcements.to_withdraw(worker, callback_data.id)
    await edit_or_send(query, *screens.withdraw_question(announcement, pending))


async def on_withdraw_confirmed(
    query: CallbackQuery, callback_data: AnnCb, services: Services, worker: Worker
) -> None:
    service = services.announcements
    cancelled = await service.withdraw(worker, callback_data.id)
    announcement, counts = await service.report(worker, callback_data.id)
    send_at = announcement.send_at.astimezone(service.tz)
    text, markup = screens.withdrawn(cancelled, announcement, counts, send_at)
    await edit_or_send(query, text, markup)


async def recent(message: Message, services: Services, worker: Worker) -> None:
    items = await services.announcements.recent(worker)
    await message.answer(
        _("ann.recent") if items else _("ann.recent_empty"), reply_markup=screens.recent(items)
    )


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, AnnCb)
    router.message.register(start, Command("announce"), ActiveWorker())
    router.message.register(recent, Command("announcements"), ActiveWorker())
    router.message.register(
        on_text, StateFilter(AnnouncementForm.text), NotCommand(), NotMenuButton(), ActiveWorker()
    )
    router.message.register(
        on_time, StateFilter(AnnouncementForm.time), NotCommand(), NotMenuButton(), ActiveWorker()
    )
    for action, handler in (
        ("start", start_button),
        ("aud", on_audience),
        ("pick", on_pick),
        ("page", on_page),
        ("done", on_done),
        ("now", on_now),
        ("later", on_later),
        ("send", on_send),
        ("report", on_report),
        ("withdraw", on_withdraw),
        ("withdraw_yes", on_withdraw_confirmed),
    ):
        router.callback_query.register(handler, Action(AnnCb, action), ActiveWorker())
    router.callback_query.register(on_cancel, Action(AnnCb, "cancel"))
    return router
