"""Satisfaction: a resolved case's resident is asked once, rates once, may add a comment; the
report table per team and service keeps the small-count rule; erasure removes the comment."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Case, CaseRating, Hromada, OutboxMessage, Resident, User
from models.cases import IN_PROGRESS, RESOLVED
from services.case_actions import CaseActions
from services.clock import FrozenClock
from services.privacy import PrivacyService
from services.report_tables import Period, ReportScope
from services.satisfaction import ask_for_rating, satisfaction_table
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
QUESTION = "Наскільки ви задоволені"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _resolve(sessionmaker, clock, case_id: int, worker) -> None:
    async with sessionmaker.begin() as session:
        await CaseActions(session, clock).close(case_id, worker, RESOLVED, "Допомогу надано")


async def test_rating_after_resolution_once_with_comment(
    make_client, reference, sessionmaker, clock, deliverer
):
    owner = await add_resident(sessionmaker, 3001)
    await add_resident(sessionmaker, 3002)
    worker = await add_worker(sessionmaker, 3101, "ves-csp")
    case_id = await make_case(sessionmaker, owner, status=IN_PROGRESS)
    resident = make_client(user_id=3001)
    stranger = make_client(user_id=3002)

    # Not resolved yet: nothing to rate, even by the owner (a forged button).
    assert (await resident.click_data(f"rate:rate:{case_id}:5"))[0].kind == "alert"
    await _resolve(sessionmaker, clock, case_id, worker)
    await deliverer.deliver_due()
    question = next(r for r in resident.read() if QUESTION in r.text)
    assert question.buttons() == ["1 😞", "2 🙁", "3 😐", "4 🙂", "5 😊"]

    # Someone else's case is refused like a missing one.
    refused = await stranger.click_data(f"rate:rate:{case_id}:1")
    assert refused[0].kind == "alert" and "не можна оцінити" in refused[0].text

    replies = await resident.click("4", message_id=question.message_id)
    assert any(r.kind == "toast" and "Дякуємо" in r.text for r in replies)
    ask = next(r for r in replies if r.kind == "message")
    assert "4 з 5" in ask.text and "Пропустити" in ask.buttons()
    # A sticker or emoji alone is not a comment: the step stays.
    assert "текстом" in (await resident.send_sticker())[0].text
    assert "словами" in (await resident.send("👍👍👍"))[0].text
    assert "задовгий" in (await resident.send("Дуже " * 400))[0].text
    assert "передано" in (await resident.send("Дякую, все зробили швидко"))[0].text

    # The old question's button, pressed again: rated once.
    again = await resident.click_data(f"rate:rate:{case_id}:1", message_id=question.message_id)
    assert again[0].kind == "alert" and "вже оцінили" in again[0].text
    async with sessionmaker() as session:
        rating = await session.scalar(select(CaseRating).where(CaseRating.case_id == case_id))
        assert (rating.rating, rating.comment, rating.rated_at) == (4, "Дякую, все зробили швидко", NOW)
        # Asked once: a second resolution hook (or a retried transaction) adds no row.
        case = await session.get(Case, case_id)
        await ask_for_rating(session, case, clock)
        await session.commit()
        asked = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "rating_request")
        )
        assert asked == 1
    # A message after the comment step is not taken as a comment.
    await resident.send("Ще одне питання")
    async with sessionmaker() as session:
        rating = await session.scalar(select(CaseRating).where(CaseRating.case_id == case_id))
        assert rating.comment == "Дякую, все зробили швидко"


async def test_skip_comment_and_erasure_removes_it(make_client, reference, sessionmaker, clock, deliverer):
    owner = await add_resident(sessionmaker, 3201, language="en")
    worker = await add_worker(sessionmaker, 3202, "ves-csp")
    first = await make_case(sessionmaker, owner, status=IN_PROGRESS)
    second = await make_case(sessionmaker, owner, status=IN_PROGRESS)
    await _resolve(sessionmaker, clock, first, worker)
    await _resolve(sessionmaker, clock, second, worker)
    await deliverer.deliver_due()
    resident = make_client(user_id=3201, language_code="en")
    questions = [r for r in resident.read() if "How satisfied" in r.text]
    assert len(questions) == 2
    await resident.click_data(f"rate:rate:{first}:5", message_id=questions[0].message_id)
    replies = await resident.click("Skip")
    assert any(r.kind == "toast" and "Thank you" in r.text for r in replies)
    # After "Skip" a text is not a comment on the first case.
    await resident.send("Just a question")
    await resident.click_data(f"rate:rate:{second}:2", message_id=questions[1].message_id)
    assert "passed on" in (await resident.send("Took too long to answer"))[0].text
    async with sessionmaker.begin() as session:
        ratings = {r.case_id: r for r in (await session.scalars(select(CaseRating))).all()}
        assert ratings[first].comment is None and ratings[second].comment == "Took too long to answer"
        user = await session.scalar(
            select(User).join(Resident, Resident.user_id == User.id).where(Resident.id == owner.id)
        )
        await PrivacyService(session, clock).erase_person(user)
    async with sessionmaker() as session:
        rows = (await session.scalars(select(CaseRating).order_by(CaseRating.case_id))).all()
        # The anonymous rating stays for the statistics; the person's words are gone.
        assert [(r.rating, r.comment) for r in rows] == [(5, None), (2, None)]


async def test_satisfaction_table_per_team_and_service(reference, sessionmaker, clock):
    owner = await add_resident(sessionmaker, 3301)
    scores = {("ves-csp", "subsidy"): [5, 4, 4, 2, 5], ("ves-csp", "home_care"): [1]}
    async with sessionmaker.begin() as session:
        for (team, service), values in scores.items():
            for value in values:
                case_id = await make_case(sessionmaker, owner, team=team, service=service, status=RESOLVED)
                session.add(CaseRating(case_id=case_id, rating=value, comment="особисте", rated_at=NOW))
        # Outside the period and outside the scope: not counted.
        old = await make_case(sessionmaker, owner, status=RESOLVED)
        session.add(CaseRating(case_id=old, rating=1, rated_at=NOW - timedelta(days=40)))
        other = await make_case(sessionmaker, owner, team="pyr-cnap", hromada="PYR", status=RESOLVED)
        session.add(CaseRating(case_id=other, rating=1, rated_at=NOW))
    async with sessionmaker() as session:
        ves = await session.scalar(select(Hromada.id).where(Hromada.code == "VES"))
        table = await satisfaction_table(
            session, ReportScope((ves,)), Period(date(2026, 11, 1), date(2026, 11, 30))
        )
    assert table.key == "satisfaction.title"
    rows = {row[1]: row for row in table.rows}
    assert len(rows) == 2
    subsidy = next(row for name, row in rows.items() if "убсид" in name)
    assert subsidy[2:] == (5, 4.0, 80.0)
    care = next(row for name, row in rows.items() if row is not subsidy)
    # One rating: its average would be that person's answer.
    assert care[2:] == (1, None, None)
    assert sorted(str(row[2]) for row in table.published()) == ["5", "<5"]
    assert all("особисте" not in str(cell) for row in table.rows for cell in row)


async def test_rating_in_the_middle_of_a_form_does_not_interrupt_it(
    make_client, reference, sessionmaker, clock, deliverer, app, bot
):
    owner = await add_resident(sessionmaker, 3401)
    worker = await add_worker(sessionmaker, 3402, "ves-csp")
    case_id = await make_case(sessionmaker, owner, status=IN_PROGRESS)
    await _resolve(sessionmaker, clock, case_id, worker)
    await deliverer.deliver_due()
    resident = make_client(user_id=3401)
    question = next(r for r in resident.read() if QUESTION in r.text)
    await resident.send("📝 Нове звернення")
    fsm = app.dispatcher.fsm.get_context(bot=bot, chat_id=3401, user_id=3401)
    form_state = await fsm.get_state()
    assert form_state is not None
    replies = await resident.click("5", message_id=question.message_id)
    assert any(r.kind == "message" and r.text == "Дякуємо!" for r in replies)
    assert not any("Пропустити" in r.buttons() for r in replies)
    assert await fsm.get_state() == form_state  # the new-request form goes on where it was
    async with sessionmaker() as session:
        assert (await session.scalar(select(CaseRating.rating).where(CaseRating.case_id == case_id))) == 5
