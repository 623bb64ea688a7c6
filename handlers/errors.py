"""One error router: refusals raised by services are answered in the user's language; anything
else is logged without personal data and apologised for. A button press always gets an answer,
so its spinner never hangs. The form state is kept (nothing typed is lost)."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent
from aiogram.types import User as TgUser
from aiogram.types.update import UpdateTypeLookupError
from aiogram.utils.i18n import I18n

from infra.i18n import LANGUAGES, language_from_telegram
from infra.logsafe import describe_exception, exception_types
from services.errors import DomainError

log = logging.getLogger(__name__)


def _locale(i18n: I18n, user_language: str | None, tg_user: TgUser | None) -> str:
    if user_language in LANGUAGES:
        return user_language
    return language_from_telegram(tg_user.language_code if tg_user else None, i18n.default_locale)


def _kind(event: ErrorEvent) -> str:
    try:
        return event.update.event_type
    except UpdateTypeLookupError:  # an update type this aiogram does not know
        return "unknown"


async def _tell(event: ErrorEvent, text: str) -> None:
    update = event.update
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
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
    user_language: str | None = None,
    event_from_user: TgUser | None = None,
) -> None:
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
