"""Referrals of a part of a case to a partner agency, their answers, reminders and escalation.

A member of the case's team refers a part of the case — a short subject in their own words and
the case files they choose, the resident's phone only if they tick it — to a partner agency
from the reference data. An in-bot partner's team members answer with buttons (accept, decline
with a reason, report an outcome); for an external partner the referring team records the
answer. Every change is a `CaseEvent` and a notice to the other side and to the resident.

Access: a partner member sees the referral (subject, service, settlement, the chosen files, the
contact if shared) and nothing else of the case; case screens refuse them like a missing case
(services/case_actions.py). Every partner action re-checks membership of the partner team.

An unanswered referral is reminded (to the partner team, or for an external partner to the
referring team, who calls them) at `due_at` and told to the referring team's coordinators at
`escalate_at`: `plan_referral_steps`, run by the scheduler, does each step once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import (
    Attachment,
    Case,
    CaseEvent,
    OutboxMessage,
    PartnerAgency,
    Referral,
    Service,
    Settlement,
    TeamMember,
    User,
    Worker,
)
from models.cases import CLOSED_STATUSES
from models.people import ROLE_COORDINATOR
from models.referrals import (
    ACCEPTED,
    CLOSED,
    DECLINED,
    IN_BOT,
    OPEN_REFERRAL_STATES,
    OUTCOME,
    REFERRAL_TRANSITIONS,
    SENT,
)
from services.calendar import load_calendar
from services.case_actions import CaseActions, NotFound
from services.clock import Clock
from services.errors import DomainError, StaleAction
from services.outbox import enqueue
from services.reminders import default_zone
from services.text import clean, has_words

MAX_SUBJECT = 500
MAX_ANSWER = 1000
# When a partner (in the YAML) names no hours of its own.
DEFAULT_REMIND_HOURS = 8
DEFAULT_ESCALATE_HOURS = 24
SWEEP_BATCH = 200

ROLE_PARTNER = "partner"
ROLE_REFERRER = "referrer"

# Notices to the partner team (checked at send time against its membership, not the case's).
PARTNER_NOTICE_KINDS = frozenset({"referral_new", "referral_file", "referral_reminder", "referral_closed"})
# Reminder steps: dropped at send time once the referral was answered.
STEP_NOTICE_KINDS = frozenset({"referral_reminder", "referral_chase", "referral_escalated"})


class ReferralError(DomainError):
    """A refused referral action (`referral.error.<code>`)."""

    prefix = "referral.error"
    code = "error"


async def referral_due_at(
    session: AsyncSession, partner: PartnerAgency, now: datetime, hours: int
) -> datetime:
    """When an answer is due: `hours` working hours after `now` on the partner team's calendar
    (an external agency keeps the default office week, holidays and exceptions)."""
    calendar = await load_calendar(session, partner.team_id, default_zone())
    return calendar.add_working(now, timedelta(hours=hours))


@dataclass(frozen=True)
class PartnerChoice:
    partner: PartnerAgency
    serves: bool  # serves this case's hromada and service


@dataclass(frozen=True)
class PartnerView:
    """What the partner may see: the referral and these few facts of the case, nothing more."""

    referral: Referral
    number: str
    service_uk: str
    service_en: str
    settlement_uk: str
    settlement_en: str
    hromada_uk: str
    hromada_en: str
    contact_phone: str | None
    attachments: list[Attachment]

    def service(self, locale: str) -> str:
        return self.service_en if locale == "en" else self.service_uk

    def place(self, locale: str) -> str:
        hromada = self.hromada_en if locale == "en" else self.hromada_uk
        settlement = self.settlement_en if locale == "en" else self.settlement_uk
        return f"{settlement}, {hromada}" if settlement else hromada


@dataclass(frozen=True)
class IncomingReferral:
    """One line of a partner team's list: only what the partner may see of the case."""

    referral_id: int
    number: str
    service_uk: str
    service_en: str
    state: str
    due_at: datetime
    overdue: bool

    def service(self, locale: str) -> str:
        return self.service_en if locale == "en" else self.service_uk


INCOMING_LIMIT = 30


def _partner_names(partner: PartnerAgency) -> dict[str, str]:
    return {"partner_uk": partner.name_uk, "partner_en": partner.name_en}


class ReferralService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self.cases = CaseActions(session, clock)

    # -- choosing a partner ------------------------------------------------------------------
    async def partner_choices(self, worker: Worker, case_id: int) -> tuple[Case, list[PartnerChoice]]:
        """Partners of the case's oblast (never the case's own team): those serving its hromada
        and service first, the others after. Only a member of the case's team, open case."""
        case = await self.cases.member_open_case(worker, case_id)
        rows = await self.session.scalars(
            select(PartnerAgency).where(
                PartnerAgency.active.is_(True), PartnerAgency.oblast == case.hromada.oblast
            )
        )
        choices = [
            PartnerChoice(
                p,
                (not p.hromadas or case.hromada.code in p.hromadas)
                and (not p.services or case.service.code in p.services),
            )
            for p in rows.all()
            if p.team_id is None or p.team_id != case.team_id
        ]
        choices.sort(key=lambda c: (not c.serves, c.partner.name_uk, c.partner.id))
        return case, choices

    async def choose_partner(
        self, worker: Worker, case_id: int, partner_id: int
    ) -> tuple[Case, PartnerAgency]:
        case, choices = await self.partner_choices(worker, case_id)
        found = next((c.partner for c in choices if c.partner.id == partner_id), None)
        if found is None:
            raise StaleAction()
        return case, found

    @staticmethod
    def check_subject(text: str | None) -> str:
        """What is asked of the partner: words, at most MAX_SUBJECT characters."""
        subject = clean(text, MAX_SUBJECT, multiline=True, error=ReferralError, code="too_long")
        if not has_words(subject):
            raise ReferralError("subject_required")
        return subject

    @staticmethod
    def check_answer(text: str | None, code: str) -> str:
        answer = clean(text, MAX_ANSWER, multiline=True, error=ReferralError, code="too_long")
        if not has_words(answer):
            raise ReferralError(code)
        return answer

    # -- sending -----------------------------------------------------------------------------
    async def create(
        self,
        worker: Worker,
        case_id: int,
        partner_id: int,
        subject: str,
        attachment_ids: Sequence[int] = (),
        *,
        share_contact: bool = False,
    ) -> Referral:
        case, partner = await self.choose_partner(worker, case_id, partner_id)
        subject = self.check_subject(subject)
        files = await self.cases.attachments(case.id)
        wanted = set(attachment_ids)
        if wanted - {a.id for a in files}:
            raise StaleAction()
        chosen = [a for a in files if a.id in wanted]
        now = self.clock.now()
        referral = Referral(
            case_id=case.id,
            partner_id=partner.id,
            referring_team_id=case.team_id,
            referring_worker_id=worker.id,
            subject=subject,
            attachment_ids=[a.id for a in chosen],
            share_contact=share_contact,
            state=SENT,
            created_at=now,
            updated_at=now,
            due_at=await referral_due_at(
                self.session, partner, now, partner.remind_after_hours or DEFAULT_REMIND_HOURS
            ),
            escalate_at=await referral_due_at(
                self.session, partner, now, partner.escalate_after_hours or DEFAULT_ESCALATE_HOURS
            ),
        )
        referral.partner = partner
        self.session.add(referral)
        await self.session.flush()
        self._event(case.id, "referral_sent", worker.user_id, referral)
        if partner.kind == IN_BOT and partner.team_id is not None:
            base = await self._partner_payload(referral, case)
            for user in await _team_users(self.session, partner.team_id):
                await self._notify(user, "referral_new", case.id, base, f"ref_new:{referral.id}:{user.id}")
                for item in chosen:
                    await self._notify(
                        user,
                        "referral_file",
                        case.id,
                        {"referral_id": referral.id, "number": case.number, "file": _file(item)},
                        f"ref_file:{referral.id}:{item.id}:{user.id}",
                    )
        await self._tell_resident(case, referral)
        return referral

    async def _partner_payload(self, referral: Referral, case: Case) -> dict[str, Any]:
        settlement = await self.session.get(Settlement, case.settlement_id) if case.settlement_id else None
        return {
            "referral_id": referral.id,
            "number": case.number,
            "subject": referral.subject,
            "service_uk": case.service.name_uk,
            "service_en": case.service.name_en,
            "hromada_uk": case.hromada.name_uk,
            "hromada_en": case.hromada.name_en,
            "settlement_uk": settlement.name_uk if settlement else "",
            "settlement_en": settlement.name_en if settlement else "",
            "contact": case.contact_phone if referral.share_contact else None,
            "files": len(referral.attachment_ids),
        }

    # -- seeing one --------------------------------------------------------------------------
    async def _referral(self, referral_id: int, *, lock: bool = False) -> Referral:
        query = select(Referral).options(joinedload(Referral.partner)).where(Referral.id == referral_id)
        if lock:
            query = query.with_for_update(of=Referral).execution_options(populate_existing=True)
        referral = await self.session.scalar(query)
        if referral is None:
            raise NotFound()
        return referral

    async def _is_partner_member(self, worker: Worker, referral: Referral) -> bool:
        partner = referral.partner
        if not worker.active or partner.kind != IN_BOT or partner.team_id is None:
            return False
        found = await self.session.scalar(
            select(TeamMember.id).where(
                TeamMember.worker_id == worker.id, TeamMember.team_id == partner.team_id
            )
        )
        return found is not None

    async def view(self, worker: Worker, referral_id: int) -> tuple[Referral, str]:
        """The referral and who this worker is to it: a member of the partner team, or one who
        may act on the case. Anyone else: NotFound, as for a missing referral."""
        referral = await self._referral(referral_id)
        if await self._is_partner_member(worker, referral):
            return referral, ROLE_PARTNER
        await self.cases.worker_case(worker, referral.case_id, refs=False)
        return referral, ROLE_REFERRER

    async def partner_view(self, worker: Worker, referral_id: int) -> PartnerView:
        referral = await self._referral(referral_id)
        if not await self._is_partner_member(worker, referral):
            raise NotFound()
        case = await self.session.scalar(
            select(Case)
            .options(joinedload(Case.service), joinedload(Case.hromada), joinedload(Case.settlement))
            .where(Case.id == referral.case_id)
        )
        if case is None:
            raise NotFound()
        files = [a for a in await self.cases.attachments(case.id) if a.id in set(referral.attachment_ids)]
        return PartnerView(
            referral,
            case.number,
            case.service.name_uk,
            case.service.name_en,
            case.settlement.name_uk if case.settlement else "",
            case.settlement.name_en if case.settlement else "",
            case.hromada.name_uk,
            case.hromada.name_en,
            case.contact_phone if referral.share_contact else None,
            files,
        )

    async def overview(
        self, worker: Worker, case_id: int
    ) -> tuple[Case, list[Referral], list[PartnerChoice]]:
        """The case's referrals (newest first) for one who may see the case, and the partners
        it may be referred to (a member of its team, open case; else none)."""
        case, access = await self.cases.worker_case_access(worker, case_id)
        rows = await self.session.scalars(
            select(Referral)
            .options(joinedload(Referral.partner))
            .where(Referral.case_id == case.id)
            .order_by(Referral.created_at.desc(), Referral.id.desc())
        )
        choices: list[PartnerChoice] = []
        if access.member and case.status not in CLOSED_STATUSES:
            _, choices = await self.partner_choices(worker, case.id)
        return case, list(rows.all()), choices

    async def incoming(
        self, worker: Worker, limit: int = INCOMING_LIMIT
    ) -> tuple[list[IncomingReferral], int]:
        """Open referrals to the in-bot partner teams this worker belongs to, the most urgent
        (earliest answer due) first, and how many there are in all. A worker of no partner
        team gets an empty list."""
        if not worker.active:
            return [], 0
        teams = select(TeamMember.team_id).where(TeamMember.worker_id == worker.id)
        where = (
            Referral.state.in_(OPEN_REFERRAL_STATES),
            PartnerAgency.kind == IN_BOT,
            PartnerAgency.team_id.in_(teams),
        )
        total = int(
            await self.session.scalar(
                select(func.count(Referral.id))
                .join(PartnerAgency, PartnerAgency.id == Referral.partner_id)
                .where(*where)
            )
            or 0
        )
        if not total:
            return [], 0
        rows = await self.session.execute(
            select(
                Referral.id, Case.number, Service.name_uk, Service.name_en, Referral.state, Referral.due_at
            )
            .join(PartnerAgency, PartnerAgency.id == Referral.partner_id)
            .join(Case, Case.id == Referral.case_id)
            .join(Service, Service.id == Case.service_id)
            .where(*where)
            .order_by(Referral.due_at, Referral.id)
            .limit(limit)
        )
        now = self.clock.now()
        return [
            IncomingReferral(rid, number, uk, en, state, due, due <= now)
            for rid, number, uk, en, state, due in rows.all()
        ], total

    # -- answers -----------------------------------------------------------------------------
    async def answer(
        self, worker: Worker, referral_id: int, to_state: str, text: str | None = None
    ) -> Referral:
        """Accepted, declined (a reason) or an outcome (a text): by a member of an in-bot
        partner's team, or for an external partner by a member of the case's team."""
        referral = await self._referral(referral_id, lock=True)
        await self._check_answerer(worker, referral)
        if to_state == referral.state and to_state == ACCEPTED:
            return referral  # a double tap
        _check_transition(referral, to_state)
        if to_state == DECLINED:
            referral.reason = self.check_answer(text, "reason_required")
        elif to_state == OUTCOME:
            referral.outcome = self.check_answer(text, "outcome_required")
        now = self.clock.now()
        referral.state = to_state
        referral.updated_at = now
        referral.answered_by_user_id = worker.user_id
        case = await self.session.get(Case, referral.case_id)
        if case is None:
            raise NotFound()
        self._event(
            case.id,
            f"referral_{to_state}",
            worker.user_id,
            referral,
            reason=referral.reason or referral.outcome,
        )
        await self.session.flush()
        if referral.partner.kind == IN_BOT:
            payload = {
                "case_id": case.id,
                "number": case.number,
                "referral_id": referral.id,
                "state": to_state,
                "text": referral.reason if to_state == DECLINED else referral.outcome,
                **_partner_names(referral.partner),
            }
            for user in await self._referring_users(referral):
                await self._notify(
                    user, "referral_answer", case.id, payload, f"ref_ans:{referral.id}:{to_state}:{user.id}"
                )
        await self._tell_resident(case, referral)
        return referral

    async def _check_answerer(self, worker: Worker, referral: Referral) -> None:
        """An in-bot partner answers itself; an external one's answer is recorded by the case team."""
        if referral.partner.kind == IN_BOT:
            if not await self._is_partner_member(worker, referral):
                raise NotFound()
            return
        _, access = await self.cases.worker_case_access(worker, referral.case_id)
        if not access.member:
            raise NotFound()

    async def check_answerable(self, worker: Worker, referral_id: int, to_state: str) -> str:
        """Before asking for a reason or an outcome: may this worker give it now? The case number."""
        referral = await self._referral(referral_id)
        await self._check_answerer(worker, referral)
        _check_transition(referral, to_state)
        number = await self.session.scalar(select(Case.number).where(Case.id == referral.case_id))
        return number or ""

    async def close(self, worker: Worker, referral_id: int) -> Referral:
        """The referring team withdraws a referral still open (its reminders stop)."""
        referral = await self._referral(referral_id, lock=True)
        _, access = await self.cases.worker_case_access(worker, referral.case_id)
        if not access.member:
            raise NotFound()
        if referral.state == CLOSED:
            return referral
        if referral.state not in OPEN_REFERRAL_STATES:
            raise ReferralError("already_answered")
        referral.state = CLOSED
        referral.updated_at = self.clock.now()
        self._event(referral.case_id, "referral_closed", worker.user_id, referral)
        await self.session.flush()
        partner = referral.partner
        if partner.kind == IN_BOT and partner.team_id is not None:
            case = await self.session.get(Case, referral.case_id)
            for user in await _team_users(self.session, partner.team_id):
                await self._notify(
                    user,
                    "referral_closed",
                    referral.case_id,
                    {"referral_id": referral.id, "number": case.number if case else ""},
                    f"ref_closed:{referral.id}:{user.id}",
                )
        return referral

    # -- internals ---------------------------------------------------------------------------
    def _event(
        self,
        case_id: int,
        kind: str,
        actor_user_id: int | None,
        referral: Referral,
        *,
        reason: str | None = None,
    ) -> None:
        self.session.add(
            CaseEvent(
                case_id=case_id,
                at=self.clock.now(),
                actor_user_id=actor_user_id,
                kind=kind,
                reason=reason,
                data={
                    "referral_id": referral.id,
                    "partner": referral.partner.code,
                    **_partner_names(referral.partner),
                },
            )
        )

    async def _notify(
        self, user: User, kind: str, case_id: int, payload: dict[str, Any], dedupe: str
    ) -> None:
        await enqueue(
            self.session,
            user=user,
            kind=kind,
            payload=payload,
            case_id=case_id,
            due_at=self.clock.now(),
            dedupe_key=dedupe,
        )

    async def _referring_users(self, referral: Referral) -> list[User]:
        """The referring worker while active in the team; else the referring team's members."""
        users = await _team_users(self.session, referral.referring_team_id)
        own = [
            u
            for u in users
            if referral.referring_worker_id is not None
            and u.worker is not None
            and u.worker.id == referral.referring_worker_id
        ]
        return own or users

    async def _tell_resident(self, case: Case, referral: Referral) -> None:
        user, _ = await self.cases._resident_user(case)
        if user is None:
            return
        await self._notify(
            user,
            "referral_to_resident",
            case.id,
            {
                "number": case.number,
                "state": referral.state,
                "text": referral.reason if referral.state == DECLINED else referral.outcome,
                **_partner_names(referral.partner),
            },
            f"ref_res:{referral.id}:{referral.state}",
        )


def _check_transition(referral: Referral, to_state: str) -> None:
    if to_state not in (ACCEPTED, DECLINED, OUTCOME):
        raise StaleAction()
    if to_state not in REFERRAL_TRANSITIONS.get(referral.state, frozenset()):
        raise ReferralError("already_answered")


def _file(attachment: Attachment) -> dict[str, Any]:
    return {"type": attachment.kind, "file_id": attachment.file_id}


async def _team_users(session: AsyncSession, team_id: int, *, role: str | None = None) -> list[User]:
    """Active members of a team (with `role` only, when given), their worker rows loaded."""
    query = (
        select(User)
        .join(Worker, Worker.user_id == User.id)
        .join(TeamMember, TeamMember.worker_id == Worker.id)
        .options(joinedload(User.worker))
        .where(TeamMember.team_id == team_id, Worker.active.is_(True))
        .order_by(User.id)
    )
    if role is not None:
        query = query.where(TeamMember.role == role)
    return list((await session.scalars(query)).unique().all())


# -- the scheduled sweep -------------------------------------------------------------------------


async def plan_referral_steps(session: AsyncSession, now: datetime, clock: Clock | None = None) -> int:
    """Remind unanswered referrals whose `due_at` passed and escalate those whose `escalate_at`
    passed, each once (the step's time is stamped, the notices carry dedupe keys), audited.
    Referrals of closed cases are left alone. Returns how many notices were queued."""
    clock = clock or _Fixed(now)
    rows = (
        await session.scalars(
            select(Referral)
            .options(joinedload(Referral.partner))
            .join(Case, Case.id == Referral.case_id)
            .where(
                Referral.state == SENT,
                Referral.due_at <= now,
                Case.status.not_in(CLOSED_STATUSES),
            )
            .order_by(Referral.due_at, Referral.id)
            .limit(SWEEP_BATCH)
        )
    ).all()
    service = ReferralService(session, clock)
    queued = 0
    for referral in rows:
        case = await session.get(Case, referral.case_id)
        if case is None:
            continue
        if referral.reminded_at is None:
            referral.reminded_at = now
            service._event(case.id, "referral_reminded", None, referral)
            queued += await _remind(service, referral, case)
        if referral.escalated_at is None and referral.escalate_at <= now:
            referral.escalated_at = now
            service._event(case.id, "referral_escalated", None, referral)
            users = await _team_users(session, referral.referring_team_id, role=ROLE_COORDINATOR)
            users = users or await _team_users(session, referral.referring_team_id)
            payload = {
                "case_id": case.id,
                "number": case.number,
                "referral_id": referral.id,
                # A local date, as every payload keeps dates: 00:30 in Kyiv is still "that day".
                "sent": referral.created_at.astimezone(default_zone()).date().isoformat(),
                **_partner_names(referral.partner),
            }
            for user in users:
                await service._notify(
                    user, "referral_escalated", case.id, payload, f"ref_esc:{referral.id}:{user.id}"
                )
                queued += 1
    await session.flush()
    return queued


async def _remind(service: ReferralService, referral: Referral, case: Case) -> int:
    partner = referral.partner
    if partner.kind == IN_BOT and partner.team_id is not None:
        users = await _team_users(service.session, partner.team_id)
        payload: dict[str, Any] = {"referral_id": referral.id, "number": case.number}
        kind = "referral_reminder"
    else:  # an external partner: the referring team calls them
        users = await service._referring_users(referral)
        payload = {
            "case_id": case.id,
            "number": case.number,
            "referral_id": referral.id,
            "contact_uk": partner.contact_uk,
            "contact_en": partner.contact_en,
            **_partner_names(partner),
        }
        kind = "referral_chase"
    for user in users:
        await service._notify(user, kind, case.id, payload, f"ref_rem:{referral.id}:{user.id}")
    return len(users)


class _Fixed(Clock):
    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at


# -- send-time checks (services/privacy.py) ------------------------------------------------------


async def partner_may_receive(session: AsyncSession, message: OutboxMessage) -> bool:
    """A notice to a partner team member goes only while they are an active member of the
    referral's in-bot partner team, and the referral was not withdrawn."""
    referral_id = (message.payload or {}).get("referral_id")
    if not isinstance(referral_id, int) or message.user_id is None:
        return False
    row = (
        await session.execute(
            select(Referral.state, PartnerAgency.team_id)
            .join(PartnerAgency, PartnerAgency.id == Referral.partner_id)
            .where(Referral.id == referral_id, PartnerAgency.kind == IN_BOT)
        )
    ).first()
    if row is None or row.team_id is None:
        return False
    if row.state == CLOSED and message.kind != "referral_closed":
        return False
    member = await session.scalar(
        select(TeamMember.id)
        .join(Worker, Worker.id == TeamMember.worker_id)
        .where(Worker.user_id == message.user_id, Worker.active.is_(True), TeamMember.team_id == row.team_id)
    )
    return member is not None


async def step_answered(session: AsyncSession, message: OutboxMessage) -> bool:
    """A reminder or escalation whose referral is no longer waiting for an answer."""
    referral_id = (message.payload or {}).get("referral_id")
    state = await session.scalar(select(Referral.state).where(Referral.id == referral_id))
    return state != SENT
