"""The new-request form: its steps (steps.py), its screens (screens.py), its handlers (router.py)."""

from __future__ import annotations

from handlers.resident.intake.router import create_router, draft_from, idempotency_key
from handlers.resident.intake.steps import IntakeForm, Step

__all__ = ["IntakeForm", "Step", "create_router", "draft_from", "idempotency_key"]
