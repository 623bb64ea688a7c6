"""sla: working calendars, SLA policies, a case's SLA columns, queue indexes with the breach key

The sweep reads `ix_cases_sla_next_check` (partial: only cases with a next check), so an idle run
is one empty index range scan. The queue indexes gain `sla_breached DESC` after the priority so
breaching cases come first within a priority without a sort.

Revision ID: 0012_sla
Revises: 0011_announcements
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_sla"
down_revision: str | None = "0011_announcements"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NEXT_CHECK_SET = sa.text("sla_next_check_at IS NOT NULL")


def _queue_indexes(with_breach: bool) -> None:
    breach = [sa.text("sla_breached DESC")] if with_breach else []
    op.create_index(
        "ix_cases_team_queue", "cases", ["team_id", "status", sa.text("priority DESC"), *breach, "created_at"]
    )
    op.create_index(
        "ix_cases_assignee_queue",
        "cases",
        ["assignee_worker_id", "status", sa.text("priority DESC"), *breach, "created_at"],
    )


def upgrade() -> None:
    op.create_table(
        "work_calendars",
        sa.Column("id", _PK, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("team_id", _PK, nullable=True),
        sa.Column("week", sa.JSON(), nullable=False),
        sa.Column("public_holidays", sa.Boolean(), nullable=False),
        sa.Column("exceptions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_work_calendars_team_id_teams", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_work_calendars"),
        sa.UniqueConstraint("code", name="uq_work_calendars_code"),
        sa.UniqueConstraint("team_id", name="uq_work_calendars_team_id"),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", _PK, nullable=False),
        sa.Column("service_id", _PK, nullable=False),
        sa.Column("min_priority", sa.Integer(), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name="fk_sla_policies_service_id_services", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sla_policies"),
        sa.UniqueConstraint("service_id", "min_priority", name="uq_sla_policies_service_id_min_priority"),
    )
    with op.batch_alter_table("cases") as batch_op:
        batch_op.add_column(sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolution_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("first_responded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_state", sa.String(length=12), nullable=True))
        batch_op.add_column(
            sa.Column("sla_breached", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("sla_paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sla_paused_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("sla_escalation_step", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("sla_next_check_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_cases_team_queue", table_name="cases")
    op.drop_index("ix_cases_assignee_queue", table_name="cases")
    _queue_indexes(with_breach=True)
    op.create_index(
        "ix_cases_sla_next_check",
        "cases",
        ["sla_next_check_at"],
        postgresql_where=_NEXT_CHECK_SET,
        sqlite_where=_NEXT_CHECK_SET,
    )


def downgrade() -> None:
    op.drop_index("ix_cases_sla_next_check", table_name="cases")
    op.drop_index("ix_cases_team_queue", table_name="cases")
    op.drop_index("ix_cases_assignee_queue", table_name="cases")
    _queue_indexes(with_breach=False)
    with op.batch_alter_table("cases") as batch_op:
        for column in (
            "sla_next_check_at",
            "sla_escalation_step",
            "sla_paused_seconds",
            "sla_paused_at",
            "sla_breached",
            "sla_state",
            "first_responded_at",
            "resolution_due_at",
            "first_response_due_at",
        ):
            batch_op.drop_column(column)
    op.drop_table("sla_policies")
    op.drop_table("work_calendars")
