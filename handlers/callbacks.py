"""Every callback-data factory in one place. Values here are hints, never trusted:
handlers re-check ownership and role on the server for each press."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class LanguageCb(CallbackData, prefix="lang"):
    code: str


class ConsentCb(CallbackData, prefix="consent"):
    answer: str  # yes | no | info


class ForgetCb(CallbackData, prefix="forget"):
    answer: str  # yes | no


# --- resident intake and "My requests" (issue 3) --------------------------------------------


# --- worker and coordinator case handling (issue 3) -----------------------------------------


class CaseCb(CallbackData, prefix="case"):
    """A worker's action on a case: open, take, ... (the handler re-checks the worker's rights)."""

    action: str
    case_id: int


# --- visits, mobile office and reminders (issue 4) ------------------------------------------


class VisitNewCb(CallbackData, prefix="vnew"):
    """"Schedule a home visit" on a case card (rendered by the case card, handled by visits)."""

    case_id: int


class DocsReceivedCb(CallbackData, prefix="docrcv"):
    """A worker marks a document request received (stops its reminders)."""

    request_id: int


# --- applications and status imports (issue 5) ----------------------------------------------
