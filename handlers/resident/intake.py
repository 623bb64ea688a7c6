"""New request form (issue 3)."""

from __future__ import annotations

from aiogram import Router


def create_router() -> Router:
    router = Router(name=__name__)
    return router
