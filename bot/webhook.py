"""Webhook server (aiohttp): Telegram's secret-token check, `/healthz`, clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiogram import Bot
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from sqlalchemy import text

from bot.factory import App, build_app, create_bot, settle_for_serving
from bot.runner import install_background_jobs, require_token
from infra.migrate import prepare_embedded_database
from infra.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def create_web_app(app: App, bot: Bot, secret: str) -> web.Application:
    web_app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        try:
            async with app.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # the check must answer, not crash
            return web.json_response({"status": "degraded", "database": type(exc).__name__}, status=503)
        return web.json_response({"status": "ok"})

    web_app.router.add_get("/healthz", healthz)
    SimpleRequestHandler(dispatcher=app.dispatcher, bot=bot, secret_token=secret).register(
        web_app, path=app.settings.telegram.webhook_path
    )
    setup_application(web_app, app.dispatcher, bot=bot)
    return web_app


async def run_webhook(settings: Settings) -> int:
    token = require_token(settings)
    secret = settings.telegram.webhook_secret
    if secret is None:
        raise SettingsError("setting WEBHOOK_SECRET is missing: any 32+ random characters [A-Za-z0-9_-]")
    await prepare_embedded_database(settings.database.url)
    app = build_app(settings)
    bot = create_bot(settings, token=token)
    install_background_jobs(app, bot)
    web_app = create_web_app(app, bot, secret.get_secret_value())
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
            secret_token=secret.get_secret_value(),
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
