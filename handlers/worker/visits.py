"""Scheduling visits, agenda (issue 4)."""

from __future__ import annotations

from aiogram import Router


def create_router() -> Router:
    router = Router(name=__name__)
    return router
