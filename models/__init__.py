"""SQLAlchemy models. Importing this package registers every table on `Base.metadata`."""

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
from models.sla import SlaPolicy, WorkCalendar
from models.visits import MobileOfficeBooking, MobileOfficeSchedule, MobileOfficeSubscription, Visit

__all__ = [
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
    "Resident",
    "RoutingRule",
    "Service",
    "Settlement",
    "SlaPolicy",
    "Team",
    "TeamMember",
    "User",
    "Visit",
    "WorkCalendar",
    "Worker",
    "utcnow",
]
