"""Referral rules called directly, on both databases: the state machine and who may answer,
the reminder and escalation sweep (each step once), the send-time check of partner notices,
erasure, and seeding the partners idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models import CaseEvent, OutboxMessage, PartnerAgency, Referral, Worker
from models.people import ROLE_COORDINATOR
from services.case_actions import NotFound
from services.clock import FrozenClock
from services.privacy import NO_ACCESS, REASON_GONE, PrivacyService, drop_reason
from services.reference_data import load_reference_file
from services.referrals import ReferralError, ReferralService, plan_referral_steps, referral_due_at
from tests.conftest import SAMPLE_REFERENCE
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _partner_id(session, code: str) -> int:
    return (await session.scalar(select(PartnerAgency.id).where(PartnerAgency.code == code))) or 0


async def _world(sessionmaker):
    owner = await add_resident(sessionmaker, 4001)
    worker = await add_worker(sessionmaker, 4101, "pyr-cnap")
    coordinator = await add_worker(sessionmaker, 4102, "pyr-cnap", role=ROLE_COORDINATOR)
    partner = await add_worker(sessionmaker, 4201, "pl-employment")
    case_id = await make_case(
        sessionmaker, owner, team="pyr-cnap", hromada="PYR", service="social_assistance"
    )
    return worker, coordinator, partner, case_id


async def _send(sessionmaker, clock, worker, case_id, code="pl-employment") -> int:
    async with sessionmaker.begin() as session:
        referral = await ReferralService(session, clock).create(
            worker, case_id, await _partner_id(session, code), "Підбір вакансій"
        )
        return referral.id


async def test_due_time_counts_working_hours(reference, sessionmaker) -> None:
    # Monday 12:00 in Kyiv, the lunch hour: 13–17 today and 08–12 tomorrow make 8 working hours.
    async with sessionmaker() as session:
        partner = await session.scalar(select(PartnerAgency).where(PartnerAgency.team_id.is_(None)))
        assert await referral_due_at(session, partner, NOW, 8) == NOW + timedelta(hours=24)
        # 24 working hours: the rest of Monday (4), Tuesday and Wednesday (16), Thursday 08–12.
        assert await referral_due_at(session, partner, NOW, 24) == NOW + timedelta(hours=72)


async def test_state_machine_and_who_may_answer(reference, sessionmaker, clock) -> None:
    worker, _, partner, case_id = await _world(sessionmaker)
    async with sessionmaker.begin() as session:
        service = ReferralService(session, clock)
        with pytest.raises(ReferralError) as empty:
            await service.create(worker, case_id, await _partner_id(session, "pl-employment"), "  ?? ")
        assert empty.value.code == "subject_required"
        with pytest.raises(ReferralError):
            await service.create(worker, case_id, await _partner_id(session, "pl-employment"), "а" * 501)
        # The partner team cannot refer the case (it is not theirs).
        with pytest.raises(NotFound):
            await service.create(partner, case_id, await _partner_id(session, "pfu-pyriatyn"), "Будь ласка")
    referral_id = await _send(sessionmaker, clock, worker, case_id)
    async with sessionmaker.begin() as session:
        service = ReferralService(session, clock)
        # For an in-bot partner only its members answer, not the referring worker.
        with pytest.raises(NotFound):
            await service.answer(worker, referral_id, "accepted")
        with pytest.raises(ReferralError) as no_reason:
            await service.answer(partner, referral_id, "declined", "")
        assert no_reason.value.code == "reason_required"
        await service.answer(partner, referral_id, "accepted")
        await service.answer(partner, referral_id, "accepted")  # a double tap changes nothing
        with pytest.raises(ReferralError) as late:
            await service.answer(partner, referral_id, "declined", "Передумали")
        assert late.value.code == "already_answered"
        await service.answer(partner, referral_id, "outcome", "Працевлаштовано")
        with pytest.raises(ReferralError):
            await service.close(worker, referral_id)
    async with sessionmaker() as session:
        kinds = (
            await session.scalars(
                select(CaseEvent.kind).where(CaseEvent.kind.like("referral_%")).order_by(CaseEvent.id)
            )
        ).all()
        assert kinds == ["referral_sent", "referral_accepted", "referral_outcome"]
        # An inactive partner member is refused like anyone outside the team.
        inactive = await session.get(Worker, partner.id)
        inactive.active = False
        with pytest.raises(NotFound):
            await ReferralService(session, clock).view(inactive, referral_id)


async def test_unanswered_referral_reminded_then_escalated_once(reference, sessionmaker, clock) -> None:
    worker, coordinator, partner, case_id = await _world(sessionmaker)
    # Remind after 8 working hours (Tuesday 12:00 Kyiv), escalate after 24 (Thursday 12:00).
    referral_id = await _send(sessionmaker, clock, worker, case_id)
    async with sessionmaker.begin() as session:
        assert await plan_referral_steps(session, NOW + timedelta(hours=23), clock) == 0
    async with sessionmaker.begin() as session:
        assert await plan_referral_steps(session, NOW + timedelta(hours=25), clock) == 1
    async with sessionmaker.begin() as session:
        assert await plan_referral_steps(session, NOW + timedelta(hours=26), clock) == 0
    async with sessionmaker.begin() as session:
        assert await plan_referral_steps(session, NOW + timedelta(hours=71), clock) == 0
    async with sessionmaker.begin() as session:
        assert await plan_referral_steps(session, NOW + timedelta(hours=73), clock) == 1
    async with sessionmaker.begin() as session:
        assert await plan_referral_steps(session, NOW + timedelta(hours=80), clock) == 0
    async with sessionmaker() as session:
        rows = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.kind.like("referral_%")))
        ).all()
        reminders = [r for r in rows if r.kind == "referral_reminder"]
        escalations = [r for r in rows if r.kind == "referral_escalated"]
        assert [r.user_id for r in reminders] == [partner.user_id]
        assert [r.user_id for r in escalations] == [coordinator.user_id]
        events = (await session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id))).all()
        assert events.count("referral_reminded") == 1 and events.count("referral_escalated") == 1
        referral = await session.get(Referral, referral_id)
        assert referral.reminded_at is not None and referral.escalated_at is not None
    # Answered since: the queued reminder and escalation are dropped at send time.
    async with sessionmaker.begin() as session:
        await ReferralService(session, clock).answer(partner, referral_id, "accepted")
    async with sessionmaker() as session:
        for row in reminders + escalations:
            assert await drop_reason(session, await session.get(OutboxMessage, row.id)) == REASON_GONE


async def test_partner_notice_checked_at_send_time_and_erased(reference, sessionmaker, clock) -> None:
    worker, _, partner, case_id = await _world(sessionmaker)
    referral_id = await _send(sessionmaker, clock, worker, case_id)
    async with sessionmaker() as session:
        notice = await session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "referral_new"))
        assert notice.user_id == partner.user_id
        # A partner member may get it although the case's rules would refuse them the case.
        assert await drop_reason(session, notice) is None
    async with sessionmaker.begin() as session:
        (await session.get(Worker, partner.id)).active = False
    async with sessionmaker() as session:
        assert await drop_reason(session, await session.get(OutboxMessage, notice.id)) == NO_ACCESS
    async with sessionmaker.begin() as session:
        await PrivacyService(session, clock).erase_cases([case_id])
    async with sessionmaker() as session:
        referral = await session.get(Referral, referral_id)
        assert referral.subject == "—"
        payload = (await session.get(OutboxMessage, notice.id)).payload
        assert payload["subject"] == "—" and payload["referral_id"] == referral_id


async def test_partners_seeded_idempotently(reference, sessionmaker) -> None:
    async with sessionmaker() as session:
        partners = {p.code: p for p in (await session.scalars(select(PartnerAgency))).all()}
        assert partners["pl-employment"].kind == "in_bot" and partners["pl-employment"].team_id is not None
        assert (
            partners["pfu-pyriatyn"].kind == "external"
            and "0 800 503 753" in partners["pfu-pyriatyn"].contact_uk
        )
    async with sessionmaker.begin() as session:
        report = await load_reference_file(session, SAMPLE_REFERENCE)
    assert not report.changed
