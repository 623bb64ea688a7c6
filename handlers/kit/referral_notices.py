"""Outbox notices about referrals to partner agencies, rendered like every other notice
(handlers/kit/notices.py takes this table into its own): payload of plain values → the values
for the text `outbox.<kind>` and the buttons.

The partner's notices carry only the referred part of a case (subject, service, place, the
contact if the worker shared it); their buttons open the referral, never the case."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.utils.i18n import I18n

from handlers.kit.callbacks import CaseCb, RefCb
from handlers.kit.notice_parts import NONE, Parts, PartsBuilder, Payload, escaped, in_language, local_date


def _view(p: Payload) -> list[tuple[str, CallbackData]]:
    return [("referral.btn.view", RefCb(action="view", referral_id=int(p["referral_id"])))]


def _case(p: Payload) -> list[tuple[str, CallbackData]]:
    return [("worker.btn.open", CaseCb(action="open", case_id=int(p["case_id"])))]


def referral_new(p: Payload, locale: str, i18n: I18n) -> Parts:
    """To the partner team: the referral card, with its answers."""
    settlement = in_language(p, "settlement", locale)
    hromada = in_language(p, "hromada", locale)
    place = hromada if settlement == NONE else f"{settlement}, {hromada}"
    contact = p.get("contact")
    values = {
        "number": escaped(p["number"]),
        "service": in_language(p, "service", locale),
        "place": place,
        "subject": escaped(p["subject"]),
        "contact": (
            i18n.gettext("referral.partner.contact", locale=locale) % {"phone": escaped(contact)}
            if contact
            else i18n.gettext("referral.partner.no_contact", locale=locale)
        ),
        "files": int(p.get("files") or 0),
    }
    rid = int(p["referral_id"])
    buttons: list[list[tuple[str, CallbackData]]] = [
        [
            ("referral.btn.accept", RefCb(action="accept", referral_id=rid)),
            ("referral.btn.decline", RefCb(action="decline", referral_id=rid)),
        ],
        [("referral.btn.outcome", RefCb(action="outcome", referral_id=rid))],
    ]
    return values, buttons


def referral_file(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A chosen file, sent as the file itself; this is its caption."""
    return {"number": escaped(p["number"])}, []


def referral_to_partner(p: Payload, locale: str, i18n: I18n) -> Parts:
    """A reminder or a withdrawal, to the partner team."""
    return {"number": escaped(p["number"])}, [_view(p)]


def referral_answer(p: Payload, locale: str, i18n: I18n) -> Parts:
    """The partner's answer, to the referring team."""
    values = {
        "number": escaped(p["number"]),
        "partner": in_language(p, "partner", locale),
        "state": i18n.gettext(f"referral.state.{p['state']}", locale=locale),
        "text": f"\n{escaped(p['text'])}" if p.get("text") else "",
    }
    return values, [_view(p), _case(p)]


def referral_chase(p: Payload, locale: str, i18n: I18n) -> Parts:
    """An external partner has not answered: the referring team calls them."""
    values = {
        "number": escaped(p["number"]),
        "partner": in_language(p, "partner", locale),
        "contact": in_language(p, "contact", locale),
    }
    return values, [_view(p)]


def referral_escalated(p: Payload, locale: str, i18n: I18n) -> Parts:
    values = {
        "number": escaped(p["number"]),
        "partner": in_language(p, "partner", locale),
        "date": local_date(p["sent"]),
    }
    return values, [_view(p), _case(p)]


def referral_to_resident(p: Payload, locale: str, i18n: I18n) -> Parts:
    """In plain words: sent to, accepted by, declined by (why), the outcome."""
    text = i18n.gettext(f"referral.resident.{p['state']}", locale=locale) % {
        "partner": in_language(p, "partner", locale)
    }
    if p.get("text"):
        text += f"\n{escaped(p['text'])}"
    return {"number": escaped(p["number"]), "text": text}, []


REFERRAL_NOTICES: dict[str, PartsBuilder] = {
    "referral_new": referral_new,
    "referral_file": referral_file,
    "referral_reminder": referral_to_partner,
    "referral_closed": referral_to_partner,
    "referral_answer": referral_answer,
    "referral_chase": referral_chase,
    "referral_escalated": referral_escalated,
    "referral_to_resident": referral_to_resident,
}
