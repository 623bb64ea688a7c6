"""Every callback-data factory in one place. Values here are hints, never trusted:
handlers re-check ownership and role on the server for each press.

Every field is bounded: data outside the bounds (a forged or mangled button) fails to unpack, no
handler takes the press and the fallback answers it as a stale button — before a number too
large for the database's integers reaches a query."""

from __future__ import annotations

from typing import Annotated

from aiogram.filters.callback_data import CallbackData
from pydantic import Field

# A row id: the databases' ids are signed 64-bit integers; 0 means "none" where a field is optional.
Id = Annotated[int, Field(ge=0, le=2**63 - 1)]
Page = Annotated[int, Field(ge=0, le=1000)]
Days = Annotated[int, Field(ge=0, le=366)]
# Callback data is at most 64 bytes: these caps only keep a forged value short and plain.
Word = Annotated[str, Field(max_length=24)]  # an action, a role, a scope, a status, an answer
Value = Annotated[str, Field(max_length=48)]  # an id or a code written as text


class LanguageCb(CallbackData, prefix="lang"):
    code: Value


class ConsentCb(CallbackData, prefix="consent"):
    answer: Word  # yes | no | info


class ForgetCb(CallbackData, prefix="forget"):
    answer: Word  # yes | no


# --- resident intake and "My requests"


class IntakeCb(CallbackData, prefix="in"):
    """A step of the new-request form: pick hromada/settlement/service, toggle a marker, back, ...
    `value` is an id or code; the handler checks it against the draft and the database."""

    action: Word
    value: Value = ""


class MyCaseCb(CallbackData, prefix="my"):
    """ "My requests": list page, open, write, add document, cancel (ownership re-checked)."""

    action: Word
    case_id: Id = 0
    page: Page = 0


class ConvCb(CallbackData, prefix="cv"):
    """A message outside a form: reply (on a team's message: answer in `case_id`) | to (send
    kept message `item_id` to `case_id`) | other (choose another case for it) | new (file a
    new request with it) | nonew. Ownership of the message and the case re-checked."""

    action: Word
    case_id: Id = 0
    item_id: Id = 0


# --- worker and coordinator case handling


class CaseCb(CallbackData, prefix="case"):
    """A worker's action on a case: open, take, ... (the handler re-checks the worker's rights)."""

    action: Word
    case_id: Id


class InviteCb(CallbackData, prefix="winv"):
    """/invite: team chosen (role empty), then role. Re-checked: may the presser manage the team."""

    team_id: Id
    role: Word = ""


class QueueCb(CallbackData, prefix="wq"):
    """A queue page. scope: my | team | hromada | unassigned | stale; status: open or a status."""

    scope: Word
    status: Word = "open"
    page: Page = 0
    team_id: Id = 0


class StatusCb(CallbackData, prefix="wst"):
    """Change a case's status to `to` (the transition table is checked by the service)."""

    case_id: Id
    to: Word


class TransferCb(CallbackData, prefix="wtr"):
    case_id: Id
    team_id: Id


class AssignCb(CallbackData, prefix="wasg"):
    case_id: Id
    worker_id: Id


class DocPickCb(CallbackData, prefix="wdoc"):
    """Document request: toggle a checklist item (`item` = code), `@done`, or a deadline `days`."""

    case_id: Id
    item: Value = ""
    days: Days = 0


class RuleCb(CallbackData, prefix="crule"):
    """Coordinator routing: toggle | add | hromada | service | team (each re-checked)."""

    action: Word
    rule_id: Id = 0
    hromada_id: Id = 0
    service_id: Id = 0
    team_id: Id = 0


# --- visits, mobile office and reminders


class VisitNewCb(CallbackData, prefix="vnew"):
    """ "Schedule a home visit" on a case card (rendered by the case card, handled by visits)."""

    case_id: Id


class DocsReceivedCb(CallbackData, prefix="docrcv"):
    """A worker marks a document request received (stops its reminders)."""

    request_id: Id


class VisitCalCb(CallbackData, prefix="vcal"):
    """The visit form: month page (value YYYYMM), day (YYYYMMDD), time (YYYYMMDDHH), skip, noop.
    visit_id > 0 when moving an existing visit. Re-checked: may the presser act on the case."""

    action: Word
    case_id: Id
    visit_id: Id = 0
    value: Value = ""


class VisitAnswerCb(CallbackData, prefix="vans"):
    """The resident's answer to a visit: confirm | reschedule | cancel | cancel_yes | cancel_no.
    Re-checked: the presser is the resident of the visit's case."""

    action: Word
    visit_id: Id


class VisitWorkerCb(CallbackData, prefix="vwrk"):
    """A worker's action on a visit: move | cancel (re-checked against the case's team)."""

    action: Word
    visit_id: Id


class MobileOfficeCb(CallbackData, prefix="mo"):
    """Mobile office: hromada/settlement pick, trip, slot, book, subscribe, cancel booking,
    coordinator delete. Ids are hints; the service re-checks each one."""

    action: Word
    id: Id = 0
    value: Value = ""


# --- applications and status imports


class AppCb(CallbackData, prefix="app"):
    """An applicant's action on their application: open | sub | unsub | number (ask for a
    number) | phone (share a new number); application_id 0 for the last two. The handler
    re-checks that the application is registered to the user's verified phone. A status push
    carries `unsub` (handlers/kit/notices.py)."""

    action: Word
    application_id: Id


class AppStatusCb(CallbackData, prefix="appst"):
    """A worker sets an application's status by hand (re-checked: active worker, may manage)."""

    application_id: Id
    status: Value


# --- referrals to partner agencies


class RefCb(CallbackData, prefix="ref"):
    """Referrals: new (the case's referrals and partners) | pick (partner `value`) | att (toggle
    file `value`) | contact | send | cancel | view | files | accept | decline | outcome | close |
    list (a partner team's open referrals).
    Ids are hints: the service re-checks the case team's or the partner team's membership."""

    action: Word
    case_id: Id = 0
    referral_id: Id = 0
    value: Id = 0


# --- surveys


class SurveyCb(CallbackData, prefix="sv"):
    """A resident's press in a survey: open (start or resume) | pick | done | scale | skip |
    later. `q` is the question the button belongs to: a press for another question than the
    current one is an old button and resumes at the current question. Re-checked: the invitation
    is the presser's."""

    action: Word
    inv: Id
    q: Id = 0
    value: Value = ""


class SurveyAdminCb(CallbackData, prefix="sva"):
    """A coordinator's survey screen: open | launch | audience (toggle kind) | place (toggle a
    settlement, `value` its id, "all") | when (now | tomorrow | at) | close. Re-checked: the
    presser coordinates the settlements chosen."""

    action: Word
    survey_id: Id
    value: Value = ""


# --- reports


class ReportCb(CallbackData, prefix="rep"):
    """Reports: menu | period (value w0 w1 m0 m1) | custom | open / xlsx / csv (value: a period
    as YYYYMMDD-YYYYMMDD). The scope is never in the data: it is the presser's, checked again."""

    action: Word
    value: Value = ""


# --- saved replies


class ReplyAdminCb(CallbackData, prefix="rpa"):
    """A coordinator's saved replies: teams | team (list) | new (locale) | open | edit | rename |
    up (one place earlier) | translate (locale) | delete. Re-checked: the presser coordinates
    the template's team."""

    action: Word
    team_id: Id = 0
    reply_id: Id = 0
    locale: Word = ""


class ReplyPickCb(CallbackData, prefix="rpw"):
    """A worker's saved replies on a case: list | pick | send | edit, and `note` (the filled
    template as the note of a document request, mode `docs`). Re-checked: a member of the
    case's team, the case open, the template its team's."""

    action: Word
    case_id: Id
    reply_id: Id = 0
    mode: Word = ""  # "" writing to the resident | docs: the note of a document request


# --- satisfaction and announcements


class RateCb(CallbackData, prefix="rate"):
    """A resident's rating of a resolved case: rate (score 1–5) | skip (no comment). Re-checked:
    the case is the presser's, resolved, and not rated yet."""

    action: Word
    case_id: Id
    score: Annotated[int, Field(ge=0, le=5)] = 0


class AnnCb(CallbackData, prefix="ann"):
    """A coordinator's announcement form: start | aud (value: residents|subscribers) | pick
    (id: settlement) | page (id: page of settlements) | done | now | later | send | cancel |
    report (id: announcement). Every settlement and announcement id is re-checked against the
    coordinator's hromadas."""

    action: Word
    id: Id = 0
    value: Value = ""
