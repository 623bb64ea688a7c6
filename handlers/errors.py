"""One error router: refusals raised by services are answered in the user's language; anything
else is logged without personal data and apologised for. A button press always gets an answer,
so its spinner never hangs. The form state is kept (nothing typed is lost).

The database being away (`infra.db.database_unavailable`: refused or reset connection, a
timeout, no pooled connection, server shutting down, SQLite busy) is not a bug and is not
answered as one. Under the webhook (`redelivered_on_failure`) the error is raised on, so the
webhook answers Telegram with a 5xx, Telegram delivers the update again, and the person is told
once that it will be handled (handlers/outage.py). Under long polling the update cannot come
back, so the person is asked to send it again in a few minutes."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent, Message
from aiogram.types import User as TgUser
from aiogram.types.update import UpdateTypeLookupError
from aiogram.utils.i18n import I18n

from handlers.outage import tell_outage
from infra.db import database_unavailable
from infra.i18n import choose_locale
from infra.logsafe import describe_exception, exception_types
from services.errors import DomainError

log = logging.getLogger(__name__)


def _locale(i18n: I18n, user_language: str | None, tg_user: TgUser | None) -> str:
    return choose_locale(user_language, tg_user.language_code if tg_user else None, i18n.default_locale)


def _kind(event: ErrorEvent) -> str:
    try:
        return event.update.event_type
    except UpdateTypeLookupError:  # an update type this aiogram does not know
        return "unknown"


async def _tell(event: ErrorEvent, text: str) -> None:
    update = event.update
    try:
        query = update.callback_query
        if query is not None:
            try:
                await query.answer(text, show_alert=True)
            except TelegramBadRequest:
                # The press was already answered (its reply had to wait for a send slot, so the
                # spinner was stopped first): the explanation goes into the chat instead.
                if not isinstance(query.message, Message):
                    raise
                await query.message.answer(text)
        elif update.message is not None:
            await update.message.answer(text)
    except Exception as exc:  # the answer itself failed (blocked, network): nothing more to do
        log.warning("could not tell user about update %s: %s", update.update_id, type(exc).__name__)


async def on_refusal(
    event: ErrorEvent,
    i18n: I18n,
    user_language: str | None = None,
    event_from_user: TgUser | None = None,
) -> None:
    error = event.exception
    if not isinstance(error, DomainError):  # registered for DomainError only
        raise error
    log.info("update %s refused: %s", event.update.update_id, error.message_key)
    locale = _locale(i18n, user_language, event_from_user)
    text = i18n.gettext(error.message_key, locale=locale)
    if error.params:
        text = text % error.params
    await _tell(event, text)


async def on_error(
    event: ErrorEvent,
    i18n: I18n,
    bot: Bot,
    user_language: str | None = None,
    event_from_user: TgUser | None = None,
    redelivered_on_failure: bool = False,
) -> None:
    if database_unavailable(event.exception):
        if redelivered_on_failure:
            raise event.exception  # the webhook answers 5xx and apologises (bot/webhook.py)
        log.warning(
            "update %s (%s): database unavailable (%s); asked to send again",
            event.update.update_id,
            _kind(event),
            exception_types(event.exception),
        )
        await tell_outage(bot, event.update, i18n, will_retry=False, stored_language=user_language)
        return
    # Update id, kind and exception types, with the traceback's frames but none of the
    # exceptions' messages: those may quote what the person typed (SQL parameters, a refused
    # row in PostgreSQL's DETAIL, a validation error's input).
    log.error(
        "update %s (%s) failed: %s\n%s",
        event.update.update_id,
        _kind(event),
        exception_types(event.exception),
        describe_exception(event.exception),
    )
    if event_from_user is None:
        return
    locale = _locale(i18n, user_language, event_from_user)
    await _tell(event, i18n.gettext("errors.internal", locale=locale))


def create_router() -> Router:
    router = Router(name=__name__)
    router.error.register(on_refusal, ExceptionTypeFilter(DomainError))
    router.error.register(on_error, ExceptionTypeFilter(Exception))
    return router
