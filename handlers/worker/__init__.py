"""Workers: invites, queues, case handling, visits, applications.

One router for the audience, made of one sub-router per feature module."""

from __future__ import annotations

from aiogram import Router


def create_router() -> Router:
    from handlers.worker import applications, cases, imports, invites, queues, referrals, visits

    router = Router(name=__name__)
    router.include_routers(
        invites.create_router(),
        queues.create_router(),
        cases.create_router(),
        visits.create_router(),
        referrals.create_router(),
        applications.create_router(),
        imports.create_router(),
    )
    return router
