"""The test harness itself: simultaneous users, real Telegram errors from the recording session."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import SendMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models import Resident, User


async def test_many_simultaneous_users_each_see_only_their_own_conversation(
    make_client, sessionmaker
) -> None:
    clients = [make_client(language_code="en" if i % 2 else "uk") for i in range(24)]

    async def onboard(client, language: str) -> list[str]:
        await client.send("/start")
        await client.click(language)
        replies = await client.click("✅")
        return [r.text for r in replies]

    results = await asyncio.gather(
        *(onboard(c, "English" if i % 2 else "Українська") for i, c in enumerate(clients))
    )
    for i, texts in enumerate(results):
        expected = "What would you like to do?" if i % 2 else "Що бажаєте зробити?"
        assert any(expected in t for t in texts), (i, texts)
    for client in clients:
        assert all(m.chat_id == client.chat.id for m in client.messages.values())
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 24
        consented = await session.scalar(
            select(func.count()).select_from(Resident).where(Resident.consent_at.is_not(None))
        )
        assert consented == 24


async def test_duplicate_first_updates_of_one_person_make_one_user(make_client, sessionmaker) -> None:
    client = make_client()
    await asyncio.gather(*(client.send("/start") for _ in range(5)))
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("code", "description", "retry_after", "error"),
    [
        (403, "Forbidden: bot was blocked by the user", None, TelegramForbiddenError),
        (429, "Too Many Requests: retry after 3", 3, TelegramRetryAfter),
        (400, "Bad Request: chat not found", None, TelegramBadRequest),
    ],
)
async def test_queued_errors_are_raised_by_aiogram_itself(
    bot, tg, code, description, retry_after, error
) -> None:
    tg.queue_error(code, description, retry_after=retry_after, method=SendMessage, chat_id=5)
    await bot.send_message(6, "other chat is unaffected")
    with pytest.raises(error):
        await bot.send_message(5, "hello")
    await bot.send_message(5, "the queue is FIFO and now empty")
    assert [c.ok for c in tg.calls] == [True, False, True]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=5000))
async def test_any_text_anywhere_gets_a_polite_answer_and_never_an_error(make_client, text: str) -> None:
    client = make_client()
    replies = await client.send(text)
    assert replies, "every message gets an answer"
    assert all("помилка" not in r.text and "went wrong" not in r.text for r in replies)
