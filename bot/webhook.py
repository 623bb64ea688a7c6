"""Webhook server (aiohttp): Telegram's secret-token check, updates acknowledged only once
handled (a 5xx while the database is away, so Telegram delivers them again), `/healthz`,
`/readyz`, `/metrics` (bot/observability.py), clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.utils.i18n import I18n
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from pydantic import ValidationError

from bot.factory import App, build_app, create_bot, settle_for_serving
from bot.observability import add_routes
from bot.runner import install_background_jobs, require_token
from handlers.outage import tell_outage
from infra.db import database_unavailable
from infra.logsafe import describe_exception, exception_types
from infra.migrate import prepare_embedded_database
from infra.once import MemoryOnce, Once, RedisOnce
from infra.settings import Settings, SettingsError, webhook_secret_problem

log = logging.getLogger(__name__)


class SecretTokenHandler(SimpleRequestHandler):
    """aiogram's handler with a check that cannot be switched off, and an acknowledgement that
    means "handled".

    The secret: built only with a usable one (an empty one would make aiogram accept every
    POST), the header compared as bytes in constant time, and a missing, wrong or non-ASCII
    header answered 401 (aiogram compares str, which raises on non-ASCII text: a 500).

    The acknowledgement (why not aiogram's default of answering at once and handling in a
    background task): the HTTP answer is Telegram's only signal whether to deliver the update
    again, and the only durable copy of the update while the database is away is Telegram's.
    So the update is handled inside the request and answered
    - 200 when it was handled (also when a handler failed with a bug: the error router has
      told the person, and a redelivery would fail the same way; also for an update aiogram
      cannot read, for the same reason);
    - 503 when the database was unavailable (`infra.db.database_unavailable`) or handling took
      longer than `handle_timeout`: nothing of it was committed, Telegram delivers it again
      later, and it is handled normally once the database is back. The person is told once per
      update (not at each redelivery; `once`, in Redis when several instances share the work)
      that there is a technical problem and what they sent will be handled when it is fixed.
    aiohttp serves each request in its own task, so updates are still handled concurrently;
    `handle_timeout` keeps every request well inside the time Telegram waits for an answer."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        secret: str,
        *,
        i18n: I18n,
        once: Once | None = None,
        handle_timeout: float = 25.0,
        **data: Any,
    ) -> None:
        problem = webhook_secret_problem(secret)
        if problem:
            raise SettingsError(f"setting WEBHOOK_SECRET is invalid: {problem}")
        super().__init__(
            dispatcher=dispatcher, bot=bot, handle_in_background=False, secret_token=secret, **data
        )
        self._secret = secret.encode("ascii")
        self.i18n = i18n
        self.once: Once = once or MemoryOnce()
        self.handle_timeout = handle_timeout
        self._abandoned: set[asyncio.Future[Any]] = set()

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        try:
            given = telegram_secret_token.encode("ascii")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(given, self._secret)

    async def close(self) -> None:
        await asyncio.gather(*self._abandoned, return_exceptions=True)
        await super().close()
        await self.once.close()

    async def _handle_request(self, bot: Bot, request: web.Request) -> web.Response:
        try:
            raw = await request.json(loads=bot.session.json_loads)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        shown_id = update_id if isinstance(update_id, int) else "?"
        try:
            update = Update.model_validate(raw, context={"bot": bot})
        except ValidationError as exc:
            # A redelivery would not read better. The validation error quotes the update's
            # text: only its frames and types are logged.
            log.error("webhook update %s failed:\n%s", shown_id, describe_exception(exc))
            return web.json_response({})
        task = asyncio.ensure_future(
            self.dispatcher.feed_update(bot, update, **self.data, redelivered_on_failure=True)
        )
        try:
            done, _ = await asyncio.wait({task}, timeout=self.handle_timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            # Given up; its clean-up (a rollback on a dead connection) may take a moment more
            # and must not delay the answer: it finishes on its own.
            task.cancel()
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
            return await self._not_handled(bot, update, shown_id, "timed out")
        error = task.exception()
        if error is None:
            result = task.result()
            method = result if isinstance(result, TelegramMethod) else None
            return web.Response(body=self._build_response_writer(bot=bot, result=method))
        if database_unavailable(error):
            return await self._not_handled(
                bot, update, shown_id, f"database unavailable: {exception_types(error)}"
            )
        log.error("webhook update %s failed:\n%s", shown_id, describe_exception(error))
        return web.json_response({})

    async def _not_handled(self, bot: Bot, update: Update, shown_id: object, why: str) -> web.Response:
        log.warning("webhook update %s not handled (%s); Telegram will deliver it again", shown_id, why)
        await tell_outage(bot, update, self.i18n, will_retry=True, once=self.once)
        return web.json_response({"ok": False}, status=503)


def outage_memory(settings: Settings) -> Once:
    """Which updates were already apologised for: in Redis when instances share it (Telegram
    keeps an undelivered update for 24 h), else in this process."""
    if settings.redis.url:
        return RedisOnce.from_url(settings.redis.url, prefix="hromada:outage-told:", ttl=24 * 3600)
    return MemoryOnce()


def create_web_app(app: App, bot: Bot, secret: str) -> web.Application:
    web_app = web.Application()

    add_routes(web_app, app.engine, app.metrics)  # /healthz, /readyz, /metrics
    SecretTokenHandler(
        app.dispatcher,
        bot,
        secret,
        i18n=app.i18n,
        once=outage_memory(app.settings),
        handle_timeout=app.settings.telegram.webhook_handle_timeout,
    ).register(web_app, path=app.settings.telegram.webhook_path)
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
