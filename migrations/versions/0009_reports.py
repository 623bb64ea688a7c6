"""reports: application-status lookups counted per hromada (no personal data)

Revision ID: 0009_reports
Revises: 0008_surveys
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_reports"
down_revision: str | None = "0008_surveys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "status_lookups",
        sa.Column("id", _PK, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hromada_id", _PK, nullable=True),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["hromada_id"], ["hromadas.id"], name="fk_status_lookups_hromada_id_hromadas", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_status_lookups"),
    )
    op.create_index("ix_status_lookups_hromada_at", "status_lookups", ["hromada_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_status_lookups_hromada_at", table_name="status_lookups")
    op.drop_table("status_lookups")
