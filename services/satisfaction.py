"""Satisfaction ratings: a resolved case's resident is asked once for 1–5 and an optional comment.

`ask_for_rating` is called by services/case_actions.py when a case becomes resolved; it queues
one `rating_request` outbox row per case (dedupe key), non-urgent, so quiet hours apply. The
resident rates once: a second press, an old button or someone else's case is refused (another
person's case looks like a missing one). The comment is the resident's own words: cleaned,
length-checked, erased with the person (services/privacy.py) and never in a report.

`satisfaction_table` is the report section: per team and service, how many ratings, their
average and the share of 4s and 5s. Average and share are left empty for fewer than
`SMALL_COUNT` ratings: one rating's average is that person's rating.
"""

from __future__ import annotations

from datetime import tzinfo

from sqlalchemy import case as when
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from models import Case, CaseRating, Resident, Service, Team, User
from models.cases import RESOLVED
from services.clock import Clock
from services.errors import DomainError
from services.outbox import enqueue
from services.reminders import default_zone
from services.report_tables import SMALL_COUNT, Column, Period, ReportScope, ReportTable
from services.text import clean, has_words

RATINGS = range(1, 6)
HIGH_RATING = 4
COMMENT_MAX = 1000
RATING_REQUEST = "rating_request"


class RatingError(DomainError):
    """A refused rating (`rating.error.<code>`): not_found, already_rated, comment_too_long,
    comment_words, no_rating."""

    prefix = "rating.error"
    code = "not_found"


def rating_dedupe_key(case_id: int) -> str:
    return f"rating:{case_id}"


async def ask_for_rating(session: AsyncSession, case: Case, clock: Clock) -> None:
    """Queue the one question to the case's resident (nothing when their data is gone)."""
    row = (
        await session.execute(
            select(User, Resident.erased_at, Resident.consent_at)
            .join(Resident, Resident.user_id == User.id)
            .where(Resident.id == case.resident_id)
        )
    ).first()
    if row is None or row[1] is not None or row[2] is None:
        return
    await enqueue(
        session,
        user=row[0],
        kind=RATING_REQUEST,
        payload={"case_id": case.id, "number": case.number},
        case_id=case.id,
        due_at=clock.now(),
        dedupe_key=rating_dedupe_key(case.id),
    )


class SatisfactionService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    async def _own_resolved_case(self, user: User, case_id: int) -> Case:
        case = await self.session.scalar(
            select(Case)
            .join(Resident, Resident.id == Case.resident_id)
            .where(Case.id == case_id, Resident.user_id == user.id, Resident.erased_at.is_(None))
        )
        if case is None or case.status != RESOLVED:
            raise RatingError("not_found")
        return case

    async def rate(self, user: User, case_id: int, rating: int) -> CaseRating:
        """Store the resident's rating of their resolved case; once only."""
        if rating not in RATINGS:
            raise RatingError("not_found")
        case = await self._own_resolved_case(user, case_id)
        if await self.session.scalar(select(CaseRating.id).where(CaseRating.case_id == case.id)):
            raise RatingError("already_rated")
        stored = CaseRating(case_id=case.id, rating=rating, rated_at=self.clock.now())
        try:
            async with self.session.begin_nested():
                self.session.add(stored)
        except IntegrityError:  # a double tap racing this one stored it first
            raise RatingError("already_rated") from None
        return stored

    async def comment(self, user: User, case_id: int, text: str | None) -> CaseRating:
        """The optional comment after the rating: words, within the limit, written once."""
        comment = clean(text, COMMENT_MAX, multiline=True, error=RatingError, code="comment_too_long")
        if not has_words(comment):
            raise RatingError("comment_words")
        case = await self._own_resolved_case(user, case_id)
        rating = await self.session.scalar(select(CaseRating).where(CaseRating.case_id == case.id))
        if rating is None:
            raise RatingError("no_rating")
        if rating.comment:
            raise RatingError("already_rated")
        rating.comment = comment
        await self.session.flush()
        return rating


SATISFACTION_COLUMNS = (
    Column("satisfaction.col.team"),
    Column("satisfaction.col.service"),
    Column("satisfaction.col.count", "count"),
    Column("satisfaction.col.average", "number"),
    Column("satisfaction.col.high_share", "percent"),
)


async def satisfaction_table(
    session: AsyncSession, scope: ReportScope, period: Period, zone: tzinfo | None = None
) -> ReportTable:
    """Ratings given in the period on cases of the scope's hromadas, per team and service:
    count, average (one decimal) and share of 4–5 (percent). Names in Ukrainian, the report's
    language of record."""
    begin, end = period.bounds(zone or default_zone())
    high = func.sum(when((CaseRating.rating >= HIGH_RATING, 1), else_=0))
    rows = (
        await session.execute(
            select(
                Team.name_uk,
                Service.name_uk,
                func.count(CaseRating.id),
                func.avg(CaseRating.rating),
                high,
            )
            .select_from(CaseRating)
            .join(Case, Case.id == CaseRating.case_id)
            .join(Team, Team.id == Case.team_id)
            .join(Service, Service.id == Case.service_id)
            .where(
                Case.hromada_id.in_(scope.hromada_ids),
                CaseRating.rated_at >= begin,
                CaseRating.rated_at < end,
            )
            .group_by(Team.name_uk, Service.name_uk)
            .order_by(Team.name_uk, Service.name_uk)
        )
    ).all()
    out: list[tuple[str, str, int, float | None, float | None]] = []
    for team, service, count, average, high_count in rows:
        if count < SMALL_COUNT:
            out.append((team, service, count, None, None))
        else:
            out.append((team, service, count, round(float(average), 1), round(100 * high_count / count, 1)))
    return ReportTable("satisfaction.title", SATISFACTION_COLUMNS, out)
