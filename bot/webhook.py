"""Webhook server (aiohttp): Telegram's secret-token check, `/healthz`, `/readyz`, `/metrics`
(bot/observability.py), clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.factory import App, build_app, create_bot, settle_for_serving
from bot.observability import add_routes
from bot.runner import install_background_jobs, require_token
from infra.logsafe import describe_exception
from infra.migrate import prepare_embedded_database
from infra.settings import Settings, SettingsError, webhook_secret_problem

log = logging.getLogger(__name__)


class SecretTokenHandler(SimpleRequestHandler):
    """aiogram's handler with a check that cannot be switched off: built only with a usable
    secret (an empty one would make aiogram accept every POST), the header compared as bytes in
    constant time, and a missing, wrong or non-ASCII header answered 401 (aiogram compares str,
    which raises on non-ASCII text: a 500)."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, secret: str, **data: Any) -> None:
        problem = webhook_secret_problem(secret)
        if problem:
            raise SettingsError(f"setting WEBHOOK_SECRET is invalid: {problem}")
        super().__init__(dispatcher=dispatcher, bot=bot, secret_token=secret, **data)
        self._secret = secret.encode("ascii")

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        try:
            given = telegram_secret_token.encode("ascii")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(given, self._secret)

    async def _background_feed_update(self, bot: Bot, update: dict[str, Any]) -> None:
        # Runs as a task nobody awaits: an update aiogram cannot parse would end as "Task
        # exception was never retrieved" with the validation error quoting the update's text.
        try:
            await super()._background_feed_update(bot, update)
        except Exception as exc:
            update_id = update.get("update_id") if isinstance(update, dict) else None
            log.error(
                "webhook update %s failed:\n%s",
                update_id if isinstance(update_id, int) else "?",
                describe_exception(exc),
            )


def create_web_app(app: App, bot: Bot, secret: str) -> web.Application:
    web_app = web.Application()

    add_routes(web_app, app.engine, app.metrics)  # /healthz, /readyz, /metrics
    SecretTokenHandler(app.dispatcher, bot, secret).register(web_app, path=app.settings.telegram.webhook_path)
    setup_application(web_app, app.dispatcher, bot=bot)
    return web_app


async def run_webhook(settings: Settings) -> int:
    token = require_token(settings)
    secret = settings.telegram.require_webhook_secret()
    await prepare_embedded_database(settings.database.url)
    app = build_app(settings)
    bot = create_bot(settings, token=token)
    install_background_jobs(app, bot)
    web_app = create_web_app(app, bot, secret)
    settle_for_serving()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.telegram.webhook_host, settings.telegram.webhook_port)
    await site.start()
    log.info("webhook listening on %s:%s", settings.telegram.webhook_host, settings.telegram.webhook_port)
    if settings.telegram.webhook_url:
        await bot.set_webhook(
            settings.telegram.webhook_url + settings.telegram.webhook_path,
            secret_token=secret,
            allowed_updates=app.dispatcher.resolve_used_update_types(),
        )
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        # shutdown_timeout bounds how long in-flight updates may finish.
        await asyncio.wait_for(runner.cleanup(), timeout=4)
        await app.close()
    return 0
