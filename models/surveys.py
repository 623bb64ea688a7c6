"""Needs-assessment surveys: definitions, invitations, and anonymous responses.

The link person ↔ survey is the invitation (needed to resume and not to invite twice). Answers
hang off a response whose id is random and which carries no user for an anonymous survey; the
invitation points at its response only while it is being answered, and the pointer is dropped on
completion. So nothing an export can read joins an answer to a person.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow

SURVEY_DRAFT = "draft"
SURVEY_ACTIVE = "active"
SURVEY_CLOSED = "closed"

QUESTION_KINDS = ("single", "multi", "scale", "text")

INVITED = "invited"
STARTED = "started"
DONE = "done"

AUDIENCE_RESIDENTS = "residents"
AUDIENCE_SUBSCRIBERS = "subscribers"


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title_uk: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    intro_uk: Mapped[str] = mapped_column(Text, default="")
    intro_en: Mapped[str] = mapped_column(Text, default="")
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default=SURVEY_DRAFT)
    # Who is invited: residents of these settlements, or the mobile office's subscribers there.
    audience_kind: Mapped[str] = mapped_column(String(16), default=AUDIENCE_RESIDENTS)
    audience_settlement_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    send_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # NULL for a survey from the reference file; the coordinator's user otherwise.
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    def title(self, locale: str) -> str:
        return self.title_en if locale == "en" else self.title_uk

    def intro(self, locale: str) -> str:
        return self.intro_en if locale == "en" else self.intro_uk


class SurveyQuestion(Base):
    __tablename__ = "survey_questions"
    __table_args__ = (UniqueConstraint("survey_id", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # single | multi | scale | text
    text_uk: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    # [{"code": ..., "uk": ..., "en": ...}] for single and multi; empty otherwise.
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    # Asked only when the question with this code was answered with one of these option codes.
    condition_question: Mapped[str | None] = mapped_column(String(40))
    condition_options: Mapped[list[str]] = mapped_column(JSON, default=list)

    def text(self, locale: str) -> str:
        return self.text_en if locale == "en" else self.text_uk

    def option_label(self, code: str, locale: str) -> str:
        for option in self.options:
            if option["code"] == code:
                return str(option["en" if locale == "en" else "uk"])
        return code


class SurveyInvitation(Base):
    __tablename__ = "survey_invitations"
    __table_args__ = (
        UniqueConstraint("survey_id", "user_id"),
        Index("ix_survey_invitations_user_state", "user_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlements.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default=INVITED)
    current_question_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_questions.id", ondelete="SET NULL")
    )
    # Only while answering: dropped on completion (anonymous surveys), so done rows lead nowhere.
    response_id: Mapped[str | None] = mapped_column(ForeignKey("survey_responses.id", ondelete="SET NULL"))
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SurveyResponse(Base):
    __tablename__ = "survey_responses"
    __table_args__ = (Index("ix_survey_responses_survey_settlement", "survey_id", "settlement_id"),)

    # Random (uuid4 hex), not a sequence: its order says nothing about who answered when.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"))
    settlement_id: Mapped[int | None] = mapped_column(ForeignKey("settlements.id", ondelete="SET NULL"))
    # Set only for a survey that is not anonymous.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"
    __table_args__ = (UniqueConstraint("response_id", "question_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    response_id: Mapped[str] = mapped_column(ForeignKey("survey_responses.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id", ondelete="CASCADE"))
    option_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    scale_value: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
