"""Residents: requests, their cases, visits, the mobile office, surveys.

One router for the audience, made of one sub-router per feature module."""

from __future__ import annotations

from aiogram import Router


def create_router() -> Router:
    from handlers.resident import intake, mobile_office, my_cases, satisfaction, surveys, visits

    router = Router(name=__name__)
    router.include_routers(
        intake.create_router(),
        my_cases.create_router(),
        visits.create_router(),
        mobile_office.create_router(),
        surveys.create_router(),
        satisfaction.create_router(),
    )
    return router


def conversation_router() -> Router:
    """Messages outside any form; registered by the root router after every audience's forms."""
    from handlers.resident import conversation

    return conversation.create_router()
