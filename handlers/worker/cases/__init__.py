"""The case card and its actions: router (handlers), screens (pure rendering), card (loading
and sending the card), steps (typed texts), templates (saved replies while writing)."""

from aiogram import Router

from handlers.worker.cases import replies, router, templates
from handlers.worker.cases.steps import CaseForm


def create_router() -> Router:
    root = router.create_router()
    root.include_router(replies.create_router())
    # A sibling, not a child, of the card's router: that one's presses are pruned to its own
    # callback data, and a parent's filters apply to its children.
    parent = Router(name=__name__)
    parent.include_routers(root, templates.create_router())
    return parent


__all__ = ["CaseForm", "create_router"]
