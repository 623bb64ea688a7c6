"""What the webhook server tells its operators: `/healthz`, `/readyz`, `/metrics`, and the
middleware that counts and times every update.

- `/healthz` — liveness: the process and its event loop answer. It does not touch the database:
  a database outage is not cured by restarting the bot (Docker's health check uses this one).
- `/readyz` — readiness: a new connection to the database answers `SELECT 1` within a short
  timeout; 200 or 503, each with a small JSON body (a load balancer stops sending updates to a
  503 instance). Not through the updates' pool: a busy pool is load, not unreadiness.
- `/metrics` — Prometheus exposition of the app's registry (infra/metrics.py), with the outbox
  backlog and the pool's use read at scrape time.
"""

from __future__ import annotations

import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED, CancelHandler, SkipHandler
from aiogram.types import TelegramObject, Update
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.middlewares import Handler
from infra.metrics import ERROR, HANDLED, NOT_HANDLED, Metrics, probe_database, probe_engine
from services.errors import DomainError


class UpdateMetricsMiddleware(BaseMiddleware):
    """Counts each update by kind and outcome and times its handling.

    Registered first among our middlewares on `dp.update`, so the time includes waiting for the
    person's lock and for a database connection. Only aiogram's own error middleware is outside
    it: an update whose handler raised counts as `error` even when the error router then
    apologised to the person (a refusal by the rules, `DomainError`, counts as handled)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        kind = _kind(event)
        started = time.perf_counter()
        outcome = ERROR
        try:
            result = await handler(event, data)
            outcome = NOT_HANDLED if result is UNHANDLED else HANDLED
            return result
        except (SkipHandler, CancelHandler):
            outcome = NOT_HANDLED
            raise
        except DomainError:
            # A refusal by the rules (no access, case closed): the error router answers it in
            # the person's language. Handled as designed, not an error to page anyone about.
            outcome = HANDLED
            raise
        finally:
            self.metrics.observe_update(kind, outcome, time.perf_counter() - started)


def _kind(event: TelegramObject) -> str:
    if not isinstance(event, Update):
        return "unknown"
    try:
        return event.event_type  # the Update field that is set: a fixed vocabulary
    except Exception:  # a type this aiogram does not know yet
        return "unknown"


def add_routes(web_app: web.Application, engine: AsyncEngine, metrics: Metrics) -> None:
    probe = probe_engine(engine.url)

    async def close_probe(_web_app: web.Application) -> None:
        await probe.dispose()

    web_app.on_cleanup.append(close_probe)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        problem = await probe_database(probe)
        if problem is not None:
            return web.json_response({"status": "unavailable", "database": problem}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    async def metrics_view(request: web.Request) -> web.Response:
        await metrics.refresh(engine)
        body, content_type = metrics.render(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics_view)
