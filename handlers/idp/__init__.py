"""Applicants (IDPs and others): application status self-check.

One router for the audience, made of one sub-router per feature module."""

from __future__ import annotations

from aiogram import Router


def create_router() -> Router:
    from handlers.idp import status

    router = Router(name=__name__)
    router.include_routers(
        status.create_router(),
    )
    return router
