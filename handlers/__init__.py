"""Routers, one per audience. `build_root_router` is the one place they are put together.

Each module registers its handler functions in `create_router()`, so every Dispatcher (and
every test) gets fresh routers: an aiogram router can belong to one parent only."""

from __future__ import annotations

from aiogram import Router


def build_root_router() -> Router:
    from handlers import common, coordinator, errors, fallback, idp, resident, worker

    root = Router(name="root")
    root.include_routers(
        errors.create_router(),
        # Before common: its /start with an invite payload must win over the plain /start.
        worker.create_router(),
        common.create_router(),
        coordinator.create_router(),
        idp.create_router(),
        resident.create_router(),
        # After every form (a step always wins), before the fallback: a resident's message
        # outside any form goes to one of their cases.
        resident.conversation_router(),
        # Last: anything nobody else took (stickers, voice, unknown commands, stale buttons).
        fallback.create_router(),
    )
    return root
