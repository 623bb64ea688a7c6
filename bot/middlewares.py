"""Outer middlewares on `dp.update`: one DB unit of work per update, then the user row."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TgUser
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage import current_session
from services.outbox import OUTBOX_DIRTY
from services.users import UserService

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """One session per update: commit when the handler returns, roll back when it raises."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.sessionmaker() as session:
            data["session"] = session
            token = current_session.set(session)
            try:
                result = await handler(event, data)
            except Exception:
                await session.rollback()
                raise
            finally:
                current_session.reset(token)
            await session.commit()
            # Notifications this update queued are committed now: have them sent at once
            # instead of at the next poll (`delivery` exists when the scheduler runs).
            delivery = data.get("delivery")
            if session.info.pop(OUTBOX_DIRTY, False) and delivery is not None:
                delivery.kick()
            return result


class UserMiddleware(BaseMiddleware):
    """Finds or creates our `User` row for the sender and hands it in as `user`."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        if tg_user is not None and not tg_user.is_bot:
            users = UserService(session)
            data["user"] = await users.get_or_create(tg_user.id)
        return await handler(event, data)
