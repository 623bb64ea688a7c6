"""Case card and actions (issue 3): take, change status (with a reason where it matters),
request documents, write to the resident, schedule a visit (hand-off), transfer, assign, files.

Every press re-loads the case through `CaseActions`, which checks the presser's rights; a
forged or stale button gets a polite alert and changes nothing."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Filter, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n, get_i18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import (
    AssignCb,
    CaseCb,
    DocPickCb,
    DocsReceivedCb,
    QueueCb,
    StatusCb,
    TransferCb,
    VisitNewCb,
)
from handlers.kit.filters import prune_callbacks
from handlers.kit.render import routing_reason as shared_routing_reason
from handlers.worker.queues import current_worker, priority_mark
from infra.settings import Settings
from models import Case, DocumentRequest, Team, TeamMember, User, Worker
from models.cases import CLOSED_STATUSES, WAITING_DOCUMENTS
from services.case_actions import REASON_REQUIRED, TRANSITIONS, Access, CaseActions, CaseError, clean_text
from services.clock import Clock
from services.documents import DocumentError, DocumentService
from services.queues import CaseCard, QueueService

TEXT_MAX = 2000
REASON_MAX = 500
DOC_DEADLINE_DAYS = (3, 7, 14)


class CaseForm(StatesGroup):
    reason = State()  # data: case_id, to_status
    write = State()  # data: case_id
    transfer_note = State()  # data: case_id, team_id


class NotCommand(Filter):
    """Lets /cancel and other commands through a text step to their own handlers."""

    async def __call__(self, message: Message) -> bool:
        return not (message.text or "").startswith("/")


class PlainText(Filter):
    """A text message that is not a command (async: stays off the thread pool)."""

    async def __call__(self, message: Message) -> bool:
        return bool(message.text) and not message.text.startswith("/")  # type: ignore[union-attr]


def case_actions(session: AsyncSession, clock: Clock, i18n: I18n) -> CaseActions:
    return CaseActions(session, clock)


# -- rendering -------------------------------------------------------------------------------


def _local(at: datetime, settings: Settings) -> str:
    return at.astimezone(settings.locale.tz).strftime("%d.%m %H:%M")


def routing_reason(case: Case, locale: str) -> str:
    if not (case.routing_detail or {}).get("team"):
        return html.escape(case.team.name(locale)) if case.team else ""
    return shared_routing_reason(case, locale, get_i18n())


def _event_line(event: Any, settings: Settings) -> str:
    when = _local(event.at, settings)
    if event.kind == "status":
        before = _("case.status." + (event.from_status or "new"))
        text = f"{before} → {_('case.status.' + (event.to_status or 'new'))}"
    elif event.kind in ("created", "assigned", "transferred"):
        text = _(f"worker.event.{event.kind}")
    else:
        text = html.escape(event.kind)
    if event.reason:
        text += f" — {html.escape(event.reason[:200])}"
    return f"• {when} {text}"


def render_card(
    case: Case,
    access: Access,
    card: CaseCard,
    locale: str,
    settings: Settings,
    *,
    private: bool,
    open_requests: Sequence[DocumentRequest] = (),
) -> tuple[str, InlineKeyboardMarkup]:
    lines = [
        _("worker.card.title") % {"number": case.number, "service": html.escape(case.service.name(locale))},
        _("worker.card.status") % {"status": _("case.status." + case.status)},
        _("worker.card.priority") % {"priority": f"{priority_mark(case.priority)} {case.priority}"},
    ]
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
            lines.append(_("worker.card.description") % {"text": html.escape(case.description[:1500])})
    user = case.resident.user if case.resident else None
    if user is not None and not user.reachable:
        lines.append(_("worker.card.unreachable"))
    if case.outcome:
        lines.append(_("worker.card.outcome") % {"text": html.escape(case.outcome)})
    if card.events:
        lines.append("")
        lines.append(_("worker.card.history"))
        lines.extend(_event_line(e, settings) for e in card.events)
    if card.messages and (access.member or not private):
        lines.append("")
        lines.append(_("worker.card.messages"))
        for m in card.messages:
            who = _("worker.card.from_resident") if m.from_resident else _("worker.card.from_team")
            lines.append(f"• {_local(m.at, settings)} {who}: {html.escape(m.text[:300])}")
    if card.attachments_count:
        lines.append(_("worker.card.attachments") % {"n": card.attachments_count})
    return "\n".join(lines), card_markup(case, access, card, open_requests, settings)


def card_markup(
    case: Case,
    access: Access,
    card: CaseCard,
    open_requests: Sequence[DocumentRequest] = (),
    settings: Settings | None = None,
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    sizes: list[int] = []
    if access.member:
        # One "received" button per open document request: stops its reminders.
        for request in open_requests:
            when = request.created_at.astimezone(settings.locale.tz) if settings else request.created_at
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
    if card.attachments_count:
        builder.button(text=_("worker.btn.files"), callback_data=CaseCb(action="files", case_id=case.id))
        sizes.append(1)
    builder.button(text=_("worker.btn.panel"), callback_data=QueueCb(scope="panel"))
    sizes.append(1)
    builder.adjust(*sizes)
    return builder.as_markup()


async def build_card(
    session: AsyncSession, worker: Worker, case_id: int, clock: Clock, i18n: I18n, settings: Settings
) -> tuple[str, InlineKeyboardMarkup]:
    """The card's text and buttons (raises NotFound if the worker may not see the case)."""
    case, access = await case_actions(session, clock, i18n).worker_case_access(worker, case_id)
    card = await QueueService(session, clock).card(case)
    open_requests = await DocumentService(session, clock).open_requests(case.id) if access.member else []
    return render_card(
        case, access, card, i18n.current_locale, settings, private=True, open_requests=open_requests
    )


async def send_card(
    target: Message, session: AsyncSession, worker: Worker, text: str, markup: InlineKeyboardMarkup
) -> None:
    """As a new message. Pressed in a group chat, the card goes to the worker's private chat:
    personal data never appears in a group."""
    if target.chat.type == "private":
        await target.answer(text, reply_markup=markup)
        return
    worker_user = await session.get(User, worker.user_id)
    if worker_user is not None and target.bot is not None:
        await target.bot.send_message(worker_user.telegram_id, text, reply_markup=markup)


async def show_card(
    target: Message,
    session: AsyncSession,
    worker: Worker,
    case_id: int,
    clock: Clock,
    i18n: I18n,
    settings: Settings,
) -> None:
    text, markup = await build_card(session, worker, case_id, clock, i18n, settings)
    await send_card(target, session, worker, text, markup)


async def _refuse(query: CallbackQuery, exc: CaseError) -> None:
    key = f"case.error.{exc.code}"
    text = _(key)
    await query.answer(text if text != key else _("errors.stale_button"), show_alert=True)


async def _worker_or_refuse(query: CallbackQuery, session: AsyncSession, user: User) -> Worker | None:
    worker = await current_worker(session, user)
    if worker is None:
        await query.answer(_("errors.stale_button"), show_alert=True)
    return worker


# -- card and simple actions ------------------------------------------------------------------


async def on_case(
    query: CallbackQuery,
    callback_data: CaseCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
    settings: Settings,
    bot: Bot,
) -> None:
    worker = await _worker_or_refuse(query, session, user)
    if worker is None:
        return
    handler = _ACTIONS.get(callback_data.action)
    if handler is None:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    actions = case_actions(session, clock, i18n)
    try:
        await handler(
            query=query,
            case_id=callback_data.case_id,
            worker=worker,
            actions=actions,
            state=state,
            session=session,
            clock=clock,
            i18n=i18n,
            settings=settings,
            bot=bot,
        )
    except CaseError as exc:
        await _refuse(query, exc)


async def _open(
    query: CallbackQuery, case_id: int, worker: Worker, session, clock, i18n, settings, **rest: Any
) -> None:
    text, markup = await build_card(session, worker, case_id, clock, i18n, settings)  # rights first
    await query.answer()
    if query.message is not None:
        await send_card(query.message, session, worker, text, markup)  # type: ignore[arg-type]


async def _take(
    query: CallbackQuery,
    case_id: int,
    worker: Worker,
    actions: CaseActions,
    session,
    clock,
    i18n,
    settings,
    **rest: Any,
) -> None:
    await actions.take(case_id, worker)
    await query.answer(_("worker.taken"))
    if query.message is not None:
        await show_card(query.message, session, worker, case_id, clock, i18n, settings)  # type: ignore[arg-type]


async def _status_menu(
    query: CallbackQuery, case_id: int, worker: Worker, actions: CaseActions, **rest: Any
) -> None:
    case = await actions.worker_case(worker, case_id, refs=False)
    options = sorted(TRANSITIONS[case.status])
    if not options:
        raise CaseError("closed")
    builder = InlineKeyboardBuilder()
    for status in options:
        builder.button(text=_(f"case.status.{status}"), callback_data=StatusCb(case_id=case.id, to=status))
    builder.adjust(2)
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            f"<b>{case.number}</b>\n" + _("worker.status.choose"), reply_markup=builder.as_markup()
        )


async def _write(
    query: CallbackQuery, case_id: int, worker: Worker, actions: CaseActions, state: FSMContext, **rest: Any
) -> None:
    case, access = await actions.worker_case_access(worker, case_id)
    if not access.member:
        raise CaseError("not_team_member")
    if case.status in CLOSED_STATUSES:
        raise CaseError("closed")
    await state.set_state(CaseForm.write)
    await state.update_data(case_id=case.id)
    await query.answer()
    if query.message is not None:
        await query.message.answer(f"<b>{case.number}</b>\n" + _("worker.write.ask"))


async def _transfer_menu(
    query: CallbackQuery,
    case_id: int,
    worker: Worker,
    actions: CaseActions,
    session: AsyncSession,
    i18n: I18n,
    **rest: Any,
) -> None:
    case = await actions.worker_case(worker, case_id)
    if case.status in CLOSED_STATUSES:
        raise CaseError("closed")
    teams = await transfer_targets(session, case)
    if not teams:
        await query.answer(_("worker.transfer.none"), show_alert=True)
        return
    builder = InlineKeyboardBuilder()
    for team in teams:
        builder.button(
            text=team.name(i18n.current_locale), callback_data=TransferCb(case_id=case.id, team_id=team.id)
        )
    builder.adjust(1)
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            f"<b>{case.number}</b>\n" + _("worker.transfer.choose"), reply_markup=builder.as_markup()
        )


async def transfer_targets(session: AsyncSession, case: Case) -> list[Team]:
    """Teams of the case's oblast (hromada teams and the oblast department), except its own."""
    oblast = case.hromada.oblast
    rows = await session.scalars(
        select(Team)
        .where(Team.oblast == oblast, Team.id != case.team_id)
        .order_by(Team.is_oblast_fallback, Team.name_uk)
    )
    return list(rows.all())


async def _assign_menu(
    query: CallbackQuery,
    case_id: int,
    worker: Worker,
    actions: CaseActions,
    session: AsyncSession,
    **rest: Any,
) -> None:
    case, access = await actions.worker_case_access(worker, case_id)
    if not access.coordinator:
        raise CaseError("not_coordinator")
    members = (
        await session.scalars(
            select(Worker)
            .join(TeamMember, TeamMember.worker_id == Worker.id)
            .where(TeamMember.team_id == case.team_id, Worker.active.is_(True))
            .order_by(Worker.display_name, Worker.id)
        )
    ).all()
    if not members:
        await query.answer(_("worker.assign.none"), show_alert=True)
        return
    builder = InlineKeyboardBuilder()
    for member in members:
        builder.button(text=member.display_name, callback_data=AssignCb(case_id=case.id, worker_id=member.id))
    builder.adjust(1)
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            f"<b>{case.number}</b>\n" + _("worker.assign.choose"), reply_markup=builder.as_markup()
        )


async def _files(
    query: CallbackQuery, case_id: int, worker: Worker, actions: CaseActions, bot: Bot, **rest: Any
) -> None:
    case = await actions.worker_case(worker, case_id, refs=False)
    files = await actions.attachments(case.id)
    if not files:
        await query.answer(_("worker.files.none"), show_alert=True)
        return
    await query.answer()
    chat_id = query.from_user.id  # files go to the worker's private chat only
    for item in files:
        if item.kind == "photo":
            await bot.send_photo(chat_id, item.file_id, caption=case.number)
        else:
            await bot.send_document(chat_id, item.file_id, caption=case.number)


async def _docs_start(
    query: CallbackQuery,
    case_id: int,
    worker: Worker,
    actions: CaseActions,
    session,
    clock,
    state: FSMContext,
    **rest: Any,
) -> None:
    case, access = await actions.worker_case_access(worker, case_id)
    if not access.member:
        raise CaseError("not_team_member")
    if case.status in CLOSED_STATUSES:
        raise CaseError("closed")
    checklist = await DocumentService(session, clock).checklist(case.service_id)
    if not checklist:
        await query.answer(_("worker.docs.no_checklist"), show_alert=True)
        return
    await state.update_data(**{f"docs_{case.id}": []})
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            f"<b>{case.number}</b>\n" + _("worker.docs.choose"),
            reply_markup=_docs_markup(case.id, checklist, []),
        )


def _docs_markup(case_id: int, checklist: list[Any], chosen: list[str]) -> InlineKeyboardMarkup:
    locale = get_i18n().current_locale
    builder = InlineKeyboardBuilder()
    for item in checklist:
        mark = "✅ " if item.code in chosen else "▫️ "
        builder.button(
            text=mark + item.name(locale), callback_data=DocPickCb(case_id=case_id, item=item.code)
        )
    builder.button(text=_("worker.btn.done"), callback_data=DocPickCb(case_id=case_id, item="@done"))
    builder.adjust(1)
    return builder.as_markup()


_ACTIONS = {
    "open": _open,
    "take": _take,
    "status": _status_menu,
    "write": _write,
    "transfer": _transfer_menu,
    "assign": _assign_menu,
    "files": _files,
    "docs": _docs_start,
}


# -- callbacks with their own data -----------------------------------------------------------


async def on_status(
    query: CallbackQuery,
    callback_data: StatusCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
    settings: Settings,
) -> None:
    worker = await _worker_or_refuse(query, session, user)
    if worker is None:
        return
    actions = case_actions(session, clock, i18n)
    try:
        case = await actions.worker_case(worker, callback_data.case_id, refs=False)
        if callback_data.to not in TRANSITIONS.get(case.status, ()) and callback_data.to != case.status:
            raise CaseError("closed" if case.status in CLOSED_STATUSES else "invalid_transition")
        if callback_data.to in REASON_REQUIRED or callback_data.to in CLOSED_STATUSES:
            await state.set_state(CaseForm.reason)
            await state.update_data(case_id=case.id, to_status=callback_data.to)
            await query.answer()
            key = (
                "worker.status.ask_outcome"
                if callback_data.to not in REASON_REQUIRED
                else "worker.status.ask_reason"
            )
            if query.message is not None:
                await query.message.answer(f"<b>{case.number}</b>\n" + _(key))
            return
        before = case.status
        await actions.change_status(case.id, worker, callback_data.to)
    except CaseError as exc:
        await _refuse(query, exc)
        return
    await query.answer(
        _("worker.status.same")
        if before == callback_data.to
        else _("worker.status.changed") % {"status": _("case.status." + callback_data.to)}
    )
    if query.message is not None:
        await show_card(query.message, session, worker, case.id, clock, i18n, settings)  # type: ignore[arg-type]


async def on_transfer(
    query: CallbackQuery,
    callback_data: TransferCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
) -> None:
    worker = await _worker_or_refuse(query, session, user)
    if worker is None:
        return
    try:
        case = await case_actions(session, clock, i18n).worker_case(worker, callback_data.case_id)
    except CaseError as exc:
        await _refuse(query, exc)
        return
    if callback_data.team_id not in {t.id for t in await transfer_targets(session, case)}:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    await state.set_state(CaseForm.transfer_note)
    await state.update_data(case_id=case.id, team_id=callback_data.team_id)
    await query.answer()
    if query.message is not None:
        await query.message.answer(f"<b>{case.number}</b>\n" + _("worker.transfer.ask_note"))


async def on_assign(
    query: CallbackQuery,
    callback_data: AssignCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
    settings: Settings,
) -> None:
    worker = await _worker_or_refuse(query, session, user)
    if worker is None:
        return
    try:
        case = await case_actions(session, clock, i18n).assign(
            callback_data.case_id, worker, callback_data.worker_id
        )
    except CaseError as exc:
        await _refuse(query, exc)
        return
    assignee = await session.get(Worker, callback_data.worker_id)
    await query.answer(_("worker.assign.done") % {"name": assignee.display_name if assignee else ""})
    if query.message is not None:
        await show_card(query.message, session, worker, case.id, clock, i18n, settings)  # type: ignore[arg-type]


async def on_doc_pick(
    query: CallbackQuery,
    callback_data: DocPickCb,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
    settings: Settings,
) -> None:
    worker = await _worker_or_refuse(query, session, user)
    if worker is None:
        return
    actions = case_actions(session, clock, i18n)
    try:
        case, access = await actions.worker_case_access(worker, callback_data.case_id)
        if not access.member:
            raise CaseError("not_team_member")
        if case.status in CLOSED_STATUSES:
            raise CaseError("closed")
    except CaseError as exc:
        await _refuse(query, exc)
        return
    documents = DocumentService(session, clock)
    checklist = await documents.checklist(case.service_id)
    key = f"docs_{case.id}"
    chosen: list[str] = list((await state.get_data()).get(key) or [])
    if callback_data.days:
        if callback_data.days not in DOC_DEADLINE_DAYS or not chosen:
            await query.answer(
                _("worker.docs.none_chosen") if not chosen else _("errors.stale_button"), show_alert=True
            )
            return
        local_now = clock.now().astimezone(settings.locale.tz)
        deadline = (local_now + timedelta(days=callback_data.days)).replace(
            hour=18, minute=0, second=0, microsecond=0
        )
        # Forget the selection first: a double tap then finds nothing to send (and the FSM
        # storage must write before this update's transaction does, for SQLite).
        await state.update_data(**{key: []})
        try:
            await documents.request(case, worker, chosen, deadline, None)
            if case.status != WAITING_DOCUMENTS and WAITING_DOCUMENTS in TRANSITIONS[case.status]:
                await actions.change_status(case.id, worker, WAITING_DOCUMENTS)
        except DocumentError as exc:
            await query.answer(
                _(f"docs.error.{exc.code}") if False else _("case.error.error"), show_alert=True
            )
            return
        await query.answer(_("worker.docs.sent"))
        if query.message is not None:
            await query.message.edit_reply_markup(reply_markup=None)  # type: ignore[union-attr]
            await show_card(query.message, session, worker, case.id, clock, i18n, settings)  # type: ignore[arg-type]
        return
    if callback_data.item == "@done":
        if not chosen:
            await query.answer(_("worker.docs.none_chosen"), show_alert=True)
            return
        builder = InlineKeyboardBuilder()
        for days in DOC_DEADLINE_DAYS:
            builder.button(
                text=_("worker.docs.days", "worker.docs.days", days) % {"n": days},
                callback_data=DocPickCb(case_id=case.id, days=days),
            )
        builder.adjust(3)
        await query.answer()
        if query.message is not None:
            await query.message.edit_text(  # type: ignore[union-attr]
                f"<b>{case.number}</b>\n" + _("worker.docs.deadline"), reply_markup=builder.as_markup()
            )
        return
    if callback_data.item not in {d.code for d in checklist}:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    if callback_data.item in chosen:
        chosen.remove(callback_data.item)
    else:
        chosen.append(callback_data.item)
    await state.update_data(**{key: chosen})
    await query.answer()
    if query.message is not None:
        await query.message.edit_reply_markup(reply_markup=_docs_markup(case.id, checklist, chosen))  # type: ignore[union-attr]


# -- text steps ------------------------------------------------------------------------------


def _valid_text(message: Message, limit: int) -> str | None:
    text = clean_text(message.text)
    return text if text and len(text) <= limit else None


async def text_required(message: Message) -> None:
    """A sticker, photo or voice in a text step: say so, keep the step."""
    await message.answer(_("worker.text_only"))


async def _text_step(
    message: Message, state: FSMContext, session: AsyncSession, user: User, limit: int, empty_key: str
) -> tuple[str, dict[str, Any], Worker] | None:
    """The start of every typed step: a valid text (else a polite answer, the step kept), the
    step's data, the step left, and the acting worker. None when the user was told why not."""
    text = _valid_text(message, limit)
    if text is None:
        await message.answer(_("case.error.text_too_long") if clean_text(message.text) else _(empty_key))
        return None
    data = await state.get_data()
    await state.set_state(None)  # even if the action is refused below, the step is over
    worker = await current_worker(session, user)
    if worker is None:
        await message.answer(_("worker.not_worker"))
        return None
    return text, data, worker


async def reason_step(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
    settings: Settings,
) -> None:
    step = await _text_step(message, state, session, user, REASON_MAX, "case.error.empty_text")
    if step is None:
        return
    text, data, worker = step
    actions = case_actions(session, clock, i18n)
    to_status = str(data.get("to_status"))
    try:
        if to_status in CLOSED_STATUSES:
            await actions.close(int(data["case_id"]), worker, to_status, text)
        else:
            await actions.change_status(int(data["case_id"]), worker, to_status, text)
    except CaseError as exc:
        await message.answer(_(f"case.error.{exc.code}"))
        return
    await message.answer(_("worker.status.changed") % {"status": _("case.status." + to_status)})
    await show_card(message, session, worker, int(data["case_id"]), clock, i18n, settings)


async def write_step(
    message: Message, state: FSMContext, session: AsyncSession, user: User, clock: Clock, i18n: I18n
) -> None:
    step = await _text_step(message, state, session, user, TEXT_MAX, "case.error.empty_text")
    if step is None:
        return
    text, data, worker = step
    try:
        await case_actions(session, clock, i18n).relay_to_resident(int(data["case_id"]), worker, text)
    except CaseError as exc:
        await message.answer(_(f"case.error.{exc.code}"))
        return
    await message.answer(_("worker.write.sent"))


async def transfer_step(
    message: Message, state: FSMContext, session: AsyncSession, user: User, clock: Clock, i18n: I18n
) -> None:
    step = await _text_step(message, state, session, user, REASON_MAX, "case.error.note_required")
    if step is None:
        return
    text, data, worker = step
    try:
        case = await case_actions(session, clock, i18n).transfer(
            int(data["case_id"]), worker, int(data["team_id"]), text
        )
    except CaseError as exc:
        await message.answer(_(f"case.error.{exc.code}"))
        return
    team = await session.get(Team, case.team_id)
    await message.answer(
        _("worker.transfer.done") % {"team": html.escape(team.name(i18n.current_locale)) if team else ""}
    )


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, CaseCb, StatusCb, TransferCb, AssignCb, DocPickCb)
    router.callback_query.register(on_case, CaseCb.filter())
    router.callback_query.register(on_status, StatusCb.filter())
    router.callback_query.register(on_transfer, TransferCb.filter())
    router.callback_query.register(on_assign, AssignCb.filter())
    router.callback_query.register(on_doc_pick, DocPickCb.filter())
    router.message.register(reason_step, StateFilter(CaseForm.reason), PlainText())
    router.message.register(write_step, StateFilter(CaseForm.write), PlainText())
    router.message.register(transfer_step, StateFilter(CaseForm.transfer_note), PlainText())
    router.message.register(
        text_required, StateFilter(CaseForm.reason, CaseForm.write, CaseForm.transfer_note), NotCommand()
    )
    return router
