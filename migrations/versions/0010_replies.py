"""replies: teams' saved replies, and the teams' office hours they may name

Revision ID: 0010_replies
Revises: 0009_reports
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_replies"
down_revision: str | None = "0009_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("teams") as batch_op:
        batch_op.add_column(sa.Column("office_hours_uk", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("office_hours_en", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "saved_replies",
        sa.Column("id", _PK, nullable=False),
        sa.Column("team_id", _PK, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_by_worker_id", _PK, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_saved_replies_team_id_teams", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_worker_id"],
            ["workers.id"],
            name="fk_saved_replies_created_by_worker_id_workers",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_saved_replies"),
        sa.UniqueConstraint("team_id", "code", "locale", name="uq_saved_replies_team_id_code_locale"),
    )
    op.create_index("ix_saved_replies_team_active", "saved_replies", ["team_id", "active", "position"])


def downgrade() -> None:
    op.drop_index("ix_saved_replies_team_active", table_name="saved_replies")
    op.drop_table("saved_replies")
    with op.batch_alter_table("teams") as batch_op:
        batch_op.drop_column("office_hours_en")
        batch_op.drop_column("office_hours_uk")
