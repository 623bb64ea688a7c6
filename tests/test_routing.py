"""Routing rules over the sample reference data: own, settlement-level delegation, delegation,
oblast fallback, inactive rules, occupied hromadas, the least-loaded assignee, reasons per language."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.render import routing_reason
from models import Case, Hromada, RoutingRule, Service, Settlement, Team, TeamMember
from services.routing import HromadaNotAccepting, RoutingService
from tests.factories import add_resident, add_worker


async def ids(session: AsyncSession, hromada: str, service: str, settlement: str | None = None):
    h = await session.scalar(select(Hromada).where(Hromada.code == hromada))
    s = await session.scalar(select(Service).where(Service.code == service))
    assert h is not None and s is not None
    st_id = None
    if settlement:
        st = await session.scalar(
            select(Settlement).where(Settlement.hromada_id == h.id, Settlement.code == settlement)
        )
        assert st is not None
        st_id = st.id
    return h.id, st_id, s.id


async def route(session: AsyncSession, hromada: str, service: str, settlement: str | None = None):
    return await RoutingService(session).route(*await ids(session, hromada, service, settlement))


@pytest.mark.parametrize(
    ("hromada", "service", "settlement", "team", "kind"),
    [
        ("VES", "home_care", "matviivka", "ves-csp", "own"),
        ("VES", "employment", None, "ves-csp", "own"),
        ("PYR", "home_care", "pyriatyn", "pyr-tercentre", "own"),
        ("PYR", "subsidy", None, "pyr-cnap", "own"),
        ("BRS", "home_care", "hirsivka", "ves-csp", "delegation"),
        ("BRS", "home_care", "berestove", "zp-oblast", "fallback"),
        ("BRS", "subsidy", "hirsivka", "brs-social", "own"),
        ("PSH", "home_care", "kozaky", "pyr-tercentre", "delegation"),
        ("SHS", "subsidy", None, "pyr-tercentre", "delegation"),
        ("PSH", "employment", None, "pl-employment", "delegation"),
        ("SHR", "home_care", "shyroke", "zp-oblast", "fallback"),
        ("OML", "subsidy", "omelnyk", "pl-oblast", "fallback"),
        ("OML", "child_protection", None, "pl-oblast", "fallback"),
        ("MYK", "idp_support", None, "dn-oblast", "fallback"),
    ],
)
async def test_rule_kinds(session, reference, hromada, service, settlement, team, kind) -> None:
    decision = await route(session, hromada, service, settlement)
    assert (decision.team.code, decision.kind) == (team, kind)
    assert decision.detail["kind"] == kind and decision.detail["team"]["code"] == team


async def test_settlement_specific_rule_beats_hromada_wide(session, reference) -> None:
    h, matviivka, subsidy = await ids(session, "VES", "subsidy", "matviivka")
    brs_team = await session.scalar(select(Team).where(Team.code == "brs-social"))
    assert brs_team is not None
    session.add(
        RoutingRule(
            kind="own",
            oblast="zaporizka",
            hromada_id=h,
            service_id=subsidy,
            settlement_id=matviivka,
            team_id=brs_team.id,
        )
    )
    await session.flush()
    routing = RoutingService(session)
    assert (await routing.route(h, matviivka, subsidy)).team.code == "brs-social"
    _, vesele, _ = await ids(session, "VES", "subsidy", "vesele")
    assert (await routing.route(h, vesele, subsidy)).team.code == "ves-csp"


async def test_inactive_rule_is_ignored_and_edits_apply_without_restart(session, reference) -> None:
    assert (await route(session, "PSH", "home_care")).team.code == "pyr-tercentre"
    await session.execute(update(RoutingRule).where(RoutingRule.kind == "delegation").values(active=False))
    decision = await route(session, "PSH", "home_care")
    assert (decision.team.code, decision.kind) == ("pl-oblast", "fallback")


async def test_occupied_hromada_accepts_no_requests(session, reference) -> None:
    with pytest.raises(HromadaNotAccepting):
        await route(session, "KZR", "idp_support")


async def test_least_loaded_on_duty_member_gets_the_case(sessionmaker, session, reference) -> None:
    first = await add_worker(sessionmaker, 9001, "ves-csp")
    second = await add_worker(sessionmaker, 9002, "ves-csp")
    off_duty = await add_worker(sessionmaker, 9003, "ves-csp", on_duty=False)
    # Committed before `session` opens its transaction: on SQLite that transaction holds the
    # one write lock, so another connection could not commit until it ends.
    resident = await add_resident(sessionmaker, 9100)
    team = await session.scalar(select(Team).where(Team.code == "ves-csp"))
    assert team is not None
    routing = RoutingService(session)
    assert (await routing.pick_assignee(team.id)).id == first.id  # a tie: the lower id
    h, _, s = await ids(session, "VES", "subsidy")
    for n, status in enumerate(("new", "in_progress", "resolved")):
        session.add(
            Case(
                number=f"VES-T-{n}",
                resident_id=resident.id,
                hromada_id=h,
                service_id=s,
                team_id=team.id,
                assignee_worker_id=first.id if n < 2 else second.id,
                status=status,
                routing_kind="own",
            )
        )
    await session.flush()
    # first has 2 open cases, second only a closed one.
    assert (await routing.pick_assignee(team.id)).id == second.id
    assert off_duty.id not in {w.id for w in await routing.on_duty_members(team.id)}


async def test_no_on_duty_member_leaves_the_case_in_the_team_queue(sessionmaker, session, reference) -> None:
    await add_worker(sessionmaker, 9011, "shr-social", on_duty=False)
    team = await session.scalar(select(Team).where(Team.code == "shr-social"))
    assert team is not None
    assert await RoutingService(session).pick_assignee(team.id) is None
    await session.execute(update(TeamMember).values(on_duty=True))
    assert await RoutingService(session).pick_assignee(team.id) is not None


async def test_reason_is_rendered_in_ukrainian_and_english(session, reference, app) -> None:
    i18n = app.i18n
    delegated = await route(session, "PSH", "home_care")
    en = routing_reason(delegated.detail, "en", i18n)
    uk = routing_reason(delegated.detail, "uk", i18n)
    assert "Delegated by Pishchanska hromada to Pyriatynska hromada for “Home care”" in en
    assert "Піщанська громада доручила послугу «Догляд вдома»" in uk and "Пирятинська" in uk
    village = routing_reason((await route(session, "BRS", "home_care", "hirsivka")).detail, "uk", i18n)
    assert "Гірсівка" in village and "Веселівська" in village
    fallback = routing_reason((await route(session, "SHR", "home_care")).detail, "en", i18n)
    assert "Shyrokivska hromada has no team of its own" in fallback and "Zaporizhzhia oblast" in fallback
    own = routing_reason((await route(session, "VES", "subsidy")).detail, "uk", i18n)
    assert "власна команда" in own
