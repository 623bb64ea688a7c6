"""Needs-assessment surveys through the real dispatcher: a coordinator launches the sample survey,
several residents answer it with a break in the middle and a restart of the app, conditions skip
a question, wrong input is refused politely, and nothing joins an answer to a person."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.factory import build_app
from bot.offline import BotClient
from models import (
    OutboxMessage,
    Resident,
    Settlement,
    Survey,
    SurveyAnswer,
    SurveyInvitation,
    SurveyResponse,
    User,
)
from models.people import ROLE_COORDINATOR
from services.report_tables import SMALL_COUNT_LABEL, ReportScope
from services.surveys import survey_results_table
from tests.factories import add_resident, add_worker

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    from services.clock import FrozenClock

    return FrozenClock(NOW)


async def _residents_of(sessionmaker, settlement_code: str, *telegram_ids: int) -> int:
    for telegram_id in telegram_ids:
        await add_resident(sessionmaker, telegram_id)
    async with sessionmaker.begin() as session:
        settlement = await session.scalar(select(Settlement).where(Settlement.code == settlement_code))
        for resident in await session.scalars(
            select(Resident).join(User, User.id == Resident.user_id).where(User.telegram_id.in_(telegram_ids))
        ):
            resident.last_settlement_id = settlement.id
            resident.last_hromada_id = settlement.hromada_id
        return settlement.id


def _texts(replies) -> str:
    return "\n".join(r.text for r in replies)


async def _launch_sample(make_client, deliverer) -> BotClient:
    coordinator = make_client(user_id=5100)
    listing = (await coordinator.send("/surveys"))[-1]
    assert "Які послуги потрібні у вашому селі" in listing.text
    await coordinator.click("Які послуги потрібні")
    await coordinator.click("Запустити")
    await coordinator.click("Усі населені пункти")
    replies = await coordinator.click("Зараз")
    assert "Нових запрошень: 3" in _texts(replies)
    assert await deliverer.deliver_due() == 3
    return coordinator


async def test_residents_answer_with_a_break_and_a_restart(
    make_client, reference, sessionmaker, deliverer, settings, db, bot, tg, clock
) -> None:
    await add_worker(sessionmaker, 5100, "ves-csp", role=ROLE_COORDINATOR)
    await _residents_of(sessionmaker, "vesele", 5201, 5202, 5203)
    await _launch_sample(make_client, deliverer)
    anna, bohdan, vira = make_client(user_id=5201), make_client(user_id=5202), make_client(user_id=5203)
    invitation = anna.read()[-1]
    bohdan.read(), vira.read()
    assert "Які послуги потрібні у вашому селі" in invitation.text and "Почати" in invitation.buttons()[0]

    # Anna: every kind of question, wrong input refused on the text step.
    first = (await anna.click("Почати"))[-1]
    assert "Питання 1 з 5" in first.text and "▫️ Аптека" in first.buttons()
    await anna.click("Аптека")
    toggled = (await anna.click("Транспорт"))[-1]
    assert "✅ Аптека" in toggled.buttons() and "✅ Транспорт до громади" in toggled.buttons()
    assert "Питання 2 з 5" in (await anna.click("Готово"))[-1].text
    await anna.click("Понад годину")
    assert "Питання 4 з 5" in (await anna.click("Так"))[-1].text
    assert "Питання 5 з 5" in (await anna.click("4"))[-1].text
    assert "текстом" in (await anna.send_sticker())[-1].text
    assert "текстом" in (await anna.send_voice())[-1].text
    assert "кілька слів" in (await anna.send("👍"))[-1].text
    assert "Дякуємо" in (await anna.send("Потрібен автобус до ЦНАПу двічі на тиждень"))[-1].text

    # Bohdan answers two questions, presses «Later»; the app restarts (a new dispatcher on the
    # same database); an old button resumes at the question he stopped at.
    q1 = (await bohdan.click("Почати"))[-1]
    await bohdan.click("Аптека")
    await bohdan.click("Готово")
    await bohdan.click("До 30 хвилин")
    assert "продовжите пізніше" in (await bohdan.click("Пізніше"))[-1].text
    restarted = build_app(settings, clock=clock, engine=db)
    try:
        bohdan_again = BotClient(restarted.dispatcher, bot, tg, user_id=5202)
        bohdan_again.messages.update(bohdan.messages)
        bohdan_again.read()  # what the first client already saw
        # The first question's message was edited since; its old button data is what Telegram
        # would still send from a client that did not refresh.
        old_press = next(data for row in q1.inline for text, data in row if "Транспорт" in text)
        replies = await bohdan_again.click_data(old_press, message_id=q1.message_id)
        assert any(r.kind == "toast" and "позаду" in r.text for r in replies)
        assert "Питання 3 з 5" in next(r for r in replies if r.kind == "message").text
        # «No» to the mobile office: the 1–5 question about it is skipped.
        text_step = (await bohdan_again.click("Ні"))[-1]
        assert "Питання 5 з 5" in text_step.text and "⏭ Пропустити" in text_step.buttons()
        assert "Дякуємо" in (await bohdan_again.click("Пропустити"))[-1].text
        # Any old button of a finished survey is answered politely.
        replies = await bohdan_again.click_data(old_press, message_id=q1.message_id)
        assert replies[0].kind == "alert" and "вже відповіли" in replies[0].text
    finally:
        await restarted.close_dispatcher()

    # Vira: a multi choice needs an answer; /start in the middle brings the question back.
    await vira.click("Почати")
    refused = await vira.click("Готово")
    assert refused[0].kind == "alert" and "хоча б один" in refused[0].text
    await vira.click("Усього вистачає")
    await vira.click("Готово")
    replies = await vira.send("/start")
    assert "не закінчили" in _texts(replies) and "Питання 2 з 5" in replies[-1].text
    await vira.click("30–60")
    await vira.click("Так")
    await vira.click("5")
    assert "Дякуємо" in (await vira.send("Потрібна аптека в селі"))[-1].text
    # The menu button finds nothing left to answer.
    assert "немає опитувань" in (await vira.send("📝 Опитування"))[-1].text

    async with sessionmaker() as session:
        survey = await session.scalar(select(Survey).where(Survey.code == "needs_2026"))
        responses = (await session.scalars(select(SurveyResponse))).all()
        invitations = (await session.scalars(select(SurveyInvitation))).all()
        texts = (await session.scalars(select(SurveyAnswer.text).where(SurveyAnswer.text.is_not(None)))).all()
        vesele = await session.scalar(select(Settlement).where(Settlement.code == "vesele"))
        table = await survey_results_table(session, ReportScope((vesele.hromada_id,)), survey.id)
    assert len(responses) == 3 and all(r.submitted_at == NOW for r in responses)
    # Anonymity: no response names a user, no invitation leads to a response.
    assert all(r.user_id is None for r in responses)
    assert all(i.state == "done" and i.response_id is None for i in invitations)
    assert sorted(texts) == ["Потрібен автобус до ЦНАПу двічі на тиждень", "Потрібна аптека в селі"]

    rows = {(r[2], r[3]): (r[4], r[5]) for r in table.rows}
    assert table.rows[0][1:5] == ("Веселе", None, None, 3)
    missing = "Яких послуг найбільше бракує у вашому населеному пункті? Оберіть усі, що підходять."
    assert rows[(missing, "Аптека")] == (2, None)
    assert rows[(missing, "Транспорт до громади")] == (1, None)
    assert rows[(missing, "Усього вистачає")] == (1, None)
    assert rows[(missing, "Прийом лікаря")] == (0, None)
    used = "Чи користувалися ви послугами мобільного соціального офісу?"
    assert rows[(used, "Так")] == (2, None) and rows[(used, "Ні")] == (1, None)
    useful = next(k for k in rows if k[0] and k[0].startswith("Наскільки корисним"))
    assert rows[useful] == (2, None)  # two answers (4 and 5): too few to publish an average
    comment = next(k for k in rows if k[0] and k[0].startswith("Що ще громада"))
    assert rows[comment] == (2, None)
    assert all(cell != "Потрібна аптека в селі" for row in table.rows for cell in row)
    assert table.published()[0][4] == SMALL_COUNT_LABEL


async def test_launch_is_the_coordinators_and_invites_once(
    make_client, reference, sessionmaker, deliverer, clock
) -> None:
    await add_worker(sessionmaker, 5100, "ves-csp", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 5101, "ves-csp")  # not a coordinator
    await _residents_of(sessionmaker, "vesele", 5201, 5202, 5203)
    await _residents_of(sessionmaker, "berestove", 5301)  # another hromada
    coordinator = await _launch_sample(make_client, deliverer)
    # Launching again invites nobody twice.
    await coordinator.click("Запустити")
    await coordinator.click("Усі населені пункти")
    assert "Нових запрошень: 0" in _texts(await coordinator.click("Зараз"))
    async with sessionmaker() as session:
        survey = await session.scalar(select(Survey).where(Survey.code == "needs_2026"))
        kinds = (await session.scalars(select(OutboxMessage.kind))).all()
        berestove = await session.scalar(select(Settlement).where(Settlement.code == "berestove"))
    assert kinds.count("survey_invitation") == 3
    # A forged press by a worker who coordinates nothing, and a settlement of another hromada.
    worker = make_client(user_id=5101)
    assert (await worker.click_data(f"sva:launch:{survey.id}:"))[0].kind == "alert"
    await coordinator.click_data(f"sva:launch:{survey.id}:")
    forged = await coordinator.click_data(f"sva:place:{survey.id}:{berestove.id}")
    assert forged[0].kind == "alert"
    # Closed: a start from the invitation is refused politely.
    await coordinator.click_data(f"sva:close:{survey.id}:")
    resident = make_client(user_id=5201)
    resident.read()
    replies = await resident.click("Почати")
    assert replies[0].kind == "alert" and "завершено" in replies[0].text
