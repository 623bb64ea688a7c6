"""Surveys for coordinators: define one from YAML, launch it for their settlements, close it.

No aiogram. A launch invites the residents of the chosen settlements of the coordinator's
hromadas (or the mobile office's subscribers there), now or at a time: one invitation per person
and survey (a unique key: nobody is invited twice) and one outbox row each
(`survey_invitation`, not urgent: quiet hours and the rate limits apply). Every change is audited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    AuditEntry,
    MobileOfficeSubscription,
    Resident,
    Settlement,
    Survey,
    SurveyInvitation,
    User,
    Worker,
)
from models.surveys import (
    AUDIENCE_RESIDENTS,
    AUDIENCE_SUBSCRIBERS,
    INVITED,
    SURVEY_ACTIVE,
    SURVEY_CLOSED,
    SURVEY_DRAFT,
)
from services.clock import Clock
from services.outbox import enqueue
from services.report_tables import ReportScope, ReportTable
from services.survey_spec import SurveySpecError, apply_survey, parse_survey
from services.surveys import INVITATION_KIND, SurveyError, invitation_dedupe_key, survey_results_table

SURVEYS_LISTED = 20
# "25.12.2026 10:00" (local time) for a launch at a time.
_MOMENT = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s+(\d{1,2}):(\d{2})\s*$")
MORNING = time(10, 0)


class SurveyAdmin:
    def __init__(self, session: AsyncSession, clock: Clock, tz: tzinfo) -> None:
        self.session = session
        self.clock = clock
        self.tz = tz

    def tomorrow_morning(self) -> datetime:
        """10:00 local time tomorrow: a launch that reaches people in the morning."""
        today = self.clock.now().astimezone(self.tz).date()
        return datetime.combine(today + timedelta(days=1), MORNING, tzinfo=self.tz)

    def parse_moment(self, text: str) -> datetime:
        """A local "dd.mm.yyyy HH:MM" in the future; SurveyError("bad_time") otherwise."""
        match = _MOMENT.match(text)
        if match is None:
            raise SurveyError("bad_time")
        day, month, year, hour, minute = (int(g) for g in match.groups())
        try:
            moment = datetime.combine(date(year, month, day), time(hour, minute), tzinfo=self.tz)
        except ValueError:
            raise SurveyError("bad_time") from None
        if moment <= self.clock.now() or moment - self.clock.now() > timedelta(days=366):
            raise SurveyError("bad_time")
        return moment

    async def managed_settlements(self, worker: Worker) -> list[Settlement]:
        from services.workers import RoutingAdmin

        hromada_ids = [h.id for h in await RoutingAdmin(self.session).hromadas(worker)]
        if not hromada_ids:
            raise SurveyError("not_allowed")
        return list(
            (
                await self.session.scalars(
                    select(Settlement)
                    .where(Settlement.hromada_id.in_(hromada_ids))
                    .order_by(Settlement.name_uk)
                )
            ).all()
        )

    async def surveys_for(self, worker: Worker) -> list[Survey]:
        await self.managed_settlements(worker)
        return list(
            (
                await self.session.scalars(select(Survey).order_by(Survey.id.desc()).limit(SURVEYS_LISTED))
            ).all()
        )

    async def survey(self, survey_id: int) -> Survey:
        survey = await self.session.get(Survey, survey_id)
        if survey is None:
            raise SurveyError("not_found")
        return survey

    async def define(self, worker: Worker, text: str) -> tuple[Survey, int]:
        """A coordinator's survey from YAML text; (survey, number of questions). The same code
        again replaces their own draft; another's survey or a launched one is refused."""
        await self.managed_settlements(worker)
        try:
            spec = parse_survey(text)
        except SurveySpecError as exc:
            raise SurveyError("bad_definition", reason=str(exc)) from None
        existing = await self.session.scalar(select(Survey).where(Survey.code == spec.code))
        if existing is not None:
            if existing.created_by_user_id != worker.user_id:
                raise SurveyError("code_taken", survey_code=spec.code)
            if existing.state != SURVEY_DRAFT:
                raise SurveyError("not_draft")
        survey, _changed = await apply_survey(self.session, spec, created_by_user_id=worker.user_id)
        self._audit(worker, "survey_defined", survey, {"questions": len(spec.questions)})
        return survey, len(spec.questions)

    async def results(self, worker: Worker, survey_id: int, lang: str) -> ReportTable:
        """The survey's results from the settlements of the coordinator's hromadas."""
        hromada_ids = sorted({s.hromada_id for s in await self.managed_settlements(worker)})
        survey = await self.survey(survey_id)
        return await survey_results_table(
            self.session, ReportScope(tuple(hromada_ids)), survey.id, lang=lang, zone=self.tz
        )

    def definition_problem(self, text: str) -> str | None:
        """What is wrong with a survey's YAML (line and reason), or None when it can be used."""
        try:
            parse_survey(text)
        except SurveySpecError as exc:
            return str(exc)
        return None

    async def launch(
        self,
        worker: Worker,
        survey_id: int,
        *,
        audience: str,
        settlement_ids: Sequence[int],
        send_at: datetime | None = None,
    ) -> int:
        """Invite the audience of these settlements (all must be the coordinator's); returns how
        many people were newly invited. People invited before are not invited again."""
        managed = {s.id for s in await self.managed_settlements(worker)}
        chosen = sorted(set(settlement_ids))
        if not chosen:
            raise SurveyError("no_audience")
        if not set(chosen) <= managed:
            raise SurveyError("not_allowed")
        if audience not in (AUDIENCE_RESIDENTS, AUDIENCE_SUBSCRIBERS):
            raise SurveyError("no_audience")
        survey = await self.survey(survey_id)
        if survey.state == SURVEY_CLOSED:
            raise SurveyError("closed")
        now = self.clock.now()
        due = max(send_at or now, now)
        survey.state = SURVEY_ACTIVE
        survey.audience_kind = audience
        survey.audience_settlement_ids = sorted({*survey.audience_settlement_ids, *chosen})
        survey.send_at = due
        invited = 0
        for user, settlement_id in await self._audience(audience, chosen):
            exists = await self.session.scalar(
                select(SurveyInvitation.id).where(
                    SurveyInvitation.survey_id == survey.id, SurveyInvitation.user_id == user.id
                )
            )
            if exists is not None:
                continue
            invitation = SurveyInvitation(
                survey_id=survey.id, user_id=user.id, settlement_id=settlement_id, state=INVITED, sent_at=due
            )
            self.session.add(invitation)
            await self.session.flush()
            await enqueue(
                self.session,
                user=user,
                kind=INVITATION_KIND,
                payload={
                    "invitation_id": invitation.id,
                    "title_uk": survey.title_uk,
                    "title_en": survey.title_en,
                    "intro_uk": survey.intro_uk,
                    "intro_en": survey.intro_en,
                },
                due_at=due,
                dedupe_key=invitation_dedupe_key(survey.id, user.id),
            )
            invited += 1
        self._audit(
            worker,
            "survey_launched",
            survey,
            {"audience": audience, "settlements": chosen, "invited": invited},
        )
        return invited

    async def close(self, worker: Worker, survey_id: int) -> Survey:
        await self.managed_settlements(worker)
        survey = await self.survey(survey_id)
        survey.state = SURVEY_CLOSED
        self._audit(worker, "survey_closed", survey, {})
        return survey

    async def _audience(self, audience: str, settlement_ids: list[int]) -> list[tuple[User, int]]:
        """Consenting residents living in (or, for subscribers, subscribed to) these settlements,
        each once with one settlement."""
        query: Select[Any]
        if audience == AUDIENCE_SUBSCRIBERS:
            settlement = func.min(MobileOfficeSubscription.settlement_id)
            query = (
                select(User, settlement)
                .join(MobileOfficeSubscription, MobileOfficeSubscription.user_id == User.id)
                .join(Resident, Resident.user_id == User.id)
                .where(MobileOfficeSubscription.settlement_id.in_(settlement_ids))
                .group_by(User.id)
            )
        else:
            query = (
                select(User, Resident.last_settlement_id)
                .join(Resident, Resident.user_id == User.id)
                .where(Resident.last_settlement_id.in_(settlement_ids))
            )
        query = query.where(Resident.consent_at.is_not(None), Resident.erased_at.is_(None)).order_by(User.id)
        return [
            (user, int(settlement_id)) for user, settlement_id in (await self.session.execute(query)).all()
        ]

    def _audit(self, worker: Worker, action: str, survey: Survey, data: dict[str, object]) -> None:
        self.session.add(
            AuditEntry(
                actor_user_id=worker.user_id,
                action=action,
                object_type="survey",
                object_id=str(survey.id),
                data={"code": survey.code, **data},
            )
        )
