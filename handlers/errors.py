"""One error router: log without personal data, apologise in the user's language, and
answer a callback so its spinner never hangs. The form state is kept (nothing typed is lost)."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import I18n
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.i18n import language_from_telegram
from models import User

log = logging.getLogger(__name__)


async def on_error(event: ErrorEvent, i18n: I18n, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    update = event.update
    # Type and update id only: the exception text may quote what the user typed.
    log.error(
        "update %s failed: %s",
        update.update_id,
        type(event.exception).__name__,
        exc_info=(type(event.exception), event.exception, event.exception.__traceback__),
    )
    sender = update.message or update.callback_query or update.edited_message
    tg_user = getattr(sender, "from_user", None)
    if tg_user is None:
        return
    async with sessionmaker() as session:
        language = await session.scalar(select(User.language).where(User.telegram_id == tg_user.id))
    locale = language or language_from_telegram(tg_user.language_code, i18n.default_locale)
    text = i18n.gettext("errors.internal", locale=locale)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None:
            await update.message.answer(text)
    except Exception as exc:  # the apology itself failed (blocked, network): nothing more to do
        log.warning("could not tell user about failed update %s: %s", update.update_id, type(exc).__name__)


def create_router() -> Router:
    router = Router(name=__name__)
    router.error.register(on_error, ExceptionTypeFilter(Exception))
    return router
