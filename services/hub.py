"""The services of one update, all over the update's one database session (its unit of work).

The session middleware builds one `Services` per update and hands it to handlers as
`services`; handlers never see the session. Each service is made on first use."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from services.announcements import AnnouncementService
from services.application_desk import ApplicationDesk
from services.applications import ApplicationService
from services.case_actions import CaseActions
from services.cases import IntakeService, ResidentCases
from services.catalogue import CatalogueService
from services.clock import Clock
from services.conversation import Conversation
from services.documents import DocumentService
from services.mobile_office import MobileOfficeService
from services.places import PlaceSearch
from services.queues import QueueService
from services.referrals import ReferralService
from services.reminders import ReminderRules
from services.reply_book import ReplyBook
from services.report_sections import FEATURE_SECTIONS
from services.report_service import ReportService
from services.satisfaction import SatisfactionService
from services.survey_admin import SurveyAdmin
from services.surveys import SurveyService
from services.users import UserService
from services.visits import VisitService
from services.workers import RoutingAdmin, WorkerService


class Services:
    def __init__(self, session: AsyncSession, clock: Clock, rules: ReminderRules) -> None:
        self.session = session
        self.clock = clock
        self.rules = rules

    @cached_property
    def users(self) -> UserService:
        return UserService(self.session)

    @cached_property
    def workers(self) -> WorkerService:
        return WorkerService(self.session)

    @cached_property
    def catalogue(self) -> CatalogueService:
        return CatalogueService(self.session)

    @cached_property
    def places(self) -> PlaceSearch:
        return PlaceSearch(self.session)

    @cached_property
    def intake(self) -> IntakeService:
        return IntakeService(self.session, self.clock, self.rules.tz)

    @cached_property
    def resident_cases(self) -> ResidentCases:
        return ResidentCases(self.session, self.clock)

    @cached_property
    def case_actions(self) -> CaseActions:
        return CaseActions(self.session, self.clock, self.rules.tz)

    @cached_property
    def conversation(self) -> Conversation:
        return Conversation(self.session, self.clock)

    @cached_property
    def queues(self) -> QueueService:
        return QueueService(self.session, self.clock, self.rules.tz)

    @cached_property
    def documents(self) -> DocumentService:
        return DocumentService(self.session, self.clock, self.rules)

    @cached_property
    def visits(self) -> VisitService:
        return VisitService(self.session, self.clock, self.rules)

    @cached_property
    def mobile_office(self) -> MobileOfficeService:
        return MobileOfficeService(self.session, self.clock, self.rules)

    @cached_property
    def applications(self) -> ApplicationService:
        return ApplicationService(self.session, self.clock, self.rules.tz)

    @cached_property
    def routing_admin(self) -> RoutingAdmin:
        return RoutingAdmin(self.session)

    @cached_property
    def application_desk(self) -> ApplicationDesk:
        return ApplicationDesk(self.session, self.clock)

    @cached_property
    def referrals(self) -> ReferralService:
        return ReferralService(self.session, self.clock)

    @cached_property
    def surveys(self) -> SurveyService:
        return SurveyService(self.session, self.clock)

    @cached_property
    def survey_admin(self) -> SurveyAdmin:
        return SurveyAdmin(self.session, self.clock, self.rules.tz)

    @cached_property
    def reports(self) -> ReportService:
        return ReportService(self.session, self.clock, self.rules.tz, extra=FEATURE_SECTIONS)

    @cached_property
    def replies(self) -> ReplyBook:
        return ReplyBook(self.session, self.clock, self.rules.tz)

    @cached_property
    def announcements(self) -> AnnouncementService:
        return AnnouncementService(self.session, self.clock, self.rules.tz)

    @cached_property
    def satisfaction(self) -> SatisfactionService:
        return SatisfactionService(self.session, self.clock)
