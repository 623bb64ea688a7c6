"""Forged and foreign presses on case buttons: a polite refusal, and nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from models import AuditEntry, Case, CaseEvent, CaseMessage, OutboxMessage, Resident
from models.cases import NEW
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _snapshot(sessionmaker, case_id: int) -> tuple:
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        return (
            case.status,
            case.assignee_worker_id,
            case.team_id,
            await session.scalar(select(func.count()).select_from(CaseEvent)),
            await session.scalar(select(func.count()).select_from(CaseMessage)),
            await session.scalar(select(func.count()).select_from(OutboxMessage)),
        )


FORGED = [
    "case:open:{id}",
    "case:take:{id}",
    "case:status:{id}",
    "case:write:{id}",
    "case:docs:{id}",
    "case:files:{id}",
    "case:assign:{id}",
    "case:transfer:{id}",
    "wst:{id}:resolved",
    "wst:{id}:in_progress",
    "wtr:{id}:1",
    "wasg:{id}:1",
    "wdoc:{id}:passport:0",
    "wdoc:{id}::7",
]


async def test_outsiders_get_polite_refusals_and_change_nothing(
    make_client, reference, sessionmaker, clock
) -> None:
    owner = await add_resident(sessionmaker, 1001)
    await add_resident(sessionmaker, 1002)
    await add_worker(sessionmaker, 1101, "ves-csp")
    await add_worker(sessionmaker, 1102, "pyr-cnap")  # another hromada
    await add_worker(sessionmaker, 1103, "pyr-tercentre", role=ROLE_COORDINATOR)  # coordinator elsewhere
    case_id = await make_case(sessionmaker, owner, status=NEW)
    before = await _snapshot(sessionmaker, case_id)
    for tg_id in (1002, 1102, 1103):
        client = make_client(user_id=tg_id)
        for template in FORGED:
            replies = await client.click_data(template.format(id=case_id))
            assert replies and replies[0].kind == "alert", (tg_id, template, replies)
            assert not any(r.kind == "message" for r in replies), (tg_id, template)
        # Nothing half-started: a text now is not taken as a reason or a message to the resident.
        await client.send("Відхилити, бо так")
    assert await _snapshot(sessionmaker, case_id) == before


async def test_forged_ids_and_actions_are_refused(make_client, reference, sessionmaker) -> None:
    await add_worker(sessionmaker, 1201, "ves-csp")
    worker = make_client(user_id=1201)
    for data, expected in (
        ("case:take:999", "Звернення не знайдено"),
        ("case:open:999", "Звернення не знайдено"),
        ("wst:999:resolved", "Звернення не знайдено"),
        ("case:explode:1", "кнопка вже неактивна"),
        ("wq:team:open:0:999", "кнопка вже неактивна"),
    ):
        replies = await worker.click_data(data)
        assert replies and replies[0].kind == "alert", data
        assert expected in replies[0].text, (data, replies[0].text)


async def test_worker_cannot_skip_the_transition_table_or_take_a_taken_case(
    make_client, reference, sessionmaker, clock
) -> None:
    owner = await add_resident(sessionmaker, 1301)
    await add_worker(sessionmaker, 1302, "ves-csp")
    await add_worker(sessionmaker, 1303, "ves-csp")
    case_id = await make_case(sessionmaker, owner, status=NEW)
    first, second = make_client(user_id=1302), make_client(user_id=1303)
    # new → resolved is not in the table.
    replies = await first.click_data(f"wst:{case_id}:resolved")
    assert replies[0].kind == "alert" and "не передбачено" in replies[0].text
    await first.click_data(f"case:take:{case_id}")
    replies = await second.click_data(f"case:take:{case_id}")
    assert replies[0].kind == "alert" and "інший працівник" in replies[0].text
    # A double tap on the same status: one event.
    await first.click_data(f"wst:{case_id}:visit_planned")
    await first.click_data(f"wst:{case_id}:visit_planned")
    async with sessionmaker() as session:
        kinds = (await session.scalars(select(CaseEvent.to_status).where(CaseEvent.kind == "status"))).all()
        assert kinds == ["in_progress", "visit_planned"]


def test_a_case_number_is_read_as_people_type_it() -> None:
    from services.cases import case_number

    assert case_number("VES-2026-000123") == "VES-2026-000123"
    assert case_number(" ves 2026 123 ") == "VES-2026-000123"
    assert case_number("Ves-2026/7") == "VES-2026-000007"
    for wrong in (None, "", "123", "VES-26-1", "VES-2026-1234567", "ВЕС-2026-1", "VES-2026-1; drop"):
        assert case_number(wrong) is None, wrong


async def test_a_worker_opens_a_case_by_its_number_only_if_it_is_theirs_to_see(
    make_client, reference, sessionmaker
) -> None:
    owner = await add_resident(sessionmaker, 1401)
    await add_worker(sessionmaker, 1402, "ves-csp")
    await add_worker(sessionmaker, 1403, "pyr-cnap")
    case_id = await make_case(sessionmaker, owner)
    async with sessionmaker() as session:
        number = await session.scalar(select(Case.number).where(Case.id == case_id))
    prefix, year, sequence = number.split("-")
    ours, other = make_client(user_id=1402), make_client(user_id=1403)

    # As said on the phone: lower case, spaces, no leading zeros.
    card = (await ours.send(f"/case {prefix.lower()} {year} {int(sequence)}"))[-1]
    assert number in card.text and card.buttons(), "the case card with its actions"
    # Another hromada's worker, and a number that does not exist, get the same answer.
    refused = (await other.send(f"/case {number}"))[-1].text
    missing = (await ours.send(f"/case {prefix}-{year}-999999"))[-1].text
    assert "Звернення не знайдено" in refused and refused == missing
    assert "/case VES-2026-000123" in (await ours.send("/case"))[-1].text
    assert "/case VES-2026-000123" in (await ours.send("/case будь ласка знайдіть"))[-1].text
    # Not a worker: the command opens nothing.
    assert not any(number in r.text for r in await make_client(user_id=1401).send(f"/case {number}"))


async def test_a_caller_is_found_by_phone_only_in_the_workers_own_teams(
    make_client, reference, sessionmaker
) -> None:
    owner = await add_resident(sessionmaker, 1501)
    async with sessionmaker.begin() as session:
        resident = await session.get(Resident, owner.id)
        resident.phone = "+380501112233"
    await add_worker(sessionmaker, 1502, "ves-csp")
    await add_worker(sessionmaker, 1503, "pyr-cnap")
    vesele = await make_case(sessionmaker, owner)
    pyriatyn = await make_case(
        sessionmaker, owner, team="pyr-cnap", hromada="PYR", service="social_assistance"
    )
    async with sessionmaker() as session:
        numbers = dict((await session.execute(select(Case.id, Case.number))).all())

    ours = make_client(user_id=1502)
    found = (await ours.send("/case 050 111 22 33"))[-1]
    assert numbers[vesele] in found.text and numbers[pyriatyn] not in found.text
    card = (await ours.click(numbers[vesele], message_id=found.message_id))[-1]
    assert numbers[vesele] in card.text
    # The other team sees only its own; an unknown number, nothing.
    theirs = (await make_client(user_id=1503).send("/case +380501112233"))[-1]
    assert numbers[pyriatyn] in theirs.text and numbers[vesele] not in theirs.text
    assert "немає" in (await ours.send("/case 0679998877"))[-1].text
    async with sessionmaker() as session:
        lookups = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "case_phone_lookup"))
        ).all()
        assert [entry.data for entry in lookups] == [{"found": 1}, {"found": 1}, {"found": 0}]
        assert all("111" not in str(entry.data) for entry in lookups), "no phone in the audit"
