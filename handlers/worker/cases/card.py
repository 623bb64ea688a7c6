"""Loading and sending the case card (the screen itself is in screens.py)."""

from __future__ import annotations

from aiogram.types import InlineKeyboardMarkup, Message
from aiogram.utils.i18n import get_i18n

from handlers.worker.cases.screens import Screen, card_screen
from infra.settings import Settings
from models import Worker
from services.hub import Services


async def build_card(services: Services, worker: Worker, case_id: int, settings: Settings) -> Screen:
    """The card's text and buttons (NotFound if the worker may not see the case)."""
    case, access = await services.case_actions.worker_case_access(worker, case_id)
    card = await services.queues.card(case)
    open_requests = await services.documents.open_requests(case.id) if access.member else []
    return card_screen(
        case,
        access,
        card,
        get_i18n().current_locale,
        settings.locale.tz,
        private=True,
        open_requests=open_requests,
    )


async def send_card(
    target: Message, services: Services, worker: Worker, text: str, markup: InlineKeyboardMarkup
) -> None:
    """As a new message. Pressed in a group chat, the card goes to the worker's private chat:
    personal data never appears in a group."""
    if target.chat.type == "private":
        await target.answer(text, reply_markup=markup)
        return
    worker_user = await services.workers.user_of(worker)
    if worker_user is not None and target.bot is not None:
        await target.bot.send_message(worker_user.telegram_id, text, reply_markup=markup)


async def show_card(
    target: Message, services: Services, worker: Worker, case_id: int, settings: Settings
) -> None:
    text, markup = await build_card(services, worker, case_id, settings)
    await send_card(target, services, worker, text, markup)
