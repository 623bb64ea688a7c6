"""What fast reports rely on: every case keeps its first response (with or without an SLA
policy), on both databases; and the SLA section's cached working-time arithmetic agrees with the
calendar's own (hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from models import Case, Hromada, Resident, Service, SlaPolicy
from models.cases import RESOLVED
from services.calendar import STANDARD_WEEK, WorkingCalendar
from services.case_actions import CaseActions
from services.cases import CaseDraft, IntakeService
from services.clock import FrozenClock
from services.sla_report import _DayCache
from tests.factories import add_resident, add_worker

KYIV = ZoneInfo("Europe/Kyiv")
WEDNESDAY_10 = datetime(2026, 12, 2, 10, 0, tzinfo=KYIV)


async def test_first_response_is_kept_for_a_service_without_sla_policy(reference, sessionmaker) -> None:
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    resident = await add_resident(sessionmaker, 3801)
    worker = await add_worker(sessionmaker, 3802, "ves-csp")
    async with sessionmaker.begin() as session:
        subsidy = await session.scalar(select(Service.id).where(Service.code == "subsidy"))
        await session.execute(delete(SlaPolicy).where(SlaPolicy.service_id == subsidy))
        hromada = await session.scalar(select(Hromada.id).where(Hromada.code == "VES"))
        draft = CaseDraft(hromada, None, subsidy, "Потрібна допомога з субсидією", None, [])
        filed = await IntakeService(session, clock, KYIV).file(
            await session.get(Resident, resident.id), draft, "no-policy"
        )
        case_id = filed.case.id
    async with sessionmaker.begin() as session:
        case = await session.get(Case, case_id)
        assert case.first_response_due_at is None and case.first_responded_at is None
        clock.set(datetime(2026, 12, 2, 13, 0, tzinfo=KYIV).astimezone(UTC))
        actions = CaseActions(session, clock, KYIV)
        await actions.relay_to_resident(case_id, worker, "Доброго дня, беремо в роботу")
    clock.set(datetime(2026, 12, 3, 9, 0, tzinfo=KYIV).astimezone(UTC))
    async with sessionmaker.begin() as session:
        # A later action keeps the first moment; still no SLA state or next check.
        actions = CaseActions(session, clock, KYIV)
        await actions.take(case_id, worker)
        await actions.close(case_id, worker, RESOLVED, "Призначено")
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case.first_responded_at == datetime(2026, 12, 2, 13, 0, tzinfo=KYIV)
        assert case.sla_state is None and case.sla_next_check_at is None


# -- properties ------------------------------------------------------------------------------------

# A calendar with a public-holiday rule and an exceptional short day, to cover all paths.
CALENDAR = WorkingCalendar(
    week=STANDARD_WEEK,
    zone=KYIV,
    public_holidays=True,
    exceptions={date(2026, 12, 31): ((time(9), time(12)),), date(2027, 1, 3): ((time(10), time(14)),)},
)
moments = st.datetimes(
    min_value=datetime(2026, 10, 1), max_value=datetime(2027, 4, 1), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(spans=st.lists(st.tuples(moments, moments), min_size=1, max_size=6))
def test_cached_working_time_equals_the_calendar(spans: list[tuple[datetime, datetime]]) -> None:
    # One cache for many spans, in any order (it grows both ways from the first day asked).
    cache = _DayCache(CALENDAR)
    for a, b in spans:
        expected = CALENDAR.working_between(a, b).total_seconds()
        assert abs(cache.working_seconds(a, b) - expected) < 1e-6
        assert abs(cache.working_seconds(b, a) + expected) < 1e-6
    assert cache.working_seconds(spans[0][0], spans[0][0] + timedelta(0)) == 0
