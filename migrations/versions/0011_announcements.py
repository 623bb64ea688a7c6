"""announcements and satisfaction: announcements, case_ratings, outbox.announcement_id

A coordinator's announcement becomes one outbox row per recipient, linked by
`outbox.announcement_id` (indexed: the delivery report counts those rows by state). A resolved
case's resident rates it once (`case_ratings.case_id` is unique).

Revision ID: 0011_announcements
Revises: 0010_replies
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_announcements"
down_revision: str | None = "0010_replies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", _PK, nullable=False),
        sa.Column("team_id", _PK, nullable=True),
        sa.Column("author_worker_id", _PK, nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("photo_file_id", sa.String(length=255), nullable=True),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_announcements_team_id_teams", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["author_worker_id"],
            ["workers.id"],
            name="fk_announcements_author_worker_id_workers",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_announcements"),
    )
    op.create_index("ix_announcements_team_id", "announcements", ["team_id"])
    op.create_table(
        "case_ratings",
        sa.Column("id", _PK, nullable=False),
        sa.Column("case_id", _PK, nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_ratings_case_id_cases", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_ratings"),
        sa.UniqueConstraint("case_id", name="uq_case_ratings_case_id"),
    )
    op.create_index("ix_case_ratings_rated_at", "case_ratings", ["rated_at"])
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("announcement_id", _PK, nullable=True))
        batch_op.create_foreign_key(
            "fk_outbox_announcement_id_announcements",
            "announcements",
            ["announcement_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index("ix_outbox_announcement_id", ["announcement_id"], unique=False)
    # An announcement to a settlement's residents selects them by their last named settlement.
    op.create_index("ix_residents_last_settlement_id", "residents", ["last_settlement_id"])


def downgrade() -> None:
    op.drop_index("ix_residents_last_settlement_id", table_name="residents")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_announcement_id")
        batch_op.drop_constraint("fk_outbox_announcement_id_announcements", type_="foreignkey")
        batch_op.drop_column("announcement_id")
    op.drop_index("ix_case_ratings_rated_at", table_name="case_ratings")
    op.drop_table("case_ratings")
    op.drop_index("ix_announcements_team_id", table_name="announcements")
    op.drop_table("announcements")
