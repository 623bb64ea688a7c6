"""Needs-assessment surveys for residents: answering in the chat, and the results.

No aiogram. (Coordinators define and launch surveys in services/survey_admin.py.) The progress
— the current question — lives in the invitation row, so "Later", a restart or another instance
resumes where the person stopped; conditions skip questions whose condition does not hold.

Anonymity: answers hang off a response with a random id; an anonymous survey's response has no
user, and the invitation's pointer to it is dropped when the last answer is given, so nothing an
export reads joins an answer to a person. The results (`survey_results_table`) are counts per
settlement, question and option and scale averages, under the "<5" rule; free-text answers are
only counted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    OutboxMessage,
    Settlement,
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyQuestion,
    SurveyResponse,
    User,
)
from models.surveys import (
    DONE,
    INVITED,
    STARTED,
    SURVEY_ACTIVE,
)
from services.clock import Clock
from services.errors import DomainError
from services.report_tables import SMALL_COUNT, Cell, Column, Period, ReportScope, ReportTable
from services.survey_spec import SCALE_MAX, SCALE_MIN
from services.text import clean, has_words

KYIV = ZoneInfo("Europe/Kyiv")
INVITATION_KIND = "survey_invitation"
TEXT_ANSWER_MAX = 1000


class SurveyError(DomainError):
    """A refused survey action (`surveys.error.<code>`)."""

    prefix = "surveys.error"


@dataclass(frozen=True)
class Step:
    """Where a person is in a survey: the question to show (None when finished), what they
    picked so far on it, its number among the survey's questions. `stale` when the press that
    led here was meant for another question."""

    invitation: SurveyInvitation
    survey: Survey
    question: SurveyQuestion | None
    number: int = 0
    total: int = 0
    selected: tuple[str, ...] = ()
    stale: bool = False


@dataclass
class _Progress:
    questions: list[SurveyQuestion]
    answers: dict[int, SurveyAnswer] = field(default_factory=dict)


def invitation_dedupe_key(survey_id: int, user_id: int) -> str:
    return f"survey:{survey_id}:{user_id}"


class SurveyService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    # -- residents ------------------------------------------------------------------------------
    async def unfinished(self, user: User) -> list[tuple[SurveyInvitation, Survey]]:
        """The person's invitations to active surveys not answered to the end, oldest first."""
        rows = (
            await self.session.execute(
                select(SurveyInvitation, Survey)
                .join(Survey, Survey.id == SurveyInvitation.survey_id)
                .where(
                    SurveyInvitation.user_id == user.id,
                    SurveyInvitation.state.in_((INVITED, STARTED)),
                    Survey.state == SURVEY_ACTIVE,
                )
                .order_by(SurveyInvitation.id)
            )
        ).all()
        return [(invitation, survey) for invitation, survey in rows]

    async def open(self, user: User, invitation_id: int) -> Step:
        """Start or resume: the question the person stopped at."""
        invitation, survey = await self._own(user, invitation_id)
        if invitation.state == INVITED:
            response = SurveyResponse(
                id=uuid.uuid4().hex,
                survey_id=survey.id,
                settlement_id=invitation.settlement_id,
                user_id=None if survey.anonymous else user.id,
            )
            self.session.add(response)
            await self.session.flush()
            invitation.response_id = response.id
            invitation.state = STARTED
            progress = await self._progress(invitation)
            return await self._move_to(invitation, survey, progress, after=0)
        return await self._step(invitation, survey, await self._progress(invitation))

    async def pick(self, user: User, invitation_id: int, question_id: int, option: str) -> Step:
        """A single-choice answer (moves on) or a multi-choice toggle (stays)."""
        invitation, survey, progress, question = await self._at(user, invitation_id, question_id)
        if question is None:
            return await self._step(invitation, survey, progress, stale=True)
        if question.kind not in ("single", "multi") or option not in {o["code"] for o in question.options}:
            raise SurveyError("stale")
        answer = self._answer(invitation, question, progress)
        if question.kind == "single":
            answer.option_codes = [option]
            return await self._move_to(invitation, survey, progress, after=question.position)
        picked = list(answer.option_codes or [])
        picked = [c for c in picked if c != option] if option in picked else [*picked, option]
        # Kept in the options' order, so the buttons and the stored answer read the same.
        answer.option_codes = [o["code"] for o in question.options if o["code"] in picked]
        await self.session.flush()
        return await self._step(invitation, survey, progress)

    async def finish_multi(self, user: User, invitation_id: int, question_id: int) -> Step:
        invitation, survey, progress, question = await self._at(user, invitation_id, question_id)
        if question is None:
            return await self._step(invitation, survey, progress, stale=True)
        answer = progress.answers.get(question.id)
        if question.kind != "multi":
            raise SurveyError("stale")
        if answer is None or not answer.option_codes:
            if question.required:
                raise SurveyError("pick_one")
        return await self._move_to(invitation, survey, progress, after=question.position)

    async def scale(self, user: User, invitation_id: int, question_id: int, value: int) -> Step:
        invitation, survey, progress, question = await self._at(user, invitation_id, question_id)
        if question is None:
            return await self._step(invitation, survey, progress, stale=True)
        if question.kind != "scale" or not SCALE_MIN <= value <= SCALE_MAX:
            raise SurveyError("stale")
        self._answer(invitation, question, progress).scale_value = value
        return await self._move_to(invitation, survey, progress, after=question.position)

    async def text(self, user: User, invitation_id: int, question_id: int, typed: str) -> Step:
        invitation, survey, progress, question = await self._at(user, invitation_id, question_id)
        if question is None:
            return await self._step(invitation, survey, progress, stale=True)
        if question.kind != "text":
            raise SurveyError("stale")
        value = clean(typed, TEXT_ANSWER_MAX, multiline=True, error=SurveyError, code="text_too_long")
        if not has_words(value):
            raise SurveyError("text_no_words")
        self._answer(invitation, question, progress).text = value
        return await self._move_to(invitation, survey, progress, after=question.position)

    async def skip(self, user: User, invitation_id: int, question_id: int) -> Step:
        invitation, survey, progress, question = await self._at(user, invitation_id, question_id)
        if question is None:
            return await self._step(invitation, survey, progress, stale=True)
        if question.required:
            raise SurveyError("required")
        existing = progress.answers.pop(question.id, None)
        if existing is not None:
            await self.session.delete(existing)
        return await self._move_to(invitation, survey, progress, after=question.position)

    # -- progress -------------------------------------------------------------------------------
    async def _own(self, user: User, invitation_id: int) -> tuple[SurveyInvitation, Survey]:
        invitation = await self.session.get(SurveyInvitation, invitation_id)
        if invitation is None or invitation.user_id != user.id:
            raise SurveyError("stale")
        survey = await self.session.get(Survey, invitation.survey_id)
        if survey is None:
            raise SurveyError("stale")
        if invitation.state == DONE:
            raise SurveyError("done")
        if survey.state != SURVEY_ACTIVE:
            raise SurveyError("closed")
        return invitation, survey

    async def _at(
        self, user: User, invitation_id: int, question_id: int
    ) -> tuple[SurveyInvitation, Survey, _Progress, SurveyQuestion | None]:
        """The invitation in progress and the question pressed, or None for the question when the
        press belongs to another question than the current one (an old button)."""
        invitation, survey = await self._own(user, invitation_id)
        if invitation.state != STARTED:
            return invitation, survey, await self._progress(invitation), None
        progress = await self._progress(invitation)
        if invitation.current_question_id != question_id:
            return invitation, survey, progress, None
        question = next(q for q in progress.questions if q.id == question_id)
        return invitation, survey, progress, question

    async def _progress(self, invitation: SurveyInvitation) -> _Progress:
        questions = list(
            (
                await self.session.scalars(
                    select(SurveyQuestion)
                    .where(SurveyQuestion.survey_id == invitation.survey_id)
                    .order_by(SurveyQuestion.position)
                )
            ).all()
        )
        progress = _Progress(questions)
        if invitation.response_id is not None:
            answers = await self.session.scalars(
                select(SurveyAnswer).where(SurveyAnswer.response_id == invitation.response_id)
            )
            progress.answers = {a.question_id: a for a in answers}
        return progress

    def _answer(
        self, invitation: SurveyInvitation, question: SurveyQuestion, progress: _Progress
    ) -> SurveyAnswer:
        answer = progress.answers.get(question.id)
        if answer is None:
            assert invitation.response_id is not None
            answer = SurveyAnswer(
                response_id=invitation.response_id, question_id=question.id, option_codes=[]
            )
            self.session.add(answer)
            progress.answers[question.id] = answer
        return answer

    def _applies(self, question: SurveyQuestion, progress: _Progress) -> bool:
        if not question.condition_question:
            return True
        source = next((q for q in progress.questions if q.code == question.condition_question), None)
        answer = progress.answers.get(source.id) if source else None
        given = set(answer.option_codes or []) if answer else set()
        return bool(given & set(question.condition_options))

    async def _move_to(
        self, invitation: SurveyInvitation, survey: Survey, progress: _Progress, *, after: int
    ) -> Step:
        """Go to the next question after position `after` whose condition holds, or finish."""
        nxt = next((q for q in progress.questions if q.position > after and self._applies(q, progress)), None)
        if nxt is None:
            await self._finish(invitation, survey, progress)
            return Step(invitation, survey, None, total=len(progress.questions))
        invitation.current_question_id = nxt.id
        await self.session.flush()
        return await self._step(invitation, survey, progress)

    async def _finish(self, invitation: SurveyInvitation, survey: Survey, progress: _Progress) -> None:
        response = await self.session.get(SurveyResponse, invitation.response_id)
        assert response is not None
        # Answers to questions a changed answer made inapplicable are not part of the response.
        for question in progress.questions:
            answer = progress.answers.get(question.id)
            if answer is not None and not self._applies(question, progress):
                await self.session.delete(answer)
        response.submitted_at = self.clock.now()
        invitation.state = DONE
        invitation.current_question_id = None
        if survey.anonymous:
            invitation.response_id = None
        await self.session.flush()

    async def _step(
        self, invitation: SurveyInvitation, survey: Survey, progress: _Progress, *, stale: bool = False
    ) -> Step:
        question = next((q for q in progress.questions if q.id == invitation.current_question_id), None)
        if question is None:
            return Step(invitation, survey, None, total=len(progress.questions), stale=stale)
        answer = progress.answers.get(question.id)
        return Step(
            invitation,
            survey,
            question,
            number=question.position,
            total=len(progress.questions),
            selected=tuple(answer.option_codes or []) if answer else (),
            stale=stale,
        )


# -- send-time check and erasure --------------------------------------------------------------------
async def invitation_gone(session: AsyncSession, message: OutboxMessage) -> bool:
    """An invitation is not sent once its survey closed or the person already answered it."""
    invitation_id = (message.payload or {}).get("invitation_id")
    if not isinstance(invitation_id, int):
        return True
    row = (
        await session.execute(
            select(SurveyInvitation.state, Survey.state)
            .join(Survey, Survey.id == SurveyInvitation.survey_id)
            .where(SurveyInvitation.id == invitation_id)
        )
    ).first()
    return row is None or row[0] == DONE or row[1] != SURVEY_ACTIVE


async def erase_survey_person(session: AsyncSession, user_id: int) -> None:
    """On erasure: answers still being given (linked to the person) and a named survey's
    responses go; so do the invitations. Finished anonymous responses stay: nothing leads
    from them to the person."""
    linked = select(SurveyInvitation.response_id).where(
        SurveyInvitation.user_id == user_id, SurveyInvitation.response_id.is_not(None)
    )
    await session.execute(delete(SurveyResponse).where(SurveyResponse.id.in_(linked)))
    await session.execute(delete(SurveyResponse).where(SurveyResponse.user_id == user_id))
    await session.execute(delete(SurveyInvitation).where(SurveyInvitation.user_id == user_id))


# -- results --------------------------------------------------------------------------------------
RESULT_COLUMNS = (
    Column("surveys.col.survey"),
    Column("surveys.col.settlement"),
    Column("surveys.col.question"),
    Column("surveys.col.answer"),
    Column("surveys.col.count", "count"),
    Column("surveys.col.average", "number"),
)


async def survey_results_table(
    session: AsyncSession,
    scope: ReportScope,
    period_or_survey: Period | int,
    *,
    lang: str = "uk",
    zone: tzinfo = KYIV,
) -> ReportTable:
    """Finished responses of one survey (by id), or of every survey answered within a period,
    from settlements of the scope's hromadas. Per survey and settlement: a row with the number
    of responses (question and answer empty), then per question: one row per option with how
    many chose it (choices), or the number of answers and their average (scale; the average only
    from SMALL_COUNT answers on), or the number of text answers (their words are not shown)."""
    conditions: list[ColumnElement[bool]] = [
        SurveyResponse.submitted_at.is_not(None),
        Settlement.hromada_id.in_(scope.hromada_ids),
    ]
    if isinstance(period_or_survey, Period):
        begin, end = period_or_survey.bounds(zone)
        conditions += [SurveyResponse.submitted_at >= begin, SurveyResponse.submitted_at < end]
    else:
        conditions.append(SurveyResponse.survey_id == period_or_survey)
    responses = (
        await session.execute(
            select(SurveyResponse.id, SurveyResponse.survey_id, Settlement)
            .join(Settlement, Settlement.id == SurveyResponse.settlement_id)
            .where(*conditions)
        )
    ).all()
    if not responses:
        return ReportTable("surveys.results", RESULT_COLUMNS, ())
    place_of = {response_id: (survey_id, settlement) for response_id, survey_id, settlement in responses}
    surveys = {
        s.id: s
        for s in await session.scalars(select(Survey).where(Survey.id.in_({v[0] for v in place_of.values()})))
    }
    questions: dict[int, list[SurveyQuestion]] = {}
    for question in await session.scalars(
        select(SurveyQuestion).where(SurveyQuestion.survey_id.in_(surveys)).order_by(SurveyQuestion.position)
    ):
        questions.setdefault(question.survey_id, []).append(question)
    answers = (
        await session.scalars(select(SurveyAnswer).where(SurveyAnswer.response_id.in_(list(place_of))))
    ).all()
    # (survey, settlement) -> question -> the answers given there.
    given: dict[tuple[int, int], dict[int, list[SurveyAnswer]]] = {}
    counted: dict[tuple[int, int], int] = {}
    settlements: dict[int, Settlement] = {}
    for survey_id, settlement in place_of.values():
        key = (survey_id, settlement.id)
        counted[key] = counted.get(key, 0) + 1
        settlements[settlement.id] = settlement
    for answer in answers:
        survey_id, settlement = place_of[answer.response_id]
        given.setdefault((survey_id, settlement.id), {}).setdefault(answer.question_id, []).append(answer)
    rows: list[tuple[Cell, ...]] = []
    order = sorted(counted, key=lambda k: (surveys[k[0]].title(lang), settlements[k[1]].name(lang)))
    for survey_id, settlement_id in order:
        title, place = surveys[survey_id].title(lang), settlements[settlement_id].name(lang)
        rows.append((title, place, None, None, counted[(survey_id, settlement_id)], None))
        by_question = given.get((survey_id, settlement_id), {})
        for question in questions.get(survey_id, []):
            rows.extend(_question_rows(title, place, question, by_question.get(question.id, []), lang))
    return ReportTable("surveys.results", RESULT_COLUMNS, tuple(rows))


def _question_rows(
    title: str, place: str, question: SurveyQuestion, answers: list[SurveyAnswer], lang: str
) -> list[tuple[Cell, ...]]:
    text = question.text(lang)
    if question.kind in ("single", "multi"):
        return [
            (
                title,
                place,
                text,
                question.option_label(option["code"], lang),
                sum(1 for a in answers if option["code"] in (a.option_codes or [])),
                None,
            )
            for option in question.options
        ]
    if question.kind == "scale":
        values = [a.scale_value for a in answers if a.scale_value is not None]
        average = round(sum(values) / len(values), 2) if len(values) >= SMALL_COUNT else None
        return [(title, place, text, None, len(values), average)]
    return [(title, place, text, None, sum(1 for a in answers if a.text), None)]
