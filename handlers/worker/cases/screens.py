"""The case card and the menus opened from it: pure functions from domain objects to
(text, markup), in the current i18n locale."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime, tzinfo

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import (
    AssignCb,
    CaseCb,
    DocPickCb,
    DocsReceivedCb,
    QueueCb,
    RefCb,
    ReplyPickCb,
    StatusCb,
    TransferCb,
    VisitNewCb,
)
from handlers.kit.queues import priority_mark
from handlers.kit.render import MESSAGE_MAX, escape_clipped, fit_message, telegram_len
from handlers.kit.render import routing_reason as shared_routing_reason
from handlers.kit.sla_words import sla_line
from models import Case, DocumentRequest, DocumentRequirement, Team, Worker
from models.cases import CLOSED_STATUSES, EVENT_KINDS, RESOLVED
from services.case_actions import Access
from services.queues import CARD_EVENTS, CARD_MESSAGES, CardEvent, CaseCard

Screen = tuple[str, InlineKeyboardMarkup]


def _local(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%d.%m %H:%M")


def headed(case: Case, key: str) -> str:
    """A prompt about one case: its number in bold, then the text of `key`."""
    return f"<b>{case.number}</b>\n" + _(key)


def routing_reason(case: Case, locale: str) -> str:
    if not (case.routing_detail or {}).get("team"):
        return html.escape(case.team.name(locale)) if case.team else ""
    return shared_routing_reason(case, locale, get_i18n())


def _event_line(event: CardEvent, tz: tzinfo) -> str:
    when = _local(event.at, tz)
    if event.kind == "status":
        before = _("case.status." + (event.from_status or "new"))
        text = f"{before} → {_('case.status.' + (event.to_status or 'new'))}"
    elif event.kind in EVENT_KINDS:
        text = _(f"worker.event.{event.kind}")
    else:
        text = _("worker.event.other")
    if event.reason:
        # A resolved case's note is what was done for the person, not a reason.
        label = f"{_('worker.event.outcome')}: " if event.to_status == RESOLVED else ""
        text += f" — {label}{escape_clipped(event.reason, 200)}"
    return f"• {when} {text}"


def card_screen(
    case: Case,
    access: Access,
    card: CaseCard,
    locale: str,
    tz: tzinfo,
    *,
    private: bool,
    open_requests: Sequence[DocumentRequest] = (),
) -> Screen:
    lines = [
        _("worker.card.title") % {"number": case.number, "service": html.escape(case.service.name(locale))},
        _("worker.card.status") % {"status": _("case.status." + case.status)},
        _("worker.card.priority") % {"priority": f"{priority_mark(case.priority)} {case.priority}"},
    ]
    sla = sla_line(card.sla)
    if sla:
        lines.append(_("sla.card") % {"line": sla})
    if case.vulnerability:
        lines.append(
            _("worker.card.vulnerability")
            % {"items": ", ".join(_(f"intake.marker.{code}") for code in case.vulnerability)}
        )
    lines.append(
        _("worker.card.place")
        % {
            "hromada": html.escape(case.hromada.name(locale)),
            "settlement": html.escape(case.settlement.name(locale)) if case.settlement else "—",
        }
    )
    lines.append(_("worker.card.team") % {"team": html.escape(case.team.name(locale))})
    lines.append(_("worker.card.routing") % {"reason": routing_reason(case, locale)})
    if case.assignee is not None:
        lines.append(_("worker.card.assignee") % {"name": html.escape(case.assignee.display_name)})
    else:
        lines.append(_("worker.card.unassigned"))
    # Contacts and the description only to the case team's members, and never in a group chat.
    if access.member and private:
        if case.contact_phone:
            lines.append(_("worker.card.contact") % {"phone": case.contact_phone})
        if case.on_behalf and case.on_behalf_name:
            lines.append(
                _("worker.card.on_behalf")
                % {
                    "name": html.escape(case.on_behalf_name),
                    "relation": html.escape(case.on_behalf_relation or ""),
                }
            )
        if case.description:
            lines.append(_("worker.card.description") % {"text": escape_clipped(case.description, 1500)})
    user = case.resident.user if case.resident else None
    if user is not None and not user.reachable:
        lines.append(_("worker.card.unreachable"))
    if case.outcome:
        lines.append(_("worker.card.outcome") % {"text": escape_clipped(case.outcome, 600)})
    if card.attachments_count:
        lines.append(_("worker.card.attachments") % {"n": card.attachments_count})
    events = [_event_line(e, tz) for e in card.events]
    messages: list[str] = []
    if access.member or not private:
        for m in card.messages:
            who = _("worker.card.from_resident") if m.from_resident else _("worker.card.from_team")
            messages.append(f"• {_local(m.at, tz)} {who}: {escape_clipped(m.text, 300)}")
    text, cut = _fit_card(lines, events, messages)
    # The card shows the newest entries only: the whole history goes out as a file on request.
    more = cut or len(card.events) >= CARD_EVENTS or len(card.messages) >= CARD_MESSAGES
    return text, card_markup(
        case, access, card, open_requests, tz, history=more and access.member and private
    )


def _fit_card(head: list[str], events: list[str], messages: list[str]) -> tuple[str, bool]:
    """The card within Telegram's limit: the oldest history lines go first, then the oldest
    messages, with a line saying so; the head (with the description) is cut last."""
    cut_note = _("worker.card.cut")
    cut = False
    while True:
        blocks = list(head)
        if cut:
            blocks += ["", cut_note]
        if events:
            blocks += ["", _("worker.card.history"), *events]
        if messages:
            blocks += ["", _("worker.card.messages"), *messages]
        text = "\n".join(blocks)
        if telegram_len(text) <= MESSAGE_MAX:
            return text, cut
        if not events and not messages:
            return fit_message(blocks, cut_note)[0], True
        cut = True
        if events:
            events = events[1:]
        else:
            messages = messages[1:]


def card_markup(
    case: Case,
    access: Access,
    card: CaseCard,
    open_requests: Sequence[DocumentRequest] = (),
    tz: tzinfo | None = None,
    *,
    history: bool = False,
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    sizes: list[int] = []
    if access.member:
        # One "received" button per open document request: stops its reminders.
        for request in open_requests:
            when = request.created_at.astimezone(tz) if tz else request.created_at
            builder.button(
                text=_("worker.btn.docs_received") % {"date": when.strftime("%d.%m")},
                callback_data=DocsReceivedCb(request_id=request.id),
            )
            sizes.append(1)
    if case.status not in CLOSED_STATUSES:
        if access.member and case.assignee_worker_id is None:
            builder.button(text=_("worker.btn.take"), callback_data=CaseCb(action="take", case_id=case.id))
            sizes.append(1)
        builder.button(text=_("worker.btn.status"), callback_data=CaseCb(action="status", case_id=case.id))
        sizes.append(1)
        if access.member:
            builder.button(text=_("worker.btn.docs"), callback_data=CaseCb(action="docs", case_id=case.id))
            builder.button(text=_("worker.btn.write"), callback_data=CaseCb(action="write", case_id=case.id))
            builder.button(text=_("worker.btn.visit"), callback_data=VisitNewCb(case_id=case.id))
            sizes += [2, 1]
        builder.button(
            text=_("worker.btn.transfer"), callback_data=CaseCb(action="transfer", case_id=case.id)
        )
        sizes.append(1)
        if access.coordinator:
            builder.button(
                text=_("worker.btn.assign"), callback_data=CaseCb(action="assign", case_id=case.id)
            )
            sizes.append(1)
    if access.member:
        # Referrals to partner agencies: the case's referrals, and (open case) a new one.
        builder.button(text=_("referral.btn.card"), callback_data=RefCb(action="new", case_id=case.id))
        sizes.append(1)
    if card.attachments_count:
        builder.button(text=_("worker.btn.files"), callback_data=CaseCb(action="files", case_id=case.id))
        sizes.append(1)
    if history:
        builder.button(text=_("worker.btn.history"), callback_data=CaseCb(action="history", case_id=case.id))
        sizes.append(1)
    builder.button(text=_("worker.btn.panel"), callback_data=QueueCb(scope="panel"))
    sizes.append(1)
    builder.adjust(*sizes)
    return builder.as_markup()


def status_menu(case: Case, options: Sequence[str]) -> Screen:
    builder = InlineKeyboardBuilder()
    for status in options:
        builder.button(text=_(f"case.status.{status}"), callback_data=StatusCb(case_id=case.id, to=status))
    builder.adjust(2)
    return headed(case, "worker.status.choose"), builder.as_markup()


def transfer_menu(case: Case, teams: Sequence[Team], locale: str) -> Screen:
    builder = InlineKeyboardBuilder()
    for team in teams:
        builder.button(text=team.name(locale), callback_data=TransferCb(case_id=case.id, team_id=team.id))
    builder.adjust(1)
    return headed(case, "worker.transfer.choose"), builder.as_markup()


def assign_menu(case: Case, members: Sequence[Worker]) -> Screen:
    builder = InlineKeyboardBuilder()
    for member in members:
        builder.button(text=member.display_name, callback_data=AssignCb(case_id=case.id, worker_id=member.id))
    builder.adjust(1)
    return headed(case, "worker.assign.choose"), builder.as_markup()


def docs_markup(
    case_id: int, checklist: Sequence[DocumentRequirement], chosen: Sequence[str], locale: str
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for item in checklist:
        mark = "✅ " if item.code in chosen else "▫️ "
        builder.button(
            text=mark + item.name(locale), callback_data=DocPickCb(case_id=case_id, item=item.code)
        )
    builder.button(text=_("worker.btn.done"), callback_data=DocPickCb(case_id=case_id, item="@done"))
    builder.adjust(1)
    return builder.as_markup()


def docs_menu(case: Case, checklist: Sequence[DocumentRequirement], locale: str) -> Screen:
    return headed(case, "worker.docs.choose"), docs_markup(case.id, checklist, [], locale)


def deadline_menu(case: Case, choices: Sequence[int], *, templates: bool = False, note: str = "") -> Screen:
    """The deadlines; with `templates`, a button to add a saved reply as the request's note,
    and `note` (already escaped) shown when one is added."""
    builder = InlineKeyboardBuilder()
    for days in choices:
        builder.button(
            text=ngettext("worker.docs.days", "worker.docs.days", days) % {"n": days},
            callback_data=DocPickCb(case_id=case.id, days=days),
        )
    sizes = [3]
    if templates:
        builder.button(
            text=_("replies.btn.templates"),
            callback_data=ReplyPickCb(action="list", case_id=case.id, mode="docs"),
        )
        sizes.append(1)
    builder.adjust(*sizes)
    text = headed(case, "worker.docs.deadline")
    return (text + "\n\n" + note if note else text), builder.as_markup()


def history_file(case: Case, card: CaseCard, locale: str, tz: tzinfo) -> tuple[str, bytes]:
    """The whole history and correspondence of a case as a plain-text file: (name, content)."""
    lines = [_("worker.history.title") % {"number": case.number, "service": case.service.name(locale)}]
    if case.description:
        lines += ["", _plain(_("worker.card.description") % {"text": ""}).rstrip(), case.description]
    if case.outcome:
        lines += ["", _plain(_("worker.card.outcome") % {"text": ""}).rstrip(), case.outcome]
    lines += ["", _plain(_("worker.card.history")), *(_plain(_event_line(e, tz)) for e in card.events)]
    lines += ["", _plain(_("worker.card.messages"))]
    for m in card.messages:
        who = _plain(_("worker.card.from_resident") if m.from_resident else _("worker.card.from_team"))
        lines.append(f"• {_local(m.at, tz)} {who}: {m.text}")
    return f"{case.number}.txt", ("\n".join(lines) + "\n").encode()


_TAG = re.compile(r"</?[a-z][^>]*>")


def _plain(rendered: str) -> str:
    """A rendered HTML line as plain text: tags dropped first, then entities resolved."""
    return html.unescape(_TAG.sub("", rendered))


def found_by_phone(cases: Sequence[Case], locale: str, tz: tzinfo) -> Screen:
    """A caller's cases in the worker's teams, newest first, each a button to its card."""
    builder = InlineKeyboardBuilder()
    if not cases:
        return _("worker.phone_lookup.none"), builder.as_markup()
    lines = [_("worker.phone_lookup.title") % {"n": len(cases)}]
    for case in cases:
        filed = case.created_at.astimezone(tz).strftime("%d.%m.%Y")
        lines.append(
            f"• <b>{html.escape(case.number)}</b> — {html.escape(case.service.name(locale))} — "
            f"{_('case.status.' + case.status)} · {filed}"
        )
        builder.button(text=case.number, callback_data=CaseCb(action="open", case_id=case.id))
    builder.adjust(2)
    return "\n".join(lines), builder.as_markup()
