"""Every callback-data factory in one place. Values here are hints, never trusted:
handlers re-check ownership and role on the server for each press."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class LanguageCb(CallbackData, prefix="lang"):
    code: str


class ConsentCb(CallbackData, prefix="consent"):
    answer: str  # yes | no | info


# --- resident intake and "My requests" (issue 3) --------------------------------------------


# --- worker and coordinator case handling (issue 3) -----------------------------------------


# --- visits, mobile office and reminders (issue 4) ------------------------------------------


# --- applications and status imports (issue 5) ----------------------------------------------
