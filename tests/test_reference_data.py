"""Seeding reference data: validation with line numbers, idempotence, updates."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Hromada, RoutingRule, Service, Settlement, Team
from services.reference_data import ReferenceDataError, load_reference_file, parse_reference

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_reference.yaml"


async def _counts(session) -> dict[str, int]:
    out = {}
    for model in (Hromada, Settlement, Service, Team, RoutingRule):
        out[model.__tablename__] = await session.scalar(select(func.count()).select_from(model))
    return out


async def test_sample_loads_and_second_run_changes_nothing(sessionmaker) -> None:
    async with sessionmaker.begin() as session:
        first = await load_reference_file(session, SAMPLE)
    assert first.created["hromadas"] == 13 and first.created["teams"] == 12
    async with sessionmaker() as session:
        before = await _counts(session)
    async with sessionmaker.begin() as session:
        second = await load_reference_file(session, SAMPLE)
    assert not second.changed, second.summary()
    async with sessionmaker() as session:
        assert await _counts(session) == before
        assert before["routing_rules"] > 17  # rules expand per service


async def test_changed_file_updates_rows_and_replaces_rules(sessionmaker, tmp_path) -> None:
    async with sessionmaker.begin() as session:
        await load_reference_file(session, SAMPLE)
    changed = SAMPLE.read_text(encoding="utf-8").replace("en: Veselivska}", "en: Veselivska hromada}")
    changed = changed.replace(
        "  - {kind: delegation, hromada: SHS, services: [home_care, subsidy], team: pyr-tercentre}\n", ""
    )
    path = tmp_path / "ref.yaml"
    path.write_text(changed, encoding="utf-8")
    async with sessionmaker.begin() as session:
        report = await load_reference_file(session, path)
    assert report.updated == {"hromadas": 1}
    assert report.removed == {"routing_rules": 2}
    async with sessionmaker() as session:
        name = await session.scalar(select(Hromada.name_en).where(Hromada.code == "VES"))
        assert name == "Veselivska hromada"


@pytest.mark.parametrize(
    ("edit", "points_at_edit", "reason"),
    [
        (("team: ves-csp}", "team: no-such-team}"), False, "unknown team 'no-such-team'"),
        (("  - code: VES\n", "  - code: ves\n"), True, "String should match pattern"),
        (("    group: care\n", "    group: gardening\n"), True, "Input should be"),
        (("      - {code: omelnyk", "      - {cod: omelnyk"), True, "Field required"),
    ],
)
async def test_malformed_file_is_refused_whole_with_line_and_reason(
    sessionmaker, tmp_path, edit, points_at_edit, reason
) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert edit[0] in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(ReferenceDataError) as err:
        async with sessionmaker.begin() as session:
            await load_reference_file(session, path)
    message = str(err.value)
    assert reason in message
    assert ", line " in message
    if points_at_edit:
        line = text[: text.index(edit[0])].count("\n") + 1
        assert f"line {line}:" in message
    async with sessionmaker() as session:
        assert (await _counts(session))["hromadas"] == 0


def test_broken_yaml_reports_its_line() -> None:
    with pytest.raises(ReferenceDataError, match=r"line 3: not valid YAML"):
        parse_reference("services:\n  - code: a\n   bad: [\n")
