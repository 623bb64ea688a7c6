"""Saved replies, called directly: placeholder checks and filling (pure), the team's book on
both databases (who may manage, audit, soft delete, language choice, access), seeding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from infra.i18n import create_i18n
from models import AuditEntry, DocumentRequest, SavedReply, Team, Worker
from models.people import ROLE_COORDINATOR
from services.case_actions import AccessDenied, NotFound
from services.clock import FrozenClock
from services.errors import StaleAction
from services.reference_data import load_reference_file, parse_reference
from services.reply_book import ReplyBook
from services.saved_replies import (
    GAP,
    LOCALES,
    PLACEHOLDERS,
    TEXT_MAX,
    ReplyError,
    ReplyValues,
    check_text,
    check_title,
    fill,
    pick_version,
    resident_locale,
)
from services.workers import NotCoordinator
from tests.conftest import SAMPLE_REFERENCE
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
KYIV = FrozenClock(NOW)
VALUES = ReplyValues(
    case_number="VES-2026-000007",
    service="Житлова субсидія",
    team="ЦНАП Веселівської громади",
    office_address="смт Веселе, вул. Центральна, 1",
    office_hours="пн–пт 8:00–17:00",
    deadline="30.11.2026",
)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


# -- pure: checking and filling ------------------------------------------------------------------


def test_every_placeholder_is_filled() -> None:
    text = "{first_name}! {case_number} ({service}): {office_address}, {office_hours}, до {deadline}. {team}"
    filled = fill(text, VALUES, locale="uk", greeting="Доброго дня")
    assert filled.text == (
        "Доброго дня! VES-2026-000007 (Житлова субсидія): смт Веселе, вул. Центральна, 1, "
        "пн–пт 8:00–17:00, до 30.11.2026. ЦНАП Веселівської громади"
    )
    assert filled.missing == () and filled.locale == "uk"


def test_a_known_first_name_is_used_and_spaces_inside_braces_are_allowed() -> None:
    values = ReplyValues(case_number="X-1", service="s", team="t", first_name="Марія")
    assert (
        fill("{ first_name }, {case_number}", values, locale="uk", greeting="Доброго дня").text
        == "Марія, X-1"
    )


def test_missing_values_leave_a_gap_and_are_named() -> None:
    values = ReplyValues(case_number="X-1", service="s", team="t")
    filled = fill("До {deadline}, {office_address}; ще раз {deadline}", values, locale="en", greeting="Hello")
    assert filled.text == f"До {GAP}, {GAP}; ще раз {GAP}"
    assert filled.missing == ("deadline", "office_address")


def test_lone_braces_and_unknown_names_are_left_as_typed() -> None:
    filled = fill("a { b } {c {case_number}", VALUES, locale="uk", greeting="-")
    assert filled.text == "a { b } {c VES-2026-000007"


def test_unknown_placeholder_is_refused_with_the_known_list() -> None:
    with pytest.raises(ReplyError) as refused:
        check_text("Доброго дня, {name}! Ваше звернення {case_number} і {adress}")
    assert refused.value.code == "unknown_placeholder"
    assert refused.value.params["names"] == "{name}, {adress}"
    assert "{office_hours}" in refused.value.params["known"] and "{deadline}" in refused.value.params["known"]


@pytest.mark.parametrize(
    ("text", "code"),
    [("   ", "empty_text"), ("x" * (TEXT_MAX + 1), "text_too_long"), ("{case_number} 👍", "no_words")],
)
def test_bad_texts_are_refused(text: str, code: str) -> None:
    with pytest.raises(ReplyError) as refused:
        check_text(text)
    assert refused.value.code == code


def test_texts_and_titles_are_cleaned() -> None:
    assert check_text("  Принесіть\u202e паспорт\r\n{case_number}  ") == "Принесіть паспорт\n{case_number}"
    assert check_title("  Документи\nготові ") == "Документи готові"
    with pytest.raises(ReplyError):
        check_title("")
    with pytest.raises(ReplyError):
        check_title("д" * 61)


def test_language_choice() -> None:
    both = {"uk": "укр", "en": "eng"}
    assert resident_locale("en") == "en" and resident_locale(None) == "uk" and resident_locale("de") == "uk"
    assert pick_version(both, "en") == ("en", "eng")
    assert pick_version({"uk": "укр"}, "en") == ("uk", "укр")
    assert pick_version({"en": "eng"}, "uk") == ("en", "eng")
    assert pick_version({}, "uk") is None


def test_every_placeholder_and_language_is_explained_in_both_languages() -> None:
    i18n = create_i18n()
    keys = [f"replies.placeholder.{name}" for name in PLACEHOLDERS] + [f"replies.locale.{c}" for c in LOCALES]
    for language in LOCALES:
        assert [k for k in keys if i18n.gettext(k, locale=language) == k] == [], language


# -- the book, on both databases -----------------------------------------------------------------


async def _book(session) -> ReplyBook:
    return ReplyBook(session, KYIV, ZoneInfo("Europe/Kyiv"))


async def _team(session, code: str) -> Team:
    return await session.scalar(select(Team).where(Team.code == code))


async def test_only_the_teams_coordinators_manage_and_every_change_is_audited(
    reference, sessionmaker
) -> None:
    coordinator = await add_worker(sessionmaker, 5001, "ves-csp", role=ROLE_COORDINATOR)
    member = await add_worker(sessionmaker, 5002, "ves-csp")
    other = await add_worker(sessionmaker, 5003, "pyr-cnap", role=ROLE_COORDINATOR)
    async with sessionmaker.begin() as session:
        ves = await _team(session, "ves-csp")
        book = await _book(session)
        for outsider in (member, other):
            worker = await session.get(Worker, outsider.id)
            with pytest.raises(NotCoordinator):
                await book.add(worker, ves.id, "uk", "Назва", "Текст {case_number}")
        me = await session.get(Worker, coordinator.id)
        row = await book.add(me, ves.id, "uk", "Готово", "Ваше звернення {case_number} готове")
        english = await book.add(
            me, ves.id, "en", "Ready", "Your request {case_number} is ready", code=row.code
        )
        with pytest.raises(ReplyError) as twice:
            await book.add(me, ves.id, "en", "Ready", "again", code=row.code)
        assert twice.value.code == "exists"
        await book.edit_text(me, english.id, "Request {case_number} is ready, {first_name}")
        with pytest.raises(NotCoordinator):
            await book.edit_text(await session.get(Worker, other.id), english.id, "Hijacked {case_number}")
    async with sessionmaker.begin() as session:
        book = await _book(session)
        [template] = [t for t in await book.templates(ves.id) if t.code == row.code]
        assert set(template.versions) == {"uk", "en"} and template.title("en") == "Ready"
        assert template.versions["en"].text == "Request {case_number} is ready, {first_name}"
        await book.delete(await session.get(Worker, coordinator.id), english.id)
    async with sessionmaker() as session:
        assert row.code not in {t.code for t in await (await _book(session)).templates(ves.id)}
        rows = (await session.scalars(select(SavedReply).where(SavedReply.code == row.code))).all()
        assert len(rows) == 2 and not any(r.active for r in rows)  # soft: the rows stay
        audit = (
            await session.execute(select(AuditEntry.action, AuditEntry.data).order_by(AuditEntry.id))
        ).all()
        assert [a for a, _ in audit] == [
            "saved_reply_added",
            "saved_reply_added",
            "saved_reply_edited",
            "saved_reply_deleted",
            "saved_reply_deleted",
        ]
        assert all(set(data) == {"team_id", "code", "locale"} for _, data in audit)  # no text


async def test_filled_for_a_case_in_the_residents_language(reference, sessionmaker) -> None:
    coordinator = await add_worker(sessionmaker, 5101, "ves-csp", role=ROLE_COORDINATOR)
    member = await add_worker(sessionmaker, 5102, "ves-csp")
    stranger = await add_worker(sessionmaker, 5103, "pyr-cnap")
    english = await add_resident(sessionmaker, 5104, language="en")
    case_id = await make_case(sessionmaker, english)
    async with sessionmaker.begin() as session:
        ves = await _team(session, "ves-csp")
        ves.office_hours_en = "Mon–Fri 8:00–17:00"
        book = await _book(session)
        me = await session.get(Worker, coordinator.id)
        uk = await book.add(
            me, ves.id, "uk", "Документи", "{first_name}! Принесіть до {deadline}: {office_address}"
        )
        await book.add(
            me,
            ves.id,
            "en",
            "Documents",
            "{first_name}! Bring by {deadline} to {office_address}, {office_hours}",
            code=uk.code,
        )
        session.add(
            DocumentRequest(
                case_id=case_id, items=["passport"], deadline=NOW + timedelta(days=7), status="open"
            )
        )
    greeting = {"uk": "Доброго дня", "en": "Hello"}.__getitem__
    async with sessionmaker() as session:
        book = await _book(session)
        worker = await session.get(Worker, member.id)
        _case, filled = await book.filled(worker, case_id, uk.id, greeting)
        assert filled.locale == "en" and filled.missing == ()
        assert (
            filled.text == "Hello! Bring by 30.11.2026 to ЦНАП, Vesele, 1 Tsentralna St, Mon–Fri 8:00–17:00"
        )
        # A worker of another team sees nothing of the case or its team's templates.
        outsider = await session.get(Worker, stranger.id)
        with pytest.raises((NotFound, AccessDenied)):
            await book.filled(outsider, case_id, uk.id, greeting)
        with pytest.raises((NotFound, AccessDenied)):
            await book.for_case(outsider, case_id)


async def test_another_teams_template_cannot_be_filled_into_a_case(reference, sessionmaker) -> None:
    member = await add_worker(sessionmaker, 5201, "ves-csp")
    coordinator = await add_worker(sessionmaker, 5202, "pyr-cnap", role=ROLE_COORDINATOR)
    case_id = await make_case(sessionmaker, await add_resident(sessionmaker, 5203))
    async with sessionmaker.begin() as session:
        pyr = await _team(session, "pyr-cnap")
        foreign = await (await _book(session)).add(
            await session.get(Worker, coordinator.id), pyr.id, "uk", "Чуже", "Звернення {case_number}"
        )
    async with sessionmaker() as session:
        with pytest.raises(StaleAction):
            await (await _book(session)).filled(
                await session.get(Worker, member.id), case_id, foreign.id, lambda _: "Доброго дня"
            )


async def test_seeding_adds_missing_samples_and_keeps_coordinators_changes(reference, sessionmaker) -> None:
    coordinator = await add_worker(sessionmaker, 5301, "ves-csp", role=ROLE_COORDINATOR)
    async with sessionmaker.begin() as session:
        ves = await _team(session, "ves-csp")
        assert ves.office_hours_uk.startswith("пн–чт")
        book = await _book(session)
        templates = await book.templates(ves.id)
        assert [t.code for t in templates] == ["docs-bring", "in-progress", "call-back"]
        me = await session.get(Worker, coordinator.id)
        await book.edit_text(me, templates[1].versions["uk"].id, "Звернення {case_number} в роботі")
        await book.delete(me, templates[2].first.id)
    async with sessionmaker.begin() as session:
        report = await load_reference_file(session, SAMPLE_REFERENCE)
        assert "saved_replies" not in report.created
    async with sessionmaker() as session:
        templates = await (await _book(session)).templates(ves.id)
        assert [t.code for t in templates] == ["docs-bring", "in-progress"]
        assert templates[1].versions["uk"].text == "Звернення {case_number} в роботі"


def test_a_sample_with_an_unknown_placeholder_is_refused_by_the_file_check() -> None:
    text = SAMPLE_REFERENCE.read_text(encoding="utf-8").replace(
        "{office_hours}. {team}", "{hours}. {team}", 1
    )
    with pytest.raises(Exception, match="unknown_placeholder"):
        parse_reference(text)
