"""SLA in words for the case card, queue lines and notices: "відповісти до 14:00 завтра",
"прострочено на 2 роб. дні". Pure functions of a `SlaView` (services/sla.py) in the current
i18n locale (notices pass theirs)."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _

from handlers.kit.callbacks import CaseCb, QueueCb
from services.sla import BREACHED, DUE_SOON, MET, MISSED, PAUSED, SlaView

CLOCK_KEYS = {"first_response": "sla.respond_by", "resolution": "sla.resolve_by"}


def _when(view: SlaView) -> str:
    due = view.due_local
    if due is None:
        return "—"
    values = {"time": due.strftime("%H:%M"), "date": due.strftime("%d.%m.%Y")}
    if view.due_in_days == 0:
        return _("sla.when.today") % values
    if view.due_in_days == 1:
        return _("sla.when.tomorrow") % values
    return _("sla.when.date") % values


def sla_line(view: SlaView | None) -> str | None:
    """One line about the case's SLA, or None when its service has none."""
    if view is None:
        return None
    if view.state == MET:
        return _("sla.met")
    if view.state == MISSED:
        return _("sla.missed")
    if view.state == PAUSED:
        return _("sla.paused")
    if view.state == BREACHED:
        if view.overdue_days:
            n = view.overdue_days
            return ngettext("sla.overdue.days", "sla.overdue.days", n) % {"n": n}
        n = view.overdue_hours
        return ngettext("sla.overdue.hours", "sla.overdue.hours", n) % {"n": n}
    mark = "⏳" if view.state == DUE_SOON else "⏱"
    return f"{mark} " + _(CLOCK_KEYS.get(view.clock or "", "sla.resolve_by")) % {"when": _when(view)}


# -- notices ---------------------------------------------------------------------------------------

Payload = Any


def _due(value: str | None) -> str:
    if not value:
        return "—"
    return datetime.fromisoformat(value).strftime("%d.%m.%Y %H:%M")


def sla_notice(p: Payload, locale: str, i18n: I18n) -> tuple[dict[str, Any], list[list[tuple[str, Any]]]]:
    """Due soon, breached, escalated: the number, what had to be done by when, an Open button."""
    values = {
        "number": html.escape(str(p["number"])),
        "clock": i18n.gettext(f"sla.clock.{p['clock']}", locale=locale),
        "due": _due(p.get("due")),
        "level": i18n.gettext(f"sla.level.{p['step']}", locale=locale),
    }
    if p["step"] == "oblast":  # the oblast department oversees; the case card is the team's
        return values, []
    return values, [[("worker.btn.open", CaseCb(action="open", case_id=int(p["case_id"])))]]


def sla_digest(p: Payload, locale: str, i18n: I18n) -> tuple[dict[str, Any], list[list[tuple[str, Any]]]]:
    """The morning digest: cases due today and breached (numbers and times), the unassigned
    cases of the worker's teams due today, and only the count of today's visits (the 07:30
    agenda lists them)."""

    def items(lines: list[str]) -> str:
        return "".join(f"\n• {line}" for line in lines)

    # Rows queued before the digest stopped listing visits carry the list itself.
    visits = int(p.get("visits_count", len(p.get("visits", []))))
    unassigned = int(p.get("unassigned_due", 0))
    due = [f"{html.escape(d['number'])} — {d['time']}" for d in p["due"]]
    breached = [html.escape(number) for number in p["breached"]]
    values = {
        "date": datetime.fromisoformat(p["date"]).strftime("%d.%m.%Y"),
        "visits": i18n.gettext("sla.digest.visits", locale=locale) % {"n": visits} if visits else "",
        "due_count": len(due),
        "due": items(due),
        "breached_count": len(breached),
        "breached": items(breached),
        "unassigned": (
            i18n.gettext("sla.digest.unassigned", locale=locale) % {"n": unassigned} if unassigned else ""
        ),
    }
    return values, []


def sla_backfill(p: Payload, locale: str, i18n: I18n) -> tuple[dict[str, Any], list[list[tuple[str, Any]]]]:
    """Upgrade day: how many of the team's open cases got due times, how many already overdue;
    the team's queue (breaching cases first) one tap away."""
    values = {"cases": int(p["cases"]), "breached": int(p["breached"])}
    return values, [[("worker.btn.team_queue", QueueCb(scope="team", team_id=int(p["team_id"])))]]
