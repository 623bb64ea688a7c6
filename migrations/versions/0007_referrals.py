"""referrals: partner agencies and referrals of a part of a case to them

Revision ID: 0007_referrals
Revises: 0006_conversation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_referrals"
down_revision: str | None = "0006_conversation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "partner_agencies",
        sa.Column("id", _PK, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_uk", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("team_id", _PK, nullable=True),
        sa.Column("contact_uk", sa.Text(), nullable=False),
        sa.Column("contact_en", sa.Text(), nullable=False),
        sa.Column("oblast", sa.String(length=40), nullable=False),
        sa.Column("hromadas", sa.JSON(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("remind_after_hours", sa.Integer(), nullable=True),
        sa.Column("escalate_after_hours", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_partner_agencies_team_id_teams", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_partner_agencies"),
        sa.UniqueConstraint("code", name="uq_partner_agencies_code"),
    )
    op.create_index("ix_partner_agencies_oblast", "partner_agencies", ["oblast"])
    op.create_table(
        "referrals",
        sa.Column("id", _PK, nullable=False),
        sa.Column("case_id", _PK, nullable=False),
        sa.Column("partner_id", _PK, nullable=False),
        sa.Column("referring_team_id", _PK, nullable=False),
        sa.Column("referring_worker_id", _PK, nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("attachment_ids", sa.JSON(), nullable=False),
        sa.Column("share_contact", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("answered_by_user_id", _PK, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_referrals_case_id_cases", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner_agencies.id"], name="fk_referrals_partner_id_partner_agencies"
        ),
        sa.ForeignKeyConstraint(
            ["referring_team_id"], ["teams.id"], name="fk_referrals_referring_team_id_teams"
        ),
        sa.ForeignKeyConstraint(
            ["referring_worker_id"],
            ["workers.id"],
            name="fk_referrals_referring_worker_id_workers",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["answered_by_user_id"],
            ["users.id"],
            name="fk_referrals_answered_by_user_id_users",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_referrals"),
    )
    op.create_index("ix_referrals_case_id", "referrals", ["case_id"])
    op.create_index("ix_referrals_state_due", "referrals", ["state", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_referrals_state_due", table_name="referrals")
    op.drop_index("ix_referrals_case_id", table_name="referrals")
    op.drop_table("referrals")
    op.drop_index("ix_partner_agencies_oblast", table_name="partner_agencies")
    op.drop_table("partner_agencies")
