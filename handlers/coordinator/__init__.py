"""Coordinators: their hromadas' cases, routing, schedules.

One router for the audience, made of one sub-router per feature module."""

from __future__ import annotations

from aiogram import Router


def create_router() -> Router:
    from handlers.coordinator import announcements, cases, mobile_office, replies, reports, routing, surveys

    router = Router(name=__name__)
    router.include_routers(
        cases.create_router(),
        routing.create_router(),
        mobile_office.create_router(),
        surveys.create_router(),
        reports.create_router(),
        replies.create_router(),
        announcements.create_router(),
    )
    return router
