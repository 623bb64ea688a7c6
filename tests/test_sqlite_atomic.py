"""An update is all-or-nothing on both databases: when the reply to the confirm press fails, the
whole update is rolled back — the case, its "created" event and the team's notice with it — and
pressing confirm again files the case once, with its event and its notice. (pysqlite's own
transaction handling lets a released savepoint commit by itself; infra/db.py works around it.)"""

from __future__ import annotations

from aiogram.methods import SendMessage
from sqlalchemy import func, select

from bot.offline import BotClient
from models import Case, CaseEvent, OutboxMessage, Team
from tests.test_intake import DESCRIPTION, _to_description

GROUP_CHAT = -100500


async def _counts(sessionmaker) -> tuple[int, int, int]:
    async with sessionmaker() as session:
        cases = await session.scalar(select(func.count()).select_from(Case))
        events = await session.scalar(select(func.count()).select_from(CaseEvent))
        outbox = await session.scalar(select(func.count()).select_from(OutboxMessage))
    return cases or 0, events or 0, outbox or 0


async def test_failed_reply_rolls_the_whole_update_back(resident: BotClient, sessionmaker, tg) -> None:
    async with sessionmaker.begin() as session:
        team = await session.scalar(select(Team).where(Team.code == "ves-csp"))
        assert team is not None
        team.group_chat_id = GROUP_CHAT
    await _to_description(resident)
    await resident.send(DESCRIPTION)
    await resident.click("Без файлів")
    await resident.click("Для себе")
    replies = await resident.share_contact()
    summary = replies[-1]
    data = next(d for row in summary.inline for t, d in row if "Надіслати звернення" in t)
    before = await _counts(sessionmaker)
    assert before[:2] == (0, 0)

    # The confirmation message to the person fails after the case was filed in the transaction.
    tg.queue_error(500, "Internal Server Error", method=SendMessage, chat_id=resident.chat.id)
    await resident.click_data(data, message_id=summary.message_id)
    assert not tg.queued, "the failing reply was not attempted"
    assert await _counts(sessionmaker) == before

    replies = await resident.click_data(data, message_id=summary.message_id)
    assert not any("вже надіслано" in r.text for r in replies)
    [message] = [r for r in replies if r.kind == "message"]
    async with sessionmaker() as session:
        [case] = (await session.scalars(select(Case))).all()
        assert case.number in message.text
        events = (await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))).all()
        assert [e.kind for e in events] == ["created"]
        notices = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == GROUP_CHAT))
        ).all()
        assert len(notices) == 1 and notices[0].case_id == case.id
    assert (await _counts(sessionmaker))[:2] == (1, 1)
