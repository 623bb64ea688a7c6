"""The unit-of-work middleware: commit or roll back, and kick delivery after a commit that queued."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.middlewares import DbSessionMiddleware
from models import OutboxMessage, User, utcnow
from services.outbox import enqueue


class CountingDelivery:
    def __init__(self) -> None:
        self.kicks = 0

    def kick(self) -> None:
        self.kicks += 1


async def _user(sessionmaker) -> User:
    async with sessionmaker.begin() as session:
        user = User(telegram_id=90001, language="uk")
        session.add(user)
    return user


async def test_commit_then_kick_only_when_something_was_queued(sessionmaker) -> None:
    user = await _user(sessionmaker)
    middleware = DbSessionMiddleware(sessionmaker)
    delivery = CountingDelivery()

    async def queues(event, data):
        await enqueue(data["session"], user=user, kind="case_status_changed", payload={}, due_at=utcnow())

    async def quiet(event, data):
        return None

    await middleware(quiet, object(), {"delivery": delivery})
    assert delivery.kicks == 0
    await middleware(queues, object(), {"delivery": delivery})
    assert delivery.kicks == 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


async def test_a_failing_handler_rolls_back_and_sends_nothing(sessionmaker) -> None:
    user = await _user(sessionmaker)
    middleware = DbSessionMiddleware(sessionmaker)
    delivery = CountingDelivery()

    async def fails(event, data):
        await enqueue(data["session"], user=user, kind="case_status_changed", payload={}, due_at=utcnow())
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await middleware(fails, object(), {"delivery": delivery})
    assert delivery.kicks == 0
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


async def test_a_user_who_writes_is_reachable_again(make_client, sessionmaker) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    client = make_client()
    await client.send("/start")
    async with sessionmaker.begin() as session:
        await session.execute(
            update(User).values(reachable=False, unreachable_since=datetime(2026, 11, 1, tzinfo=UTC))
        )
    await client.send("/help")
    async with sessionmaker() as session:
        user = await session.scalar(select(User))
        assert user is not None and user.reachable and user.unreachable_since is None
