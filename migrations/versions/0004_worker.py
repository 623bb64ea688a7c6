"""queue indexes ordered by priority descending

Queue pages list the most urgent cases first and, within one priority, the longest-waiting
first (`ORDER BY priority DESC, created_at ASC`). With `priority` ascending in the index that
mixed order cannot be read from it, so PostgreSQL sorted every matching row; with `priority
DESC` a page is a plain index range scan with LIMIT.

Revision ID: 0004_worker
Revises: 0001_initial
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_worker"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_cases_team_queue", table_name="cases")
    op.drop_index("ix_cases_assignee_queue", table_name="cases")
    op.create_index(
        "ix_cases_team_queue", "cases", ["team_id", "status", sa.text("priority DESC"), "created_at"]
    )
    op.create_index(
        "ix_cases_assignee_queue",
        "cases",
        ["assignee_worker_id", "status", sa.text("priority DESC"), "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_cases_team_queue", table_name="cases")
    op.drop_index("ix_cases_assignee_queue", table_name="cases")
    op.create_index("ix_cases_team_queue", "cases", ["team_id", "status", "priority", "created_at"])
    op.create_index(
        "ix_cases_assignee_queue", "cases", ["assignee_worker_id", "status", "priority", "created_at"]
    )
