"""SLA of a case (services/sla.py, services/sla_sweep.py) on both databases: due times set at
filing on the team's calendar, first response, pause and resume, breach, met and missed, the
escalation chain taken once per step; and hypothesis properties of pausing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models import Case, CaseEvent, Hromada, OutboxMessage, Resident, Service, Team
from models.cases import IN_PROGRESS, RESOLVED, WAITING_DOCUMENTS
from models.people import ROLE_COORDINATOR
from services.calendar import STANDARD_WEEK, WorkingCalendar
from services.case_actions import CaseActions
from services.cases import CaseDraft, IntakeService
from services.clock import FrozenClock
from services.sla import BREACHED, MET, MISSED, ON_TIME, SlaService, _extended
from services.sla_sweep import sweep_sla
from tests.factories import add_resident, add_worker

KYIV = ZoneInfo("Europe/Kyiv")
# Wednesday 02.12.2026, 10:00 in Kyiv (08:00 UTC).
WEDNESDAY_10 = datetime(2026, 12, 2, 10, 0, tzinfo=KYIV)


async def _file(
    sessionmaker, clock, resident: Resident, *, hromada="VES", service="subsidy", key="k1"
) -> int:
    async with sessionmaker.begin() as session:
        hromada_id = await session.scalar(select(Hromada.id).where(Hromada.code == hromada))
        service_id = await session.scalar(select(Service.id).where(Service.code == service))
        draft = CaseDraft(hromada_id, None, service_id, "Потрібна допомога з субсидією", None, [])
        filed = await IntakeService(session, clock, KYIV).file(
            await session.get(Resident, resident.id), draft, f"sla-{resident.id}"
        )
        return filed.case.id


async def _sweep(sessionmaker, clock) -> tuple[int, int]:
    async with sessionmaker.begin() as session:
        return await sweep_sla(session, clock, KYIV)


async def test_filing_sets_due_times_on_the_working_calendar(reference, sessionmaker) -> None:
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    resident = await add_resident(sessionmaker, 3001)
    case_id = await _file(sessionmaker, clock, resident)
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        # Subsidy: 8 working hours to respond, 80 to resolve; Mon–Thu 08–12, 13–17, Fri to 15:45.
        assert case.first_response_due_at == datetime(2026, 12, 3, 10, 0, tzinfo=KYIV)
        assert case.resolution_due_at == datetime(2026, 12, 16, 13, 30, tzinfo=KYIV)
        assert case.sla_state == ON_TIME
        # The next moment anything changes: one working hour before the first response is due.
        assert case.sla_next_check_at == datetime(2026, 12, 3, 9, 0, tzinfo=KYIV)


async def test_idle_sweep_touches_nothing_then_due_soon_then_breach_once(reference, sessionmaker) -> None:
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    resident = await add_resident(sessionmaker, 3002)
    worker = await add_worker(sessionmaker, 3102, "ves-csp")
    await add_worker(sessionmaker, 3103, "ves-csp", role=ROLE_COORDINATOR)
    case_id = await _file(sessionmaker, clock, resident)
    assert await _sweep(sessionmaker, clock) == (0, 0)
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=KYIV).astimezone(UTC))
    looked, queued = await _sweep(sessionmaker, clock)
    assert looked == 1 and queued >= 1
    assert await _sweep(sessionmaker, clock) == (0, 0)
    clock.set(datetime(2026, 12, 3, 10, 1, tzinfo=KYIV).astimezone(UTC))
    await _sweep(sessionmaker, clock)
    await _sweep(sessionmaker, clock)
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case.sla_state == BREACHED and case.sla_breached
        kinds = (
            await session.scalars(select(OutboxMessage.kind).where(OutboxMessage.kind.like("sla_%")))
        ).all()
        assert sorted(kinds) == ["sla_breached", "sla_due_soon"]
        events = (await session.scalars(select(CaseEvent.kind).where(CaseEvent.kind.like("sla_%")))).all()
        assert sorted(events) == ["sla_breached", "sla_due_soon"]
    # The worker takes it late: the resolution clock runs, the case is no longer breaching.
    async with sessionmaker.begin() as session:
        case = await CaseActions(session, clock, KYIV).take(case_id, worker)
        assert case.first_responded_at is not None
        assert not case.sla_breached and case.sla_state == ON_TIME
        case = await CaseActions(session, clock, KYIV).close(case_id, worker, RESOLVED, "Призначено")
        assert case.sla_state == MISSED  # the first response was late
        assert case.sla_next_check_at is None


async def test_pause_while_waiting_for_documents_extends_the_clock_and_met(reference, sessionmaker) -> None:
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    resident = await add_resident(sessionmaker, 3003)
    worker = await add_worker(sessionmaker, 3104, "ves-csp")
    case_id = await _file(sessionmaker, clock, resident)
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock, KYIV)
        await actions.take(case_id, worker)
        case = await actions.change_status(case_id, worker, WAITING_DOCUMENTS, "Паспорт")
        due_before = case.resolution_due_at
        assert case.sla_paused_at is not None and case.sla_next_check_at is None
    # Twelve calendar days of waiting (documents came on 14.12 at 10:00).
    clock.set(datetime(2026, 12, 14, 10, 0, tzinfo=KYIV).astimezone(UTC))
    assert await _sweep(sessionmaker, clock) == (0, 0)  # paused: nothing to look at
    async with sessionmaker.begin() as session:
        case = await CaseActions(session, clock, KYIV).change_status(case_id, worker, IN_PROGRESS)
        # Paused at once after filing: all 80 working hours are left, counted from the resume.
        assert case.resolution_due_at > due_before
        assert case.resolution_due_at == datetime(2026, 12, 28, 13, 30, tzinfo=KYIV)
        assert case.sla_paused_seconds == int(61.5 * 3600)  # working time only
        assert case.sla_state == ON_TIME
    async with sessionmaker.begin() as session:
        case = await CaseActions(session, clock, KYIV).close(case_id, worker, RESOLVED, "Призначено")
        assert case.sla_state == MET


async def test_long_breach_of_a_delegated_case_goes_up_the_chain_once_per_step(
    reference, sessionmaker
) -> None:
    # Pishchanska delegated home care to Pyriatyn's territorial centre.
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    resident = await add_resident(sessionmaker, 3004)
    await add_worker(sessionmaker, 3105, "pyr-tercentre", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 3106, "psh-social", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 3107, "pl-oblast", role=ROLE_COORDINATOR)
    case_id = await _file(sessionmaker, clock, resident, hromada="PSH", service="home_care")
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case.routing_kind == "delegation"
    # A week later, nobody took it: every step is due at once; each is taken once.
    clock.set(datetime(2026, 12, 9, 12, 0, tzinfo=KYIV).astimezone(UTC))
    for _ in range(3):
        await _sweep(sessionmaker, clock)
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(OutboxMessage.kind, OutboxMessage.chat_id, OutboxMessage.payload).where(
                    OutboxMessage.kind.like("sla_%")
                )
            )
        ).all()
        by_chat = {chat: (kind, payload["step"]) for kind, chat, payload in rows}
        assert by_chat == {
            3105: ("sla_breached", "breached"),
            3106: ("sla_escalated", "partner"),
            3107: ("sla_escalated", "oblast"),
        }
        assert len(rows) == 3  # the stale "due soon" is not sent after the breach
        case = await session.get(Case, case_id)
        assert case.sla_next_check_at is None and case.sla_escalation_step == 4
        assert await session.scalar(select(func.count()).where(CaseEvent.kind == "sla_escalated")) == 2


async def test_service_without_policy_has_no_sla(reference, sessionmaker) -> None:
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    async with sessionmaker.begin() as session:
        service = await session.scalar(select(Service).where(Service.code == "subsidy"))
        team = await session.scalar(select(Team).where(Team.code == "ves-csp"))
        sla = SlaService(session, clock, KYIV)
        assert await sla.policy(service.id, 0) is not None
        home_care = await session.scalar(select(Service).where(Service.code == "home_care"))
        # Priority ≥ 2 takes the shorter policy.
        assert (await sla.policy(home_care.id, 3)).first_response_minutes == 240
        assert (await sla.policy(home_care.id, 0)).first_response_minutes == 480
        assert (await sla.calendar(team.id)).public_holidays is False


# -- properties ------------------------------------------------------------------------------------

CAL = WorkingCalendar(week=STANDARD_WEEK, zone=KYIV, public_holidays=False)
moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 6, 1), timezones=st.just(UTC))
spans = st.integers(min_value=0, max_value=60 * 24 * 30).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(due=moments, pause=moments, length=spans)
def test_pausing_never_shortens_a_clock(due: datetime, pause: datetime, length: timedelta) -> None:
    resume = pause + length
    extended = _extended(CAL, due, pause, resume)
    assert extended >= due
    if due > pause:
        # The working time left at the pause is left at the resume.
        assert CAL.working_between(resume, extended) >= CAL.working_between(pause, due)


async def test_sla_report_table_per_service(reference, sessionmaker) -> None:
    from datetime import date

    from services.report_tables import Period, ReportScope
    from services.sla_report import percentile, sla_table

    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    worker = await add_worker(sessionmaker, 3110, "ves-csp")
    ids = [await _file(sessionmaker, clock, await add_resident(sessionmaker, 3200 + i)) for i in range(3)]
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock, KYIV)
        clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=KYIV).astimezone(UTC))  # 2 working hours
        await actions.take(ids[0], worker)
        await actions.close(ids[0], worker, RESOLVED, "Призначено")
        clock.set(datetime(2026, 12, 4, 9, 0, tzinfo=KYIV).astimezone(UTC))  # first response late
        await actions.take(ids[1], worker)
        await actions.close(ids[1], worker, RESOLVED, "Призначено")
    async with sessionmaker() as session:
        ves = await session.scalar(select(Hromada.id).where(Hromada.code == "VES"))
        table = await sla_table(
            session, ReportScope((ves,)), Period(date(2026, 12, 1), date(2026, 12, 31)), KYIV
        )
        other = await sla_table(
            session, ReportScope((ves,)), Period(date(2026, 11, 1), date(2026, 11, 30)), KYIV
        )
    assert other.rows == ()
    assert [c.key for c in table.columns][:4] == [
        "sla.report.service",
        "sla.report.due",
        "sla.report.met",
        "sla.report.missed",
    ]
    (row,) = table.rows
    assert row[:5] == ("Житлова субсидія", 3, 1, 1, 50.0)
    # Working hours to first response: 2 (Wed 10→12) and 15 (Wed 6 + Thu 8 + Fri 08–09).
    assert row[5] == 8.5 and row[6] == 15.0
    assert table.published()[0][1:4] == ("<5", "<5", "<5")
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9


async def test_reference_calendar_and_policies_are_validated_and_idempotent(sessionmaker, tmp_path) -> None:
    import pytest

    from models import SlaPolicy, WorkCalendar
    from services.reference_data import ReferenceDataError, load_reference_file
    from tests.conftest import SAMPLE_REFERENCE

    text = SAMPLE_REFERENCE.read_text(encoding="utf-8")
    for old, new, reason in (
        ('mon-thu: ["08:00-12:00", "13:00-17:00"]', 'mon-thu: ["17:00-08:00"]', "increasing"),
        ("{service: employment, first", "{service: gardening, first", "unknown service 'gardening'"),
        ("sat: [", "someday: [", "unknown weekday"),
    ):
        assert old in text
        path = tmp_path / "bad.yaml"
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ReferenceDataError, match=reason):
            async with sessionmaker.begin() as session:
                await load_reference_file(session, path)
    path = tmp_path / "ref.yaml"
    path.write_text(
        text.replace(
            "{service: subsidy, first_response_hours: 8,", "{service: subsidy, first_response_hours: 4,"
        ),
        encoding="utf-8",
    )
    async with sessionmaker.begin() as session:
        await load_reference_file(session, SAMPLE_REFERENCE)
    async with sessionmaker.begin() as session:
        report = await load_reference_file(session, path)
    assert report.updated == {"sla_policies": 1}
    async with sessionmaker() as session:
        minutes = await session.scalars(select(SlaPolicy.first_response_minutes).order_by(SlaPolicy.id))
        assert 240 in minutes.all()
        codes = set((await session.scalars(select(WorkCalendar.code))).all())
        assert codes == {"default", "pyr-tercentre"}


async def test_queue_puts_breaching_cases_first_within_a_priority(reference, sessionmaker) -> None:
    from services.queues import QueueService

    clock = FrozenClock(datetime(2026, 11, 30, 10, 0, tzinfo=KYIV).astimezone(UTC))
    older = await _file(sessionmaker, clock, await add_resident(sessionmaker, 3301))
    clock.set(datetime(2026, 12, 2, 10, 0, tzinfo=KYIV).astimezone(UTC))
    newer = await _file(sessionmaker, clock, await add_resident(sessionmaker, 3302))
    async with sessionmaker() as session:
        team_id = await session.scalar(select(Team.id).where(Team.code == "ves-csp"))
        page = await QueueService(session, clock, KYIV).team_queue(team_id)
        assert [r.id for r in page.rows] == [older, newer]  # oldest first while both are on time
        assert page.rows[0].sla.state == BREACHED  # the view is live, before any sweep
    # Make the newer one breach first: the older one was taken (its resolution clock is on time).
    worker = await add_worker(sessionmaker, 3303, "ves-csp")
    async with sessionmaker.begin() as session:
        await CaseActions(session, clock, KYIV).take(older, worker)
    clock.set(datetime(2026, 12, 3, 10, 30, tzinfo=KYIV).astimezone(UTC))
    await _sweep(sessionmaker, clock)
    async with sessionmaker() as session:
        page = await QueueService(session, clock, KYIV).team_queue(team_id)
        assert [r.id for r in page.rows] == [newer, older]
        assert [r.sla.state for r in page.rows] == [BREACHED, ON_TIME]
