"""Home visits scheduled from the case card: router (handlers and the visit form) and
screens (calendar, time windows, notice buttons)."""

from handlers.worker.visits.router import VisitForm, create_router

__all__ = ["VisitForm", "create_router"]
