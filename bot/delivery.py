"""Delivery of outbox rows through the bot.

MINIMAL VERSION (foundation): claims due rows in one transaction and sends them one by one.
Issue 4 replaces this with the full engine (leases / SKIP LOCKED, rate limits, quiet hours,
403/429/5xx handling, APScheduler wake-ups). Its public surface stays:
`OutboxDeliverer(bot, sessionmaker, i18n, clock, settings).deliver_due() -> int`.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings
from models import OutboxMessage, User
from models.outbox import PENDING, SENT
from services.clock import Clock

log = logging.getLogger(__name__)


def render(i18n: I18n, message: OutboxMessage, locale: str) -> tuple[str, InlineKeyboardMarkup | None]:
    payload: dict[str, Any] = dict(message.payload or {})
    buttons = payload.pop("buttons", None)
    text = i18n.gettext(f"outbox.{message.kind}", locale=locale)
    if payload:
        text = text % payload
    markup = None
    if buttons:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(text=i18n.gettext(key, locale=locale), callback_data=data)
                    for key, data in row
                ]
                for row in buttons
            ]
        )
    return text, markup


class OutboxDeliverer:
    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        i18n: I18n,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.bot = bot
        self.sessionmaker = sessionmaker
        self.i18n = i18n
        self.clock = clock
        self.settings = settings

    async def deliver_due(self, limit: int = 100) -> int:
        sent = 0
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage, User.language)
                    .outerjoin(User, User.id == OutboxMessage.user_id)
                    .where(OutboxMessage.state == PENDING, OutboxMessage.due_at <= self.clock.now())
                    .order_by(OutboxMessage.due_at, OutboxMessage.id)
                    .limit(limit)
                )
            ).all()
            for message, language in rows:
                text, markup = render(self.i18n, message, language or self.i18n.default_locale)
                await self.bot.send_message(message.chat_id, text, reply_markup=markup)
                message.state = SENT
                message.sent_at = self.clock.now()
                await session.commit()
                sent += 1
        return sent
