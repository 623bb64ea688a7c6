"""Long polling: the way to run the bot for real with a BotFather token.

aiogram's polling acknowledges an update by moving its offset, whatever became of it, so an
update that failed because the database was away cannot come back: the error router
(handlers/errors.py) asks the person plainly to send it again in a few minutes. (The webhook
answers 503 instead and Telegram delivers the update again: bot/webhook.py.)"""

from __future__ import annotations

import logging

from aiogram import Bot

from bot.factory import App, build_app, create_bot, settle_for_serving
from infra.migrate import prepare_embedded_database
from infra.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def require_token(settings: Settings) -> str:
    token = settings.telegram.bot_token
    if token is None:
        raise SettingsError(
            "setting BOT_TOKEN is missing: get one from @BotFather (or use `hromada-bot console`)"
        )
    return token.get_secret_value()


async def run_polling(settings: Settings) -> int:
    token = require_token(settings)
    await prepare_embedded_database(settings.database.url)
    app = build_app(settings)
    bot = create_bot(settings, token=token)
    install_background_jobs(app, bot)
    settle_for_serving()
    try:
        await bot.delete_webhook(drop_pending_updates=False)
        await app.dispatcher.start_polling(bot, handle_signals=True)
    finally:
        await bot.session.close()
        await app.close()
    return 0


def install_background_jobs(app: App, bot: Bot) -> None:
    """Outbox delivery and reminders (APScheduler), started and stopped with the dispatcher."""
    from bot.scheduler import setup_scheduler
    from infra.metrics import observe_limiter_wait

    setup_scheduler(
        app.dispatcher,
        bot=bot,
        sessionmaker=app.sessionmaker,
        i18n=app.i18n,
        clock=app.clock,
        settings=app.settings,
        on_limiter_wait=observe_limiter_wait,
    )
