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


# --- resident intake and "My requests"


class IntakeCb(CallbackData, prefix="in"):
    """A step of the new-request form: pick hromada/settlement/service, toggle a marker, back, ...
    `value` is an id or code; the handler checks it against the draft and the database."""

    action: str
    value: str = ""


class MyCaseCb(CallbackData, prefix="my"):
    """ "My requests": list page, open, write, add document, cancel (ownership re-checked)."""

    action: str
    case_id: int = 0
    page: int = 0


# --- worker and coordinator case handling


class CaseCb(CallbackData, prefix="case"):
    """A worker's action on a case: open, take, ... (the handler re-checks the worker's rights)."""

    action: str
    case_id: int


class InviteCb(CallbackData, prefix="winv"):
    """/invite: team chosen (role empty), then role. Re-checked: may the presser manage the team."""

    team_id: int
    role: str = ""


class QueueCb(CallbackData, prefix="wq"):
    """A queue page. scope: my | team | hromada | unassigned | stale; status: open or a status."""

    scope: str
    status: str = "open"
    page: int = 0
    team_id: int = 0


class StatusCb(CallbackData, prefix="wst"):
    """Change a case's status to `to` (the transition table is checked by the service)."""

    case_id: int
    to: str


class TransferCb(CallbackData, prefix="wtr"):
    case_id: int
    team_id: int


class AssignCb(CallbackData, prefix="wasg"):
    case_id: int
    worker_id: int


class DocPickCb(CallbackData, prefix="wdoc"):
    """Document request: toggle a checklist item (`item` = code), `@done`, or a deadline `days`."""

    case_id: int
    item: str = ""
    days: int = 0


class RuleCb(CallbackData, prefix="crule"):
    """Coordinator routing: toggle | add | hromada | service | team (each re-checked)."""

    action: str
    rule_id: int = 0
    hromada_id: int = 0
    service_id: int = 0
    team_id: int = 0


# --- visits, mobile office and reminders


class VisitNewCb(CallbackData, prefix="vnew"):
    """ "Schedule a home visit" on a case card (rendered by the case card, handled by visits)."""

    case_id: int


class DocsReceivedCb(CallbackData, prefix="docrcv"):
    """A worker marks a document request received (stops its reminders)."""

    request_id: int


class VisitCalCb(CallbackData, prefix="vcal"):
    """The visit form: month page (value YYYYMM), day (YYYYMMDD), time (YYYYMMDDHH), skip, noop.
    visit_id > 0 when moving an existing visit. Re-checked: may the presser act on the case."""

    action: str
    case_id: int
    visit_id: int = 0
    value: str = ""


class VisitAnswerCb(CallbackData, prefix="vans"):
    """The resident's answer to a visit: confirm | reschedule | cancel | cancel_yes | cancel_no.
    Re-checked: the presser is the resident of the visit's case."""

    action: str
    visit_id: int


class VisitWorkerCb(CallbackData, prefix="vwrk"):
    """A worker's action on a visit: move | cancel (re-checked against the case's team)."""

    action: str
    visit_id: int


class MobileOfficeCb(CallbackData, prefix="mo"):
    """Mobile office: hromada/settlement pick, trip, slot, book, subscribe, cancel booking,
    coordinator delete. Ids are hints; the service re-checks each one."""

    action: str
    id: int = 0
    value: str = ""


# --- applications and status imports


class AppCb(CallbackData, prefix="app"):
    """An applicant's action on their application: open | sub | unsub | number (ask for a
    number) | phone (share a new number); application_id 0 for the last two. The handler
    re-checks that the application is registered to the user's verified phone. A status push
    carries `unsub` (handlers/kit/notices.py)."""

    action: str
    application_id: int


class AppStatusCb(CallbackData, prefix="appst"):
    """A worker sets an application's status by hand (re-checked: active worker, may manage)."""

    application_id: int
    status: str
