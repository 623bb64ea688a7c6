"""The answer to a person whose update could not be handled because the database is away.

It needs no database: the language comes from Telegram's `language_code` (our stored choice is
in the database), the text from the compiled translations.

Two situations, two honest answers:
- webhook (`redelivered_on_failure` is true): the update is answered to Telegram with a 5xx,
  so Telegram delivers it again later; the person is told there is a technical problem and what
  they sent will be handled as soon as it is fixed (`outage.later`). Told once per update
  (`Once`), not at every redelivery.
- long polling: aiogram has already moved past the update (polling acknowledges by offset), so
  the update is gone; the person is asked plainly to send it again in a few minutes.

Updates with nothing a person would miss (membership changes, updates from bots, kinds we do
not answer) get no message.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.types import Update
from aiogram.utils.i18n import I18n

from infra.i18n import choose_locale
from infra.once import Once

log = logging.getLogger(__name__)

# How long the apology may take: it is sent on the way to answering Telegram's request.
TELL_TIMEOUT = 5.0


def person_waiting(update: Update) -> bool:
    """Whether someone is waiting for an answer to this update: a message or a button press
    from a person (not a bot), in a chat we can write to."""
    if update.message is not None:
        user = update.message.from_user
        return user is not None and not user.is_bot
    if update.callback_query is not None:
        return not update.callback_query.from_user.is_bot
    return False


def _language(update: Update, i18n: I18n, stored: str | None) -> str:
    user = update.message.from_user if update.message is not None else None
    if update.callback_query is not None:
        user = update.callback_query.from_user
    return choose_locale(stored, user.language_code if user else None, i18n.default_locale)


async def tell_outage(
    bot: Bot,
    update: Update,
    i18n: I18n,
    *,
    will_retry: bool,
    once: Once | None = None,
    stored_language: str | None = None,
) -> bool:
    """Apologise for `update`; True when a message went out. `will_retry`: the update will be
    delivered again (webhook), so the person need not send it again."""
    if not person_waiting(update):
        return False
    if once is not None and not await once.first(f"{bot.id}:{update.update_id}"):
        return False
    locale = _language(update, i18n, stored_language)
    query = update.callback_query
    if will_retry:
        text = i18n.gettext("outage.later", locale=locale)
    else:
        text = i18n.gettext(
            "outage.again_press" if query is not None else "outage.again_message", locale=locale
        )
    try:
        async with asyncio.timeout(TELL_TIMEOUT):
            if query is not None:
                await bot.answer_callback_query(query.id, text=text, show_alert=True)
            elif update.message is not None:
                await bot.send_message(update.message.chat.id, text)
    except Exception as exc:  # blocked, network, Telegram away: nothing more to do
        log.warning("could not tell about the outage, update %s: %s", update.update_id, type(exc).__name__)
        return False
    return True
