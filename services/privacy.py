"""Personal data: where it lives, how a person's is erased, how old cases are anonymised, and
whether a queued notice may still go to its recipient.

Every place that can hold a person's data (keep this list in step with models/):

- residents: phone (and when it was verified), consent, last hromada/settlement;
- cases: description, contact phone, on-behalf name and relation, outcome (a worker's words
  about the person);
- case_events: `reason` (a rejection or cancellation reason, an outcome, a transfer note);
  `data` holds ids and codes only;
- case_messages: every text, the resident's and the team's replies alike;
- attachments: Telegram file ids, file names, MIME types;
- visits: who comes, what to prepare, the resident's note;
- document_requests: the worker's note;
- referrals: the subject (what the partner is asked), the decline reason, the outcome;
- case_ratings: the resident's comment (the 1–5 rating itself stays, anonymous with its case);
- mobile_office_bookings: the topic; mobile_office_subscriptions and application_subscriptions:
  the person's link to a settlement or an application;
- survey_invitations: the person's link to a survey, and through it the answers still being given;
  survey_responses of a survey that is not anonymous (finished anonymous ones lead to nobody);
- outbox: payloads hold plain values — excerpts, relayed messages, visit notes, reasons, team
  replies (services/outbox.py); the rows to the person and the rows about their cases;
- fsm_records (or Redis when REDIS_URL is set): half-filled forms (drafts).

What stays: the anonymous case record (number, status, service, hromada, team, routing, dates,
priority and vulnerability codes) for the statistics, and the workers' audit trail (case events
without free text, audit_log rows with ids and codes). Applications are the registry's copy,
re-imported by workers; the person's link to them (verified phone, subscriptions) goes.
Lookup attempts keep only a user id, a time and a hit flag (number-guessing control).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    ApplicationSubscription,
    Attachment,
    AuditEntry,
    Case,
    CaseEvent,
    CaseMessage,
    CaseRating,
    DocumentRequest,
    FsmRecord,
    InboundMessage,
    MobileOfficeBooking,
    MobileOfficeSubscription,
    OutboxMessage,
    Referral,
    Resident,
    Team,
    User,
    Visit,
    Worker,
)
from models.cases import CLOSED_STATUSES
from models.outbox import CANCELLED, PENDING
from services.clock import Clock
from services.reminders import reason_gone
from services.surveys import erase_survey_person

log = logging.getLogger(__name__)

ERASED = "—"
RETENTION_EVENT = "retention_erased"
RETENTION_BATCH = 500

# Payload values that say nothing about a person: numbers, ids, codes, dates, reference names.
# Any other value in a payload about an erased person is replaced (strings) or dropped to None,
# so a key added later is erased by default rather than kept by default.
SAFE_PAYLOAD_KEYS = frozenset(
    {
        "v",
        "case_id",
        "visit_id",
        "application_id",
        "request_id",
        "number",
        "status",
        "team",
        "priority",
        "starts_at",
        "ends_at",
        "proposed",
        "date",
        "due",
        "deadline",
        "time_from",
        "time_to",
        "slot",
        "place",
        "items",
        "next_step",
        "service",
        "settlement",
        "service_uk",
        "service_en",
        "hromada_uk",
        "hromada_en",
        "settlement_uk",
        "settlement_en",
        "referral_id",
        "partner_uk",
        "partner_en",
        "state",
        "files",
        "sent",
    }
)

# Why a queued notice was dropped at send time (logged with the row id, kept in last_error).
REASON_GONE = "reason_gone"
CASE_GONE = "case_gone"
CONSENT_GONE = "consent_gone"
ERASED_PERSON = "erased"
NOT_OWNER = "not_owner"
WORKER_INACTIVE = "worker_inactive"
NO_ACCESS = "no_access"
TEAM_CHANGED = "team_changed"

# SLA escalations to the hromada that delegated a service and to the oblast department.
OVERSIGHT_KINDS = frozenset({"sla_escalated"})

# Clears the person's form drafts in whatever FSM storage runs (the handler passes
# FSMContext.clear); the SQL table is cleared here in any case.
DraftEraser = Callable[[], Awaitable[None]]


def scrub_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with every value outside SAFE_PAYLOAD_KEYS erased (keys kept, so a notice
    still due renders with "—" instead of failing)."""
    cleaned: dict[str, Any] = {}
    for key, value in payload.items():
        if key in SAFE_PAYLOAD_KEYS or value is None or isinstance(value, bool | int | float):
            cleaned[key] = value
        elif isinstance(value, str):
            cleaned[key] = ERASED if value else ""
        else:
            cleaned[key] = None
    return cleaned


@dataclass(frozen=True)
class ErasureResult:
    cases: int
    outbox_cancelled: int
    outbox_scrubbed: int


class PrivacyService:
    def __init__(self, session: AsyncSession, clock: Clock | None = None) -> None:
        self.session = session
        self.clock = clock or Clock()

    # -- one person ----------------------------------------------------------------------------
    async def erase_person(self, user: User, *, clear_drafts: DraftEraser | None = None) -> ErasureResult:
        """Erase what identifies the person or what was written about them; cancel what is still
        queued for them. Cases stay as anonymous records. Idempotent."""
        at = self.clock.now()
        resident = await self.session.scalar(select(Resident).where(Resident.user_id == user.id))
        case_ids: list[int] = []
        if resident is not None:
            case_ids = list(
                (await self.session.scalars(select(Case.id).where(Case.resident_id == resident.id))).all()
            )
            resident.phone = None
            resident.phone_verified_at = None
            resident.consent_at = None
            resident.consent_version = None
            resident.last_hromada_id = None
            resident.last_settlement_id = None
            resident.erased_at = at
        cancelled = await self._cancel_to(user.id)
        scrubbed = await self.erase_cases(case_ids)
        scrubbed += await self._scrub_outbox(OutboxMessage.user_id == user.id)
        await self.session.execute(
            update(MobileOfficeBooking).where(MobileOfficeBooking.user_id == user.id).values(topic="")
        )
        await self.session.execute(
            delete(ApplicationSubscription).where(ApplicationSubscription.user_id == user.id)
        )
        await self.session.execute(
            delete(MobileOfficeSubscription).where(MobileOfficeSubscription.user_id == user.id)
        )
        await erase_survey_person(self.session, user.id)
        # Messages kept for a choice of case or for a new request.
        await self.session.execute(delete(InboundMessage).where(InboundMessage.user_id == user.id))
        # SQL storage keys are "bot:chat:user[:thread]:destiny"; Redis keys are cleared by the hook.
        await self.session.execute(delete(FsmRecord).where(FsmRecord.key.like(f"%:{user.telegram_id}:%")))
        if clear_drafts is not None:
            await clear_drafts()
        self.session.add(
            AuditEntry(
                at=at,
                actor_user_id=user.id,
                action="personal_data_erased",
                object_type="user",
                object_id=str(user.id),
                data={"cases": len(case_ids), "outbox_cancelled": cancelled},
            )
        )
        log.info("personal data erased: user %s, %d case(s)", user.id, len(case_ids))
        return ErasureResult(len(case_ids), cancelled, scrubbed)

    # -- cases (the person's, or old ones) ----------------------------------------------------
    async def erase_cases(self, case_ids: Sequence[int]) -> int:
        """Remove the free text and files of these cases wherever they are copied; keep the
        anonymous record and the audit trail. Returns how many outbox rows were scrubbed."""
        if not case_ids:
            return 0
        ids = list(case_ids)
        await self.session.execute(
            update(Case)
            .where(Case.id.in_(ids))
            .values(description=ERASED, contact_phone=None, on_behalf_name=None, on_behalf_relation=None)
        )
        await self.session.execute(
            update(Case).where(Case.id.in_(ids), Case.outcome.is_not(None)).values(outcome=ERASED)
        )
        await self.session.execute(
            update(CaseEvent)
            .where(CaseEvent.case_id.in_(ids), CaseEvent.reason.is_not(None))
            .values(reason=ERASED)
        )
        await self.session.execute(
            update(CaseMessage).where(CaseMessage.case_id.in_(ids)).values(text=ERASED)
        )
        await self.session.execute(delete(Attachment).where(Attachment.case_id.in_(ids)))
        # What the resident sent outside a form, kept until it was routed to these cases.
        await self.session.execute(delete(InboundMessage).where(InboundMessage.case_id.in_(ids)))
        await self.session.execute(
            update(Visit)
            .where(Visit.case_id.in_(ids))
            .values(who_comes=ERASED, prepare=ERASED, resident_note=None)
        )
        await self.session.execute(
            update(DocumentRequest).where(DocumentRequest.case_id.in_(ids)).values(note=None)
        )
        await self.session.execute(
            update(Referral)
            .where(Referral.case_id.in_(ids))
            .values(subject=ERASED, reason=None, outcome=None, attachment_ids=[])
        )
        await self.session.execute(
            update(CaseRating)
            .where(CaseRating.case_id.in_(ids), CaseRating.comment.is_not(None))
            .values(comment=None)
        )
        # Rows to workers about these cases: scrubbed, and still sent if due (they render "—").
        return await self._scrub_outbox(OutboxMessage.case_id.in_(ids))

    async def _cancel_to(self, user_id: int) -> int:
        rows = (
            await self.session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.user_id == user_id, OutboxMessage.state == PENDING
                )
            )
        ).all()
        if rows:
            await self.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(list(rows)))
                .values(state=CANCELLED, last_error=f"dropped: {ERASED_PERSON}")
            )
        return len(rows)

    async def _scrub_outbox(self, condition: Any) -> int:
        rows = (await self.session.scalars(select(OutboxMessage).where(condition))).all()
        changed = 0
        for row in rows:
            cleaned = scrub_payload(row.payload or {})
            if cleaned != row.payload:
                row.payload = cleaned
                changed += 1
        return changed

    # -- retention -----------------------------------------------------------------------------
    async def apply_retention(self, now: datetime, days: int, batch: int = RETENTION_BATCH) -> int:
        """Erase the personal data of cases closed more than `days` ago (a batch per run; the
        daily job catches up). Each case gets a `retention_erased` event (no personal data), so
        a case is done once. Returns how many cases were anonymised."""
        cutoff = now - timedelta(days=days)
        done = select(CaseEvent.id).where(CaseEvent.case_id == Case.id, CaseEvent.kind == RETENTION_EVENT)
        case_ids = list(
            (
                await self.session.scalars(
                    select(Case.id)
                    .where(Case.status.in_(CLOSED_STATUSES), Case.closed_at < cutoff, ~done.exists())
                    .order_by(Case.closed_at, Case.id)
                    .limit(batch)
                )
            ).all()
        )
        if not case_ids:
            return 0
        await self.erase_cases(case_ids)
        await cancel_pending_for(self.session, case_ids)
        for case_id in case_ids:
            self.session.add(
                CaseEvent(
                    case_id=case_id, at=now, actor_user_id=None, kind=RETENTION_EVENT, data={"days": days}
                )
            )
        await self.session.flush()
        log.info("retention: %d case(s) closed before %s anonymised", len(case_ids), cutoff.date())
        return len(case_ids)


async def cancel_pending_for(session: AsyncSession, case_ids: Sequence[int]) -> int:
    """Cancel what is still queued about these cases (e.g. a renewal reminder)."""
    rows = (
        await session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.case_id.in_(list(case_ids)), OutboxMessage.state == PENDING
            )
        )
    ).all()
    if rows:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(list(rows))).values(state=CANCELLED)
        )
    return len(rows)


# -- send-time check -------------------------------------------------------------------------------
async def drop_reason(session: AsyncSession, message: OutboxMessage) -> str | None:
    """Why this queued message must not go out now (a reason code), or None to send it.

    Asked by the deliverer just before sending, whatever was true when the row was queued: the
    reminder's reason still holds; a person who erased their data or withdrew consent gets
    nothing more about their cases; a worker gets a case's notice only while active and allowed
    to see that case; a case's resident notice goes only to the case's resident; a team's group
    chat only hears of cases still in that team.
    """
    if await reason_gone(session, message):
        return REASON_GONE
    case = await session.get(Case, message.case_id) if message.case_id is not None else None
    if message.case_id is not None and case is None:
        return CASE_GONE
    if message.kind.startswith("referral_"):
        from services.referrals import (
            PARTNER_NOTICE_KINDS,
            STEP_NOTICE_KINDS,
            partner_may_receive,
            step_answered,
        )

        if message.kind in STEP_NOTICE_KINDS and await step_answered(session, message):
            return REASON_GONE
        if message.kind in PARTNER_NOTICE_KINDS:
            # The partner is not in the case's team: what it may get is the referral only.
            return None if await partner_may_receive(session, message) else NO_ACCESS
    if message.user_id is None:
        if case is None:
            return None
        group = await session.scalar(select(Team.group_chat_id).where(Team.id == case.team_id))
        return None if group == message.chat_id else TEAM_CHANGED
    resident = await session.scalar(select(Resident).where(Resident.user_id == message.user_id))
    if case is not None:
        if resident is not None and case.resident_id == resident.id:
            if resident.erased_at is not None or resident.consent_at is None:
                return CONSENT_GONE
            return None
        if message.kind in OVERSIGHT_KINDS:
            # Up the chain, to people outside the case's team: the payload is its number and due
            # time only (no personal data), so an active worker may get it.
            active = await session.scalar(select(Worker.active).where(Worker.user_id == message.user_id))
            return None if active else WORKER_INACTIVE
        return await _worker_may_see(session, message.user_id, case)
    if resident is not None and resident.erased_at is not None and message.created_at <= resident.erased_at:
        return ERASED_PERSON
    if message.announcement_id is not None and (
        resident is None or resident.erased_at is not None or resident.consent_at is None
    ):
        # An announcement goes to residents who consented, as they are when it leaves.
        return CONSENT_GONE
    if message.kind in ("visit_agenda", "sla_digest"):
        active = await session.scalar(select(Worker.active).where(Worker.user_id == message.user_id))
        return None if active else WORKER_INACTIVE
    return None


async def _worker_may_see(session: AsyncSession, user_id: int, case: Case) -> str | None:
    from services.case_actions import CaseActions

    worker = await session.scalar(select(Worker).where(Worker.user_id == user_id))
    if worker is None:
        return NOT_OWNER
    if not worker.active:
        return WORKER_INACTIVE
    access = await CaseActions(session, Clock()).access(worker, case)
    return None if access.can_act else NO_ACCESS
