"""Survey definitions: a mistake is named with its line; the scale average appears only from
five answers on (hand-computed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from models import Settlement, Survey, Worker
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from services.report_tables import Period, ReportScope
from services.survey_admin import SurveyAdmin
from services.survey_spec import SurveySpecError, parse_survey
from services.surveys import KYIV, SurveyService, survey_results_table
from tests.factories import add_resident, add_worker

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

GOOD = """
code: mo_check
title: {uk: Мобільний офіс, en: Mobile office}
questions:
  - code: used
    kind: single
    text: {uk: "Чи були ви в мобільному офісі?", en: "Have you been to the mobile office?"}
    options:
      - {code: "yes", uk: Так, en: "Yes"}
      - {code: "no", uk: Ні, en: "No"}
  - code: score
    kind: scale
    text: {uk: Оцініть від 1 до 5, en: Rate 1 to 5}
    if: {question: used, answers: ["yes"]}
"""


def test_mistakes_are_named_with_their_line() -> None:
    assert [q.code for q in parse_survey(GOOD).questions] == ["used", "score"]
    with pytest.raises(SurveySpecError, match=r"question score: used has no option 'maybe'"):
        parse_survey(GOOD.replace('answers: ["yes"]', 'answers: ["maybe"]'))
    with pytest.raises(SurveySpecError, match=r"line 6: questions.0.kind"):
        parse_survey(GOOD.replace("kind: single", "kind: dropdown"))
    with pytest.raises(SurveySpecError, match="needs 2 to 12 options"):
        parse_survey(GOOD.replace('      - {code: "no", uk: Ні, en: "No"}\n', ""))
    with pytest.raises(SurveySpecError, match="must name an earlier question"):
        parse_survey(GOOD.replace("question: used", "question: later"))
    with pytest.raises(SurveySpecError, match="not valid YAML"):
        parse_survey("code: [unclosed")


async def test_scale_average_from_five_answers(sessionmaker, reference) -> None:
    clock = FrozenClock(NOW)
    await add_worker(sessionmaker, 6100, "ves-csp", role=ROLE_COORDINATOR)
    for telegram_id in range(6201, 6207):
        await add_resident(sessionmaker, telegram_id)
    async with sessionmaker.begin() as session:
        from models import Resident, User

        vesele = await session.scalar(select(Settlement).where(Settlement.code == "vesele"))
        for resident in await session.scalars(select(Resident)):
            resident.last_settlement_id = vesele.id
        worker = await session.scalar(select(Worker))
        admin = SurveyAdmin(session, clock, KYIV)
        survey, n = await admin.define(worker, GOOD)
        assert n == 2 and survey.anonymous
        assert await admin.launch(worker, survey.id, audience="residents", settlement_ids=[vesele.id]) == 6
        answering = SurveyService(session, clock)
        users = (await session.scalars(select(User).where(User.telegram_id > 6200).order_by(User.id))).all()
        # Five say yes and score 5, 4, 4, 3, 2 (average 3.6); one says no (no score asked).
        for user, score in zip(users, (5, 4, 4, 3, 2, None), strict=True):
            invitation = (await answering.unfinished(user))[0][0]
            step = await answering.open(user, invitation.id)
            assert step.question is not None
            step = await answering.pick(user, invitation.id, step.question.id, "yes" if score else "no")
            if score:
                assert step.question is not None and step.question.kind == "scale"
                step = await answering.scale(user, invitation.id, step.question.id, score)
            assert step.question is None
        scope = ReportScope((vesele.hromada_id,))
        table = await survey_results_table(session, scope, survey.id)
        by_period = await survey_results_table(session, scope, Period(NOW.date(), NOW.date()))
        elsewhere = await survey_results_table(session, ReportScope((vesele.hromada_id + 1000,)), survey.id)
        assert (await session.get(Survey, survey.id)).state == "active"
    assert table.rows[0][4] == 6
    assert [row[3:] for row in table.rows[1:]] == [("Так", 5, None), ("Ні", 1, None), (None, 5, 3.6)]
    assert by_period.rows == table.rows
    assert elsewhere.rows == ()
    # The small-count rule at the edge: 1 → "<5", 5 and 6 stay.
    assert [row[4] for row in table.published()] == [6, 5, "<5", 5]
