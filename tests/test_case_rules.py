"""The case rules the worker's screens rely on, tested on the services directly: the
transition table, who a case may be transferred to, who is assignable, the member-and-open
guard, the document deadline and the switch to "waiting for documents"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models import Case, Team, Worker
from models.cases import (
    CLOSED_STATUSES,
    REASON_REQUIRED,
    STATUSES,
    TRANSITIONS,
    CaseStatus,
    next_statuses,
)
from models.people import ROLE_COORDINATOR
from services.case_actions import (
    AccessDenied,
    CaseActions,
    InvalidTransition,
    check_transition,
    required_text,
)
from services.clock import FrozenClock
from services.documents import DocumentService
from services.errors import StaleAction
from services.queues import QueueService
from services.reminders import ReminderRules
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 12:00 in Kyiv


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def test_status_values_are_the_stored_strings() -> None:
    assert [s.value for s in CaseStatus] == [
        "new",
        "in_progress",
        "waiting_documents",
        "visit_planned",
        "resolved",
        "rejected",
        "cancelled",
    ]
    assert set(STATUSES) == set(CaseStatus) and set(TRANSITIONS) == set(CaseStatus)
    assert CaseStatus("in_progress") == "in_progress" and f"{CaseStatus.NEW}" == "new"


def test_one_transition_table_drives_menus_and_checks() -> None:
    assert next_statuses("new") == [
        "cancelled",
        "in_progress",
        "rejected",
        "visit_planned",
        "waiting_documents",
    ]
    for status in CLOSED_STATUSES:
        assert next_statuses(status) == []
        with pytest.raises(InvalidTransition) as refused:
            check_transition(status, "in_progress")
        assert refused.value.code == "closed"
    with pytest.raises(InvalidTransition) as refused:
        check_transition("new", "resolved")
    assert refused.value.code == "invalid_transition"
    with pytest.raises(InvalidTransition):
        check_transition("in_progress", "no_such_status")
    check_transition("in_progress", "resolved")  # allowed: no error
    assert [required_text(s) for s in ("rejected", "cancelled", "resolved", "in_progress")] == [
        "reason",
        "reason",
        "outcome",
        None,
    ]
    assert REASON_REQUIRED == {"rejected", "cancelled"}


async def test_transfer_targets_are_the_oblast_teams_but_its_own_fallback_last(
    sessionmaker, reference, clock
) -> None:
    resident = await add_resident(sessionmaker, 8101)
    w = await add_worker(sessionmaker, 8201, "ves-csp")
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker() as session:
        actions = CaseActions(session, clock)
        worker = await session.get(Worker, w.id)
        case, teams = await actions.transfer_choices(worker, case_id)
        codes = [t.code for t in teams]
        assert codes[-1] == "zp-oblast" and "ves-csp" not in codes  # fallback last, never its own
        assert {"brs-social", "shr-social"} <= set(codes) and "pyr-cnap" not in codes  # one oblast
        assert case.id == case_id
        brs = next(t for t in teams if t.code == "brs-social")
        assert (await actions.transfer_target(worker, case_id, brs.id)).id == case_id
        poltava = await session.scalar(select(Team).where(Team.code == "pyr-cnap"))
        with pytest.raises(StaleAction):
            await actions.transfer_target(worker, case_id, poltava.id)
        own = await session.scalar(select(Team).where(Team.code == "ves-csp"))
        with pytest.raises(StaleAction):
            await actions.transfer_target(worker, case_id, own.id)


async def test_transfer_menu_of_a_closed_case_is_refused(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 8102)
    w = await add_worker(sessionmaker, 8202, "ves-csp")
    case_id = await make_case(sessionmaker, resident, status="resolved")
    async with sessionmaker() as session:
        with pytest.raises(InvalidTransition) as refused:
            await CaseActions(session, clock).transfer_choices(await session.get(Worker, w.id), case_id)
        assert refused.value.code == "closed"


async def test_assignable_members_are_the_active_team_members_by_name(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 8103)
    coordinator = await add_worker(
        sessionmaker, 8203, "ves-csp", role=ROLE_COORDINATOR, display_name="Oksana"
    )
    plain = await add_worker(sessionmaker, 8204, "ves-csp", display_name="Andrii")
    gone = await add_worker(sessionmaker, 8205, "ves-csp", display_name="Borys")
    await add_worker(sessionmaker, 8206, "brs-social", display_name="Anna")  # another team
    async with sessionmaker.begin() as session:
        (await session.get(Worker, gone.id)).active = False
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker() as session:
        actions = CaseActions(session, clock)
        case, members = await actions.assign_choices(await session.get(Worker, coordinator.id), case_id)
        assert [m.display_name for m in members] == ["Andrii", "Oksana"]
        assert await actions.assignable_members(case) == members
        with pytest.raises(AccessDenied) as refused:
            await actions.assign_choices(await session.get(Worker, plain.id), case_id)
        assert refused.value.code == "not_coordinator"


async def test_member_and_open_guard(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 8104)
    member = await add_worker(sessionmaker, 8207, "ves-csp")
    # A coordinator of the hromada's other team sees the case but is not a member of its team.
    await add_worker(sessionmaker, 8208, "ves-csp")
    open_id = await make_case(sessionmaker, resident)
    closed_id = await make_case(sessionmaker, resident, status="cancelled")
    other_team = await make_case(sessionmaker, resident, team="brs-social", hromada="BRS")
    async with sessionmaker() as session:
        actions = CaseActions(session, clock)
        worker = await session.get(Worker, member.id)
        assert (await actions.member_open_case(worker, open_id)).id == open_id
        with pytest.raises(InvalidTransition) as refused:
            await actions.member_open_case(worker, closed_id)
        assert refused.value.code == "closed"
        with pytest.raises(Exception) as hidden:
            await actions.member_open_case(worker, other_team)
        assert getattr(hidden.value, "code", None) == "not_found"  # not even seen


async def test_document_deadline_is_the_end_of_the_office_day(sessionmaker, clock) -> None:
    async with sessionmaker() as session:
        documents = DocumentService(session, clock, ReminderRules())
        deadline = documents.deadline_after(3)
    assert deadline.tzinfo is not None
    local = deadline.astimezone(ReminderRules().tz)
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2026, 11, 26, 18, 0)


async def test_document_request_from_the_card_moves_the_case_to_waiting(
    sessionmaker, reference, clock
) -> None:
    resident = await add_resident(sessionmaker, 8105)
    w = await add_worker(sessionmaker, 8209, "ves-csp")
    case_id = await make_case(sessionmaker, resident, status="in_progress")
    async with sessionmaker.begin() as session:
        documents = DocumentService(session, clock)
        worker = await session.get(Worker, w.id)
        codes = [d.code for d in await documents.checklist((await session.get(Case, case_id)).service_id)]
        assert codes, "the sample service has a checklist"
        with pytest.raises(StaleAction):
            await documents.request_from_card(worker, case_id, codes[:1], 5)  # not an offered deadline
        request = await documents.request_from_card(worker, case_id, codes[:1], 7)
        assert request.deadline is not None
    async with sessionmaker() as session:
        assert (await session.get(Case, case_id)).status == "waiting_documents"


async def test_queue_team_is_one_of_the_workers_teams(sessionmaker, reference, clock) -> None:
    w = await add_worker(sessionmaker, 8210, "ves-csp")
    async with sessionmaker() as session:
        queues = QueueService(session, clock)
        worker = await session.get(Worker, w.id)
        team, teams = await queues.queue_team(worker)
        assert team is not None and [t.code for t in teams] == ["ves-csp"]
        assert (await queues.queue_team(worker, team.id))[0] == team
        other = await session.scalar(select(Team).where(Team.code == "brs-social"))
        with pytest.raises(StaleAction):
            await queues.queue_team(worker, other.id)
