"""Outbox notices that are not about one case's handling: survey invitations, the weekly report
to coordinators, the satisfaction question after a resolved case, and announcements
(handlers/kit/notices.py takes this table into its own)."""

from __future__ import annotations

import html

from aiogram.filters.callback_data import CallbackData
from aiogram.utils.i18n import I18n

from handlers.kit.callbacks import RateCb, ReportCb, SurveyCb
from handlers.kit.notice_parts import Parts, PartsBuilder, Payload, escaped, local_date
from handlers.kit.reports import REPORT_FIGURES, report_number
from services.reports import LONG_WAIT_DAYS


def survey_invitation(p: Payload, locale: str, i18n: I18n) -> Parts:
    """An invitation to a survey: its title and introduction in the person's language."""
    lang = "en" if locale == "en" else "uk"
    intro = p[f"intro_{lang}"]
    values = {"title": escaped(p[f"title_{lang}"]), "intro": f"\n\n{html.escape(intro)}" if intro else ""}
    invitation_id = int(p["invitation_id"])
    return values, [
        [
            ("surveys.btn.start", SurveyCb(action="open", inv=invitation_id)),
            ("surveys.btn.later", SurveyCb(action="later", inv=invitation_id)),
        ]
    ]


def weekly_report(p: Payload, locale: str, i18n: I18n) -> Parts:
    figures = i18n.gettext("reports.summary.figures", locale=locale) % {
        **{k: report_number(p.get(k), locale) for k in REPORT_FIGURES},
        "days": LONG_WAIT_DAYS,
    }
    values = {
        "start": local_date(p["start"]),
        "end": local_date(p["end"]),
        "hromadas": int(p["hromadas"]),
        "figures": figures,
    }
    return values, [[("reports.btn.open", ReportCb(action="open", value=str(p["period"])))]]


# -- satisfaction and announcements ----------------------------------------------------------------


def rating_request(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A resolved case: "how satisfied are you?" with 1–5 buttons."""
    case_id = int(p["case_id"])
    scores: list[tuple[str, CallbackData]] = [
        (f"rating.btn.{n}", RateCb(action="rate", case_id=case_id, score=n)) for n in range(1, 6)
    ]
    return {"number": escaped(p["number"])}, [scores]


def announcement(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A coordinator's announcement under the team's name (sent as its photo when it has one)."""
    team = p.get(f"team_{locale}") or p.get("team_uk")
    sender = html.escape(team) if team else i18n.gettext("ann.notice.default_sender", locale=locale)
    return {"team": sender, "text": escaped(p["text"])}, []


ENGAGEMENT_NOTICES: dict[str, PartsBuilder] = {
    "survey_invitation": survey_invitation,
    "weekly_report": weekly_report,
    "rating_request": rating_request,
    "announcement": announcement,
}
