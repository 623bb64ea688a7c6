"""The case card and its actions: router (handlers), screens (pure rendering), card (loading
and sending the card), steps (typed texts)."""

from handlers.worker.cases.router import create_router
from handlers.worker.cases.steps import CaseForm

__all__ = ["CaseForm", "create_router"]
