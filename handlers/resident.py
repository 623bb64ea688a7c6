"""Resident router."""

from __future__ import annotations

from aiogram import Router


def create_router() -> Router:
    return Router(name=__name__)
