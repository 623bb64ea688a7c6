"""Queueing outgoing messages. Every notification, push and reminder is an outbox row written
in the caller's transaction, so it exists exactly when what caused it was committed.

A row holds its kind and plain values: raw names and texts, ids, local ISO dates — never HTML,
translated text or callback data. The delivery engine renders it in the recipient's language
with handlers/kit/notices.py, which knows each kind's text and buttons. Every payload is stamped
with PAYLOAD_VERSION so rows written in an earlier shape are still recognised and rendered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models import OutboxMessage, User
from models.outbox import CANCELLED, PENDING

# Set on the session when a message is queued; the unit-of-work middleware kicks delivery
# after its commit.
OUTBOX_DIRTY = "outbox_dirty"
# Payloads of plain values carry this stamp; rows without it were queued in the earlier,
# pre-rendered shape.
VERSION_KEY = "v"
PAYLOAD_VERSION = 2


async def enqueue(
    session: AsyncSession,
    *,
    user: User | None,
    kind: str,
    chat_id: int | None = None,
    payload: dict[str, Any] | None = None,
    due_at: datetime,
    urgent: bool = False,
    dedupe_key: str | None = None,
    case_id: int | None = None,
    visit_id: int | None = None,
    document_request_id: int | None = None,
    application_id: int | None = None,
) -> OutboxMessage | None:
    """Add a message for `user` (or, with user=None, for a group `chat_id`); with a `dedupe_key`
    already queued, returns None and adds nothing. `due_at` has no default: it comes from the
    caller's clock ("now" for a notice), so a service run on a test or simulated clock never
    queues a row that its deliverer sees as due in the future."""
    if user is None and chat_id is None:
        raise ValueError("enqueue needs a user or a chat_id")
    values: dict[str, Any] = {
        "kind": kind,
        "user_id": user.id if user else None,
        "chat_id": user.telegram_id if user else chat_id,
        "due_at": due_at,
        "urgent": urgent,
        "payload": {**(payload or {}), VERSION_KEY: PAYLOAD_VERSION},
        "state": PENDING,
        "dedupe_key": dedupe_key,
        "case_id": case_id,
        "visit_id": visit_id,
        "document_request_id": document_request_id,
        "application_id": application_id,
    }
    message: OutboxMessage | None
    if dedupe_key is None:
        message = OutboxMessage(**values)
        session.add(message)
        await session.flush()
    else:
        # One statement that adds nothing when the key exists, also when another transaction
        # is adding it right now (a check first and an insert after would race: the loser's
        # whole transaction would fail on the unique key). PostgreSQL makes the second writer
        # wait for the first one's commit, then skip.
        message = await session.scalar(
            _insert(session)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
            .returning(OutboxMessage)
        )
        if message is None:
            return None
    session.info[OUTBOX_DIRTY] = True
    return message


# Rows per INSERT statement in `enqueue_many` (SQLite binds at most 32,766 values a statement).
ENQUEUE_CHUNK = 500


async def enqueue_many(session: AsyncSession, messages: list[dict[str, Any]]) -> int:
    """Add many messages at once, each with a `dedupe_key`: a few multi-row INSERTs that, like
    `enqueue`, add nothing for a key already queued. Each dict holds `user_id`, `chat_id`, `kind`,
    `payload`, `due_at` and `dedupe_key`, optionally `urgent` and `case_id`. Returns how many
    rows were added."""
    rows = [
        {
            "urgent": False,
            "case_id": None,
            **message,
            "payload": {**message["payload"], VERSION_KEY: PAYLOAD_VERSION},
            "state": PENDING,
        }
        for message in messages
    ]
    if any(row.get("dedupe_key") is None for row in rows):
        raise ValueError("enqueue_many needs a dedupe_key on every message")
    # One cached statement, sent for many rows at once (SQLAlchemy batches them into multi-row
    # INSERTs); RETURNING yields only the rows that were added.
    statement = (
        _insert(session)
        .on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
        .returning(OutboxMessage.id)
    )
    added = 0
    for start in range(0, len(rows), ENQUEUE_CHUNK):
        inserted = await session.execute(statement, rows[start : start + ENQUEUE_CHUNK])
        added += len(inserted.all())
    if added:
        session.info[OUTBOX_DIRTY] = True
    return added


def _insert(session: AsyncSession) -> Any:
    """INSERT with ON CONFLICT for the session's database (both dialects have it)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(OutboxMessage)
    return sqlite.insert(OutboxMessage)


async def cancel_pending(session: AsyncSession, *conditions: Any) -> int:
    """Cancel pending messages matching the conditions (their reason is gone)."""
    rows = (
        await session.scalars(select(OutboxMessage).where(OutboxMessage.state == PENDING, *conditions))
    ).all()
    for row in rows:
        row.state = CANCELLED
    return len(rows)
