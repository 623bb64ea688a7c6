"""Queue pages and the case card's data (services/queues.py), on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Case, Team, Worker
from models.cases import CANCELLED, IN_PROGRESS, NEW, RESOLVED, WAITING_DOCUMENTS
from models.people import ROLE_COORDINATOR
from services.case_actions import CaseActions
from services.clock import FrozenClock
from services.queues import QueueService
from tests.factories import add_resident, add_worker
from tests.test_case_actions import NOW, make_case


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _team_id(session, code: str) -> int:
    return (await session.scalar(select(Team).where(Team.code == code))).id


async def test_team_queue_is_ordered_by_priority_then_age_and_paged(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 701)
    ids = []
    for i, (status, priority) in enumerate(
        [(NEW, 0), (IN_PROGRESS, 2), (WAITING_DOCUMENTS, 0), (NEW, 2), (RESOLVED, 5), (NEW, 1)] * 3
    ):
        case_id = await make_case(sessionmaker, resident, status=status, priority=priority)
        async with sessionmaker.begin() as session:
            (await session.get(Case, case_id)).created_at = NOW + timedelta(minutes=i)
        ids.append((case_id, status, priority, i))
    expected = [c for c, _, _, _ in sorted((x for x in ids if x[1] != RESOLVED), key=lambda x: (-x[2], x[3]))]
    async with sessionmaker() as session:
        queues = QueueService(session, clock)
        team = await _team_id(session, "ves-csp")
        first = await queues.team_queue(team, "open", page=0, size=10)
        second = await queues.team_queue(team, "open", page=1, size=10)
        assert [r.id for r in first.rows] + [r.id for r in second.rows] == expected
        assert first.has_next and not second.has_next
        only_new = await queues.team_queue(team, NEW)
        assert {r.status for r in only_new.rows} == {NEW} and len(only_new.rows) == 9
        assert (await queues.team_queue(team, RESOLVED)).rows[0].service_name("en") == "Housing subsidy"


async def test_my_queue_and_coordinator_views(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 702)
    w = await add_worker(sessionmaker, 801, "ves-csp")
    coord = await add_worker(sessionmaker, 802, "ves-csp", role=ROLE_COORDINATOR)
    mine = await make_case(sessionmaker, resident)
    other = await make_case(sessionmaker, resident)
    await make_case(sessionmaker, resident, status=CANCELLED)
    elsewhere = await make_case(sessionmaker, resident, team="pyr-cnap", hromada="PYR")
    async with sessionmaker.begin() as session:
        await CaseActions(session, clock).take(mine, await session.get(Worker, w.id))
    clock.advance(days=10)
    async with sessionmaker() as session:
        queues = QueueService(session, clock)
        worker = await session.get(Worker, w.id)
        assert [r.id for r in (await queues.my_queue(worker)).rows] == [mine]
        coordinator = await session.get(Worker, coord.id)
        assert [r.id for r in (await queues.hromada_cases(coordinator)).rows] == [mine, other]
        assert [r.id for r in (await queues.unassigned(coordinator)).rows] == [other]
        # Both open cases are quiet for 10 days; with a 30-day threshold neither is stale.
        assert [r.id for r in (await queues.stale(coordinator, 7)).rows] == [mine, other]
        assert (await queues.stale(coordinator, 30)).rows == []
        assert elsewhere not in [r.id for r in (await queues.hromada_cases(coordinator)).rows]
        assert (await queues.hromada_cases(worker)).rows == []  # a plain worker coordinates nothing


async def test_card_has_latest_events_messages_and_attachment_count(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 703)
    w = await add_worker(sessionmaker, 803, "ves-csp")
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock)
        worker = await session.get(Worker, w.id)
        await actions.take(case_id, worker)
        await actions.relay_to_resident(case_id, worker, "Добрий день")
        from models import User

        user = await session.scalar(select(User).where(User.telegram_id == 703))
        clock.advance(minutes=1)
        await actions.resident_message(user, case_id, "Дякую")
        await actions.resident_attachment(user, case_id, kind="photo", file_id="f1", file_unique_id="u1")
        await actions.resident_attachment(user, case_id, kind="photo", file_id="f1", file_unique_id="u1")
    async with sessionmaker() as session:
        worker = await session.get(Worker, w.id)
        case = await CaseActions(session, clock).worker_case(worker, case_id)
        assert case.service.code == "subsidy" and case.team.code == "ves-csp" and case.assignee.id == w.id
        card = await QueueService(session, clock).card(case)
        assert [(e.kind, e.to_status) for e in card.events] == [("assigned", None), ("status", IN_PROGRESS)]
        assert [(m.from_resident, m.text) for m in card.messages] == [(False, "Добрий день"), (True, "Дякую")]
        assert card.attachments_count == 1
        assert card.events[0].at == NOW
