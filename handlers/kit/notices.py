"""Every outbox notice rendered in one place: kind + payload → (text, buttons) in a language.

Services queue a kind and plain values (raw names and texts, ids, local ISO dates); here the
values are HTML-escaped (messages use HTML parse mode), translated with aiogram's I18n and put
into the text `outbox.<kind>`; buttons are packed with the same CallbackData classes the routers
filter on. A kind missing from the table gets its text formatted with its escaped values and no
buttons.

Rows queued before payloads carried `PAYLOAD_VERSION` (pre-rendered, escaped fields and
`buttons` as [text key, callback data] rows) are rendered as they were then, so a deploy never
strands a queued message. A payload that cannot be rendered raises KeyError, TypeError or
ValueError; the deliverer marks the row failed.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from handlers.kit.callbacks import (
    AppCb,
    CaseCb,
    ConvCb,
    VisitAnswerCb,
    VisitWorkerCb,
)
from handlers.kit.engagement_notices import ENGAGEMENT_NOTICES
from handlers.kit.notice_parts import (
    NONE,
    Buttons,
    Parts,
    PartsBuilder,
    Payload,
    escaped,
    local_date,
    local_time,
)
from handlers.kit.referral_notices import REFERRAL_NOTICES
from handlers.kit.render import capped
from handlers.kit.sla_words import sla_backfill, sla_digest, sla_notice
from models.cases import RESOLVED
from services.outbox import PAYLOAD_VERSION, VERSION_KEY

NoticeRenderer = Callable[[str, Payload, str, I18n], tuple[str, InlineKeyboardMarkup | None]]


def render_notice(
    kind: str, payload: Payload, locale: str, i18n: I18n
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The message for an outbox row of `kind` with `payload`, in `locale`."""
    if payload.get(VERSION_KEY) != PAYLOAD_VERSION:
        return _legacy(kind, payload, locale, i18n)
    build = NOTICES.get(kind, _plain)
    values, buttons = build(payload, locale, i18n)
    text = i18n.gettext(f"outbox.{kind}", locale=locale)
    if values:
        text = text % values
    packed = [[(key, data.pack()) for key, data in row] for row in buttons or []]
    return capped(text, i18n.gettext("common.cut", locale=locale)), _markup(packed, locale, i18n)


def _markup(rows: list[list[tuple[str, str]]], locale: str, i18n: I18n) -> InlineKeyboardMarkup | None:
    """Buttons from rows of (text key, packed callback data)."""
    if not rows:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=i18n.gettext(key, locale=locale), callback_data=data)
                for key, data in row
            ]
            for row in rows
        ]
    )


# -- buttons ---------------------------------------------------------------------------------------


def _case_open(p: Payload) -> Buttons:
    return [[("worker.btn.open", CaseCb(action="open", case_id=int(p["case_id"])))]]


def _case_take_open(take: str, open_: str, p: Payload) -> Buttons:
    case_id = int(p["case_id"])
    return [[(take, CaseCb(action="take", case_id=case_id)), (open_, CaseCb(action="open", case_id=case_id))]]


# -- cases -----------------------------------------------------------------------------------------


def _case_places(p: Payload) -> dict[str, Any]:
    values: dict[str, Any] = {"number": escaped(p["number"])}
    for field in ("service", "hromada", "settlement"):
        for lang in ("uk", "en"):
            values[f"{field}_{lang}"] = escaped(p[f"{field}_{lang}"])
    return values


def case_new(p: Payload, locale: str, i18n: I18n) -> Parts:
    values = {**_case_places(p), "priority": int(p["priority"]), "excerpt": escaped(p["excerpt"])}
    return values, _case_take_open("outbox.btn.take", "outbox.btn.open", p)


def case_new_group(p: Payload, locale: str, i18n: I18n) -> Parts:
    case_id = int(p["case_id"])
    return _case_places(p), [[("outbox.btn.open", CaseCb(action="open", case_id=case_id))]]


def case_to_worker(p: Payload, locale: str, i18n: I18n) -> Parts:
    """Assigned, a file from the resident: the number and an "Open" button."""
    return {"number": escaped(p["number"])}, _case_open(p)


def case_message_to_worker(p: Payload, locale: str, i18n: I18n) -> Parts:
    return {"number": escaped(p["number"]), "text": escaped(p["text"])}, _case_open(p)


def _caption(p: Payload) -> str:
    """A file's caption under the notice's first line (rows queued without one: nothing)."""
    caption = p.get("caption")
    return f"\n\n{html.escape(caption)}" if caption else ""


def case_attachment_to_worker(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A file from the resident: sent as the file itself (see `notice_media`), this text its
    caption; the worker answers it with a Telegram reply."""
    return {"number": escaped(p["number"]), "caption": _caption(p)}, _case_open(p)


def case_cancelled_to_worker(p: Payload, locale: str, i18n: I18n) -> Parts:
    return {"number": escaped(p["number"]), "reason": html.escape(p["reason"] or "")}, _case_open(p)


def case_transferred_to_team(p: Payload, locale: str, i18n: I18n) -> Parts:
    values = {"number": escaped(p["number"]), "note": escaped(p["note"])}
    return values, _case_take_open("worker.btn.take", "worker.btn.open", p)


def case_status_changed(p: Payload, locale: str, i18n: I18n) -> Parts:
    reason = ""
    if p["reason"]:
        label = "case.notice.outcome" if p["status"] == RESOLVED else "case.notice.reason"
        reason = "\n" + i18n.gettext(label, locale=locale) % {"reason": escaped(p["reason"])}
    values = {
        "number": escaped(p["number"]),
        "status": i18n.gettext(f"case.status.{p['status']}", locale=locale),
        "team": html.escape(p["team"] or ""),
        "reason": reason,
    }
    return values, []


def case_to_resident(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A message from the team, a transfer: number, team and (for a message) its text."""
    values = {"number": escaped(p["number"]), "team": html.escape(p["team"] or "")}
    if "text" in p:
        values["text"] = escaped(p["text"])
    return values, []


def _reply_button(p: Payload) -> Buttons:
    # Rows queued before messages carried their case id have no button (a Telegram reply works).
    if "case_id" not in p:
        return []
    return [[("conv.btn.reply", ConvCb(action="reply", case_id=int(p["case_id"])))]]


def case_message_to_resident(p: Payload, locale: str, i18n: I18n) -> Parts:
    """The team's message, with "↩️ Reply" (the resident's answer goes to this case)."""
    values, _ = case_to_resident(p, locale, i18n)
    return values, _reply_button(p)


def case_file_to_resident(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A file from the team (sent as the file, this text its caption), with "↩️ Reply"."""
    values = {"number": escaped(p["number"]), "team": html.escape(p["team"] or ""), "caption": _caption(p)}
    return values, _reply_button(p)


# -- visits ----------------------------------------------------------------------------------------


def _visit_times(p: Payload) -> dict[str, Any]:
    return {
        "number": escaped(p["number"]),
        "date": local_date(p["starts_at"]),
        "time_from": local_time(p["starts_at"]),
        "time_to": local_time(p["ends_at"]),
    }


def visit_to_resident(p: Payload, locale: str, i18n: I18n) -> Parts:
    """Cancelled by the worker and the reminders: when, who comes, what to prepare."""
    return {**_visit_times(p), "who": escaped(p["who"]), "prepare": escaped(p["prepare"])}, []


def visit_invitation(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A new or moved visit, with the resident's answers."""
    values, _ = visit_to_resident(p, locale, i18n)
    visit_id = int(p["visit_id"])
    buttons: Buttons = [
        [
            ("visit.btn.confirm", VisitAnswerCb(action="confirm", visit_id=visit_id)),
            ("visit.btn.reschedule", VisitAnswerCb(action="reschedule", visit_id=visit_id)),
        ],
        [("visit.btn.cancel", VisitAnswerCb(action="cancel", visit_id=visit_id))],
    ]
    return values, buttons


def visit_answer_cancelled(p: Payload, locale: str, i18n: I18n) -> Parts:
    return _visit_times(p), []


def visit_answer(p: Payload, locale: str, i18n: I18n) -> Parts:
    """The resident confirmed or asks to move it: the worker may move or cancel it."""
    values = _visit_times(p)
    proposed = p.get("proposed")
    values["proposed"] = f"{local_date(proposed)} {local_time(proposed)}" if proposed else NONE
    values["note"] = html.escape(p.get("note") or "")
    visit_id = int(p["visit_id"])
    buttons: Buttons = [
        [
            ("visit.btn.move", VisitWorkerCb(action="move", visit_id=visit_id)),
            ("visit.btn.cancel_worker", VisitWorkerCb(action="cancel", visit_id=visit_id)),
        ]
    ]
    return values, buttons


def visit_agenda(p: Payload, locale: str, i18n: I18n) -> Parts:
    items = p["items"]
    lines = [
        f"• {item['time_from']}–{item['time_to']} · {escaped(item['settlement'])} · {escaped(item['number'])}"
        for item in items
    ]
    return {"date": local_date(p["date"]), "count": str(len(items)), "items": "\n".join(lines)}, []


# -- documents, mobile office, renewals, applications ------------------------------------------


def _where_to_bring(place: str | None, locale: str, i18n: I18n) -> str:
    """The team's office when it has one; a team without one takes papers as photos only."""
    if place and place.strip():
        return i18n.gettext("docs.where.office", locale=locale) % {"place": html.escape(place.strip())}
    return i18n.gettext("docs.where.photo", locale=locale)


def docs(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A document request and its reminders: the list, where to bring it, the deadline."""
    deadline = p["deadline"]
    note = p.get("note")
    values = {
        "number": escaped(p["number"]),
        "items": "\n".join(f"• {html.escape(name)}" for name in p["items"]),
        "where": _where_to_bring(p["place"], locale, i18n),
        "deadline": local_date(deadline) if deadline else "",
        "note": f"\n\n{html.escape(note)}" if note else "",
    }
    return values, []


def mobile_office(p: Payload, locale: str, i18n: I18n) -> Parts:
    values = {
        "settlement": html.escape(p["settlement"] or ""),
        "date": local_date(p["date"]),
        "time_from": p["time_from"],
        "time_to": p["time_to"],
        "place": escaped(p["place"]),
    }
    if "slot" in p:
        values["slot"] = p["slot"]
    return values, []


def renewal_due(p: Payload, locale: str, i18n: I18n) -> Parts:
    return {"number": escaped(p["number"]), "service": escaped(p["service"]), "due": local_date(p["due"])}, []


def app_status_changed(p: Payload, locale: str, i18n: I18n) -> Parts:
    values = {
        "number": html.escape(p["number"]),
        "status": html.escape(p["status"]),
        "date": local_date(p["date"]),
        "next_step": html.escape(p["next_step"] or ""),
    }
    unsubscribe = AppCb(action="unsub", application_id=int(p["application_id"]))
    return values, [[("app.btn_unsubscribe", unsubscribe)]]


def _plain(p: Payload, locale: str, i18n: I18n) -> Parts:
    return {k: html.escape(str(v)) for k, v in p.items() if k != VERSION_KEY}, []


NOTICES: dict[str, PartsBuilder] = {
    "case_new": case_new,
    "case_new_group": case_new_group,
    "case_assigned": case_to_worker,
    "case_attachment_to_worker": case_attachment_to_worker,
    "case_message_to_worker": case_message_to_worker,
    "case_cancelled_to_worker": case_cancelled_to_worker,
    "case_transferred_to_team": case_transferred_to_team,
    "case_status_changed": case_status_changed,
    "case_message_to_resident": case_message_to_resident,
    "case_file_to_resident": case_file_to_resident,
    "case_transferred": case_to_resident,
    "visit_new": visit_invitation,
    "visit_changed": visit_invitation,
    "visit_cancelled_by_worker": visit_to_resident,
    "visit_day_before": visit_to_resident,
    "visit_soon": visit_to_resident,
    "visit_answer_confirmed": visit_answer,
    "visit_answer_reschedule": visit_answer,
    "visit_answer_cancelled": visit_answer_cancelled,
    "visit_agenda": visit_agenda,
    "docs_requested": docs,
    "docs_requested_open": docs,
    "docs_reminder": docs,
    "docs_reminder_open": docs,
    "docs_overdue": docs,
    "mo_day_before": mobile_office,
    "mo_booking_day_before": mobile_office,
    "renewal_due": renewal_due,
    "app_status_changed": app_status_changed,
    **REFERRAL_NOTICES,
    **ENGAGEMENT_NOTICES,
    "sla_due_soon": sla_notice,
    "sla_breached": sla_notice,
    "sla_escalated": sla_notice,
    "sla_digest": sla_digest,
    "sla_backfill": sla_backfill,
}


# Files a notice may carry, sent again by their Telegram file id.
MEDIA_TYPES = frozenset({"photo", "document", "voice", "video_note"})


def notice_media(payload: Payload) -> tuple[str, str] | None:
    """(type, file id) of the file an outbox row sends instead of a plain text, if any. A
    payload scrubbed by an erasure (no file left) is sent as text."""
    file = payload.get("file")
    if not isinstance(file, Mapping):
        return None
    kind, file_id = file.get("type"), file.get("file_id")
    if kind not in MEDIA_TYPES or not isinstance(file_id, str) or not file_id:
        return None
    return str(kind), file_id


def _legacy(kind: str, payload: Payload, locale: str, i18n: I18n) -> tuple[str, InlineKeyboardMarkup | None]:
    """A row in the earlier shape: fields already escaped and translated, buttons spelled out."""
    values = dict(payload)
    buttons = values.pop("buttons", None)
    values.setdefault("caption", "")  # texts that gained a caption since
    text = i18n.gettext(f"outbox.{kind}", locale=locale)
    if values:
        text = text % values
    return text, _markup([[(key, data) for key, data in row] for row in buttons or []], locale, i18n)
