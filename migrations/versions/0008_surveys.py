"""surveys: needs-assessment surveys, their questions, invitations, responses and answers

A survey's answers hang off a response with a random id and, for an anonymous survey, no user;
the invitation (the person ↔ survey link, for resuming and not inviting twice) points at its
response only while it is being answered.

Revision ID: 0008_surveys
Revises: 0007_referrals
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_surveys"
down_revision: str | None = "0007_referrals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", _PK, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("title_uk", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("intro_uk", sa.Text(), nullable=False),
        sa.Column("intro_en", sa.Text(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("audience_kind", sa.String(length=16), nullable=False),
        sa.Column("audience_settlement_ids", sa.JSON(), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_user_id", _PK, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name="fk_surveys_created_by_user_id_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_surveys"),
        sa.UniqueConstraint("code", name="uq_surveys_code"),
    )
    op.create_table(
        "survey_questions",
        sa.Column("id", _PK, nullable=False),
        sa.Column("survey_id", _PK, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("text_uk", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("condition_question", sa.String(length=40), nullable=True),
        sa.Column("condition_options", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], name="fk_survey_questions_survey_id_surveys", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_questions"),
        sa.UniqueConstraint("survey_id", "code", name="uq_survey_questions_survey_id_code"),
    )
    op.create_index("ix_survey_questions_survey_id", "survey_questions", ["survey_id"])

    op.create_table(
        "survey_responses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("survey_id", _PK, nullable=False),
        sa.Column("settlement_id", _PK, nullable=True),
        sa.Column("user_id", _PK, nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name="fk_survey_responses_settlement_id_settlements",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], name="fk_survey_responses_survey_id_surveys", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_survey_responses_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_responses"),
    )
    op.create_index(
        "ix_survey_responses_survey_settlement", "survey_responses", ["survey_id", "settlement_id"]
    )

    op.create_table(
        "survey_answers",
        sa.Column("id", _PK, nullable=False),
        sa.Column("response_id", sa.String(length=32), nullable=False),
        sa.Column("question_id", _PK, nullable=False),
        sa.Column("option_codes", sa.JSON(), nullable=False),
        sa.Column("scale_value", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["survey_questions.id"],
            name="fk_survey_answers_question_id_survey_questions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["survey_responses.id"],
            name="fk_survey_answers_response_id_survey_responses",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_answers"),
        sa.UniqueConstraint("response_id", "question_id", name="uq_survey_answers_response_id_question_id"),
    )
    op.create_table(
        "survey_invitations",
        sa.Column("id", _PK, nullable=False),
        sa.Column("survey_id", _PK, nullable=False),
        sa.Column("user_id", _PK, nullable=False),
        sa.Column("settlement_id", _PK, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("current_question_id", _PK, nullable=True),
        sa.Column("response_id", sa.String(length=32), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["current_question_id"],
            ["survey_questions.id"],
            name="fk_survey_invitations_current_question_id_survey_questions",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["survey_responses.id"],
            name="fk_survey_invitations_response_id_survey_responses",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name="fk_survey_invitations_settlement_id_settlements",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], name="fk_survey_invitations_survey_id_surveys", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_survey_invitations_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_invitations"),
        sa.UniqueConstraint("survey_id", "user_id", name="uq_survey_invitations_survey_id_user_id"),
    )
    op.create_index("ix_survey_invitations_user_state", "survey_invitations", ["user_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_survey_invitations_user_state", table_name="survey_invitations")

    op.drop_table("survey_invitations")
    op.drop_table("survey_answers")
    op.drop_index("ix_survey_responses_survey_settlement", table_name="survey_responses")

    op.drop_table("survey_responses")
    op.drop_index("ix_survey_questions_survey_id", table_name="survey_questions")

    op.drop_table("survey_questions")
    op.drop_table("surveys")
