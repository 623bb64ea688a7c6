"""IntakeService directly: case numbers under concurrency, idempotency, priority, notices."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from handlers.kit.notices import render_notice
from infra.i18n import create_i18n
from models import Case, CaseCounter, Hromada, OutboxMessage, Resident, Service
from services.cases import CaseDraft, IntakeService, priority_for
from services.clock import Clock
from tests.factories import add_resident, add_worker


async def _draft(sessionmaker, hromada: str = "VES", service: str = "subsidy", **kw) -> CaseDraft:
    async with sessionmaker() as session:
        h = await session.scalar(select(Hromada).where(Hromada.code == hromada))
        s = await session.scalar(select(Service).where(Service.code == service))
        assert h is not None and s is not None
        return CaseDraft(
            hromada_id=h.id,
            settlement_id=None,
            service_id=s.id,
            description="Потрібна допомога, дякую.",
            contact_phone="+380501234567",
            vulnerability=kw.pop("vulnerability", []),
            **kw,
        )


async def _file(sessionmaker, resident_id: int, draft: CaseDraft, key: str):
    async with sessionmaker.begin() as session:
        resident = await session.get(Resident, resident_id)
        filed = await IntakeService(session, Clock()).file(resident, draft, key)
        return filed.case.number, filed.created


async def test_numbers_are_unique_and_gapless_under_concurrency(sessionmaker, reference) -> None:
    draft = await _draft(sessionmaker)
    residents = [await add_resident(sessionmaker, 50_000 + i) for i in range(12)]
    results = await asyncio.gather(*(_file(sessionmaker, r.id, draft, f"k{r.id}") for r in residents))
    numbers = sorted(n for n, _ in results)
    year = Clock().now().year
    assert numbers == [f"VES-{year}-{i:06d}" for i in range(1, 13)]
    async with sessionmaker() as session:
        counter = await session.get(CaseCounter, ("VES", year))
        assert counter is not None and counter.last_value == 12


async def test_same_key_files_one_case_even_concurrently(sessionmaker, reference) -> None:
    draft = await _draft(sessionmaker)
    resident = await add_resident(sessionmaker, 50_100)
    results = await asyncio.gather(*(_file(sessionmaker, resident.id, draft, "same") for _ in range(3)))
    assert len({n for n, _ in results}) == 1
    assert sorted(created for _, created in results) == [False, False, True]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_priority_grows_with_each_marker_and_sensitive_service() -> None:
    assert priority_for([], False) == 0
    assert 0 < priority_for(["displaced"], False) < priority_for(["displaced", "children"], False)
    assert priority_for(["elderly_alone", "elderly_alone"], False) == priority_for(["elderly_alone"], False)
    assert priority_for([], True) > 0


async def test_nobody_on_duty_then_only_the_assignee_is_told(sessionmaker, reference) -> None:
    await add_worker(sessionmaker, 61, "pl-oblast", on_duty=False)
    draft = await _draft(sessionmaker, "OML", "child_protection", vulnerability=["children"])
    resident = await add_resident(sessionmaker, 50_200)
    await _file(sessionmaker, resident.id, draft, "k1")
    async with sessionmaker() as session:
        case = await session.scalar(select(Case))
        assert case is not None and case.assignee_worker_id is None and case.routing_kind == "fallback"
        assert case.priority == priority_for(["children"], True)
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    await add_worker(sessionmaker, 62, "pl-oblast")
    await add_worker(sessionmaker, 63, "pl-oblast")
    # Both on duty and equally loaded: the first takes it and only they are told.
    await _file(sessionmaker, resident.id, draft, "k2")
    async with sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
        assert [r.kind for r in rows] == ["case_new"]
        # Sensitive service: no description excerpt even in a personal notice.
        assert rows[0].payload["excerpt"] is None
        text, _ = render_notice("case_new", rows[0].payload, "uk", create_i18n())
        assert text.endswith("\n\n—") and draft.description not in text


def test_typed_words_match_the_catalogue() -> None:
    from models import Service
    from services.catalogue import match_services

    catalogue = [
        Service(
            id=1,
            code="subsidy",
            group_code="sa",
            name_uk="Житлова субсидія",
            name_en="Housing subsidy",
            description_uk="Допомога на оплату житлово-комунальних послуг",
            description_en="Help with housing and utility bills",
            position=1,
        ),
        Service(
            id=2,
            code="social_assistance",
            group_code="sa",
            name_uk="Соціальна допомога",
            name_en="Social assistance",
            description_uk="Державні соціальні допомоги малозабезпеченим",
            description_en="State assistance for low-income families",
            position=2,
        ),
        Service(
            id=3,
            code="idp",
            group_code="idp",
            name_uk="Підтримка ВПО",
            name_en="IDP support",
            description_uk="Довідка ВПО, допомога на проживання, житло",
            description_en="IDP certificate, living allowance, housing",
            position=3,
        ),
    ]

    def chosen(typed: str) -> str | None:
        found = match_services(typed, catalogue).chosen
        return found.code if found else None

    assert chosen("субсидії") == "subsidy"  # another ending of the same word
    assert chosen("СУБСИДІЮ оформити") == "subsidy"
    assert chosen("довідка ВПО") == "idp"  # a three-letter word: whole only
    assert chosen("вп") is None
    assert chosen("допомога") is None, "a common word alone decides nothing"
    assert [s.code for s in match_services("допомога", catalogue).candidates][:2] == [
        "social_assistance",
        "subsidy",
    ]
    assert chosen("допомога на проживання") == "idp"
    assert match_services("!!! 123", catalogue).candidates == []
    # In one name beats in another's description; equal standing offers both.
    assert chosen("housing") == "subsidy"
    assert chosen("bills allowance") is None
    assert {s.code for s in match_services("bills allowance", catalogue).candidates} == {"idp", "subsidy"}


def test_for_whom_said_in_words() -> None:
    from services.spoken import on_behalf_from_words

    for typed in ("для мами", "Для моєї матері", "за сусідку", "для бабусі, я онука", "for my mother"):
        assert on_behalf_from_words(typed) is True, typed
    for typed in ("для себе", "Собі", "я сама", "мене", "for myself"):
        assert on_behalf_from_words(typed) is False, typed
    for typed in (None, "", "не знаю", "матеріальна допомога", "123"):
        assert on_behalf_from_words(typed) is None, typed


def test_circumstances_said_in_words() -> None:
    from services.spoken import markers_from_words

    assert markers_from_words("Живу сама, сусіди допомагають") == (["elderly_alone"], False)
    assert markers_from_words("самотня пенсіонерка, на візку") == (["elderly_alone", "disability"], False)
    assert markers_from_words("ми ВПО з двома дітьми") == (["children", "displaced"], False)
    assert markers_from_words("я сама заповнюю") == ([], False), "alone only together with living"
    assert markers_from_words("ні") == ([], True)
    assert markers_from_words("нічого з цього") == ([], True)
    assert markers_from_words("не знаю") == ([], False)
