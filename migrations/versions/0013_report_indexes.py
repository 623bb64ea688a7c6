"""report indexes: the scope-and-period range scans of reports; first responses backfilled

Reports select a scope's cases by filing time (`hromada_id IN (…) AND created_at` in a range)
and the SLA section by resolution due time: `ix_cases_hromada_created` and the partial
`ix_cases_hromada_due` serve both as index range scans (the older (hromada, status, created_at)
index made PostgreSQL read every case of the hromadas).

Reports read response times from `cases.first_responded_at` (services/sla.py keeps it for every
case since this revision). Cases filed before it get it from their audit trail: the first take,
assignment or status change by a worker, or the first message to the resident — what the hooks
would have recorded.

Revision ID: 0013_report_indexes
Revises: 0012_sla
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_report_indexes"
down_revision: str | None = "0012_sla"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE_SET = sa.text("resolution_due_at IS NOT NULL")

# The audit-trail entries written with a `SlaService.responded` call (services/case_actions.py).
# One UPDATE … FROM over grouped minima (SQLite ≥ 3.33 and PostgreSQL): a correlated subquery
# per case would take minutes on a million cases.
_BACKFILL_FIRST_RESPONSE = sa.text(
    """
    UPDATE cases SET first_responded_at = earliest.at
    FROM (
        SELECT answers.case_id, min(answers.at) AS at FROM (
            SELECT e.case_id, e.at FROM case_events e
            WHERE e.kind IN ('status', 'assigned', 'docs_requested', 'visit_planned')
              AND e.actor_user_id IN (SELECT w.user_id FROM workers w)
            UNION ALL
            SELECT m.case_id, m.at FROM case_messages m
            WHERE m.from_resident = false
        ) answers
        GROUP BY answers.case_id
    ) earliest
    WHERE cases.id = earliest.case_id AND cases.first_responded_at IS NULL
    """
)


def upgrade() -> None:
    op.create_index("ix_cases_hromada_created", "cases", ["hromada_id", "created_at"])
    op.create_index(
        "ix_cases_hromada_due",
        "cases",
        ["hromada_id", "resolution_due_at"],
        postgresql_where=_DUE_SET,
        sqlite_where=_DUE_SET,
    )
    op.execute(_BACKFILL_FIRST_RESPONSE)


def downgrade() -> None:
    # The backfilled first responses stay: they are what happened.
    op.drop_index("ix_cases_hromada_due", table_name="cases")
    op.drop_index("ix_cases_hromada_created", table_name="cases")
