"""SQLAlchemy models. Importing this package registers every table on `Base.metadata`."""

from models.announcements import Announcement
from models.applications import (
    Application,
    ApplicationStatus,
    ApplicationStatusAlias,
    ApplicationStatusChange,
    ApplicationSubscription,
    LookupAttempt,
)
from models.audit import AuditEntry
from models.base import Base, utcnow
from models.cases import Attachment, Case, CaseCounter, CaseEvent, CaseMessage, DocumentRequest
from models.conversation import CaseChatLink, InboundMessage
from models.fsm import FsmRecord
from models.outbox import OutboxMessage
from models.people import Invite, Resident, TeamMember, User, Worker
from models.reference import DocumentRequirement, Hromada, RoutingRule, Service, Settlement, Team
from models.referrals import PartnerAgency, Referral
from models.replies import SavedReply
from models.reports import StatusLookup
from models.satisfaction import CaseRating
from models.sla import SlaPolicy, WorkCalendar
from models.surveys import Survey, SurveyAnswer, SurveyInvitation, SurveyQuestion, SurveyResponse
from models.visits import MobileOfficeBooking, MobileOfficeSchedule, MobileOfficeSubscription, Visit

__all__ = [
    "Announcement",
    "Application",
    "ApplicationStatus",
    "ApplicationStatusAlias",
    "ApplicationStatusChange",
    "ApplicationSubscription",
    "Attachment",
    "AuditEntry",
    "Base",
    "Case",
    "CaseChatLink",
    "CaseCounter",
    "CaseEvent",
    "CaseMessage",
    "CaseRating",
    "DocumentRequest",
    "DocumentRequirement",
    "FsmRecord",
    "Hromada",
    "InboundMessage",
    "Invite",
    "LookupAttempt",
    "MobileOfficeBooking",
    "MobileOfficeSchedule",
    "MobileOfficeSubscription",
    "OutboxMessage",
    "PartnerAgency",
    "Referral",
    "Resident",
    "RoutingRule",
    "SavedReply",
    "Service",
    "Settlement",
    "SlaPolicy",
    "StatusLookup",
    "Survey",
    "SurveyAnswer",
    "SurveyInvitation",
    "SurveyQuestion",
    "SurveyResponse",
    "Team",
    "TeamMember",
    "User",
    "Visit",
    "WorkCalendar",
    "Worker",
    "utcnow",
]
