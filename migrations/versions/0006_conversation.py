"""conversation: inbound messages, case chat links, the outbox's sent message id

A resident's message outside any form is kept (`inbound_messages`) until it is routed to a
case; a Telegram reply finds its case through the message id the outbox row became
(`outbox.message_id`) or a link for a message a handler sent directly (`case_chat_links`).

Revision ID: 0006_conversation
Revises: 0005_katottg
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_conversation"
down_revision: str | None = "0005_katottg"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_outbox_chat_message", ["chat_id", "message_id"], unique=False)
    op.create_table(
        "inbound_messages",
        sa.Column("id", _PK, nullable=False),
        sa.Column("user_id", _PK, nullable=False),
        sa.Column("case_id", _PK, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("file_id", sa.String(length=255), nullable=True),
        sa.Column("file_unique_id", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("mime_type", sa.String(length=100), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_inbound_messages_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_inbound_messages_case_id_cases", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_messages"),
    )
    op.create_index("ix_inbound_messages_user_state", "inbound_messages", ["user_id", "state"])
    op.create_table(
        "case_chat_links",
        sa.Column("id", _PK, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", _PK, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_case_chat_links_case_id_cases", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_case_chat_links"),
    )
    op.create_index("ix_case_chat_links_chat_message", "case_chat_links", ["chat_id", "message_id"])
    op.create_index("ix_case_chat_links_case_id", "case_chat_links", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_chat_links_case_id", table_name="case_chat_links")
    op.drop_index("ix_case_chat_links_chat_message", table_name="case_chat_links")
    op.drop_table("case_chat_links")
    op.drop_index("ix_inbound_messages_user_state", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_chat_message")
        batch_op.drop_column("message_id")
