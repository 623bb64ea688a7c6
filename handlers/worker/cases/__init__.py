"""The case card and its actions: router (handlers), screens (pure rendering), card (loading
and sending the card), steps (typed texts), templates (saved replies while writing)."""

from aiogram import Router

from handlers.worker.cases import replies, router, templates
from handlers.worker.cases.steps import CaseForm


def create_router() -> Router:
    root = router.create_router()
    root.include_router(replies.create_router())
    root.include_router(templates.create_router())
    return root


__all__ = ["CaseForm", "create_router"]
