"""Coordinators: their hromadas' cases, unassigned ones, reassigning, and routing changes that
apply at once (no restart), audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models import AuditEntry, Case, Hromada, RoutingRule, Service, Team
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from services.routing import RoutingService
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def test_coordinator_sees_hromada_cases_and_reassigns(
    make_client, reference, sessionmaker, clock, deliverer
) -> None:
    owner = await add_resident(sessionmaker, 2001)
    await add_worker(sessionmaker, 2101, "ves-csp", role=ROLE_COORDINATOR, display_name="Coord")
    member = await add_worker(sessionmaker, 2102, "ves-csp", display_name="Petro")
    first = await make_case(sessionmaker, owner)
    await make_case(sessionmaker, owner, team="pyr-cnap", hromada="PYR")
    coordinator = make_client(user_id=2101)
    replies = await coordinator.send("/worker")
    assert "🏘 Усі звернення громади" in replies[0].buttons()
    listing = (await coordinator.click("Усі звернення громади"))[-1]
    assert any("VES-" in b for b in listing.buttons())
    assert not any("PYR-" in b for b in listing.buttons())
    await coordinator.click("Панель", message_id=listing.message_id)
    unassigned = (await coordinator.click("Без виконавця"))[-1]
    assert any("VES-" in b for b in unassigned.buttons())

    card = next(r for r in await coordinator.click_data(f"case:open:{first}") if r.kind == "message")
    assert "👤 Призначити" in card.buttons()
    await coordinator.click("Призначити", message_id=card.message_id)
    replies = await coordinator.click("Petro")
    assert any(r.kind == "toast" and "Petro" in r.text for r in replies)
    async with sessionmaker() as session:
        assert (await session.get(Case, first)).assignee_worker_id == member.id
    await deliverer.deliver_due()
    petro = make_client(user_id=2102)
    assert any("доручено" in r.text for r in petro.read())
    # A plain worker has no coordinator lists and cannot assign.
    assert (await petro.click_data("wq:hromada:open:0:0"))[0].kind == "alert"
    assert (await petro.click_data(f"wasg:{first}:{member.id}"))[0].kind == "alert"


async def test_routing_rule_switch_and_delegation_apply_at_once(make_client, reference, sessionmaker) -> None:
    await add_worker(sessionmaker, 2201, "ves-csp", role=ROLE_COORDINATOR)
    coordinator = make_client(user_id=2201)
    async with sessionmaker() as session:
        ves = await session.scalar(select(Hromada).where(Hromada.code == "VES"))
        subsidy = await session.scalar(select(Service).where(Service.code == "subsidy"))
        assert (await RoutingService(session).route(ves.id, None, subsidy.id)).team.code == "ves-csp"
    listing = (await coordinator.send("/routing"))[-1]
    own = next(b for b in listing.buttons() if b.startswith("✅ Веселівська: усі послуги"))
    replies = await coordinator.click(own)
    assert any(r.kind == "toast" and "вимкнено" in r.text for r in replies)
    async with sessionmaker() as session:
        # No restart: the next request goes to the oblast fallback.
        assert (await RoutingService(session).route(ves.id, None, subsidy.id)).team.code == "zp-oblast"
    # Delegate subsidies of Veselivska to Shyrokivska's social service.
    await coordinator.click("Додати делегування")
    await coordinator.click("Веселівська")
    await coordinator.click("Житлова субсидія")
    replies = await coordinator.click("Широківської")
    assert any("Делегування додано" in r.text for r in replies)
    async with sessionmaker() as session:
        assert (await RoutingService(session).route(ves.id, None, subsidy.id)).team.code == "shr-social"
        actions = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        assert actions == ["routing_rule_toggled", "routing_delegation_added"]
        # Only their hromadas: a rule of Pyriatynska cannot be toggled by a forged press.
        pyr_rule = await session.scalar(
            select(RoutingRule).join(Team, Team.id == RoutingRule.team_id).where(Team.code == "pyr-cnap")
        )
    replies = await coordinator.click_data(f"crule:toggle:{pyr_rule.id}:0:0:0")
    assert replies[0].kind == "alert"
    async with sessionmaker() as session:
        assert (await session.get(RoutingRule, pyr_rule.id)).active is True
