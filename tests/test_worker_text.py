"""Free text typed by workers: whatever it is, it is relayed exactly (escaped for HTML) or
refused politely with the step kept; invites: coordinators only for their own teams."""

from __future__ import annotations

import html
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from handlers.kit.notices import render_notice
from handlers.worker.cases import CaseForm
from models import OutboxMessage, Team, Worker
from models.people import ROLE_COORDINATOR
from services.text import tidy
from services.workers import InviteError, WorkerService
from tests.factories import add_resident, add_worker
from tests.test_case_actions import make_case


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=2100))
async def test_any_text_to_the_resident_is_relayed_exactly_or_refused_politely(
    make_client, reference, sessionmaker, app, bot, text
) -> None:
    if text.startswith("/"):
        text = " " + text  # commands leave the step by design; tested elsewhere
    worker_tg = 3101
    async with sessionmaker() as session:
        exists = await session.scalar(select(Worker.id).limit(1))
    if exists is None:
        resident = await add_resident(sessionmaker, 3001)
        await add_worker(sessionmaker, worker_tg, "ves-csp")
        await make_case(sessionmaker, resident)
    async with sessionmaker() as session:
        from models import Case

        case_id = await session.scalar(select(Case.id).limit(1))
        before = len((await session.scalars(select(OutboxMessage))).all())
    client = make_client(user_id=worker_tg)
    client.read()  # earlier examples talked to the same chat
    fsm = app.dispatcher.fsm.get_context(bot=bot, chat_id=worker_tg, user_id=worker_tg)
    await fsm.set_state(CaseForm.write)
    await fsm.set_data({"case_id": case_id})

    replies = await client.send(text)
    assert len(replies) == 1 and replies[0].kind == "message"
    async with sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    # What the one input boundary keeps of it (services/text.py): that, exactly, is relayed.
    stripped = tidy(text, multiline=True)
    if stripped and len(stripped) <= 2000:
        assert "в чергу" in replies[0].text
        assert len(rows) == before + 1
        assert rows[-1].payload["text"] == stripped
        sent, _ = render_notice(rows[-1].kind, rows[-1].payload, "uk", app.i18n)
        assert sent.endswith("\n\n" + html.escape(stripped))
        assert await fsm.get_state() is None
    else:
        assert "текст" in replies[0].text.lower()
        assert len(rows) == before
        assert await fsm.get_state() == CaseForm.write.state


async def test_coordinators_invite_only_to_their_teams_and_tokens_are_checked(
    sessionmaker, reference
) -> None:
    coord = await add_worker(sessionmaker, 3201, "ves-csp", role=ROLE_COORDINATOR)
    plain = await add_worker(sessionmaker, 3202, "ves-csp")
    async with sessionmaker.begin() as session:
        workers = WorkerService(session)
        ves = await session.scalar(select(Team).where(Team.code == "ves-csp"))
        pyr = await session.scalar(select(Team).where(Team.code == "pyr-cnap"))
        coordinator = await session.get(Worker, coord.id)
        plain_worker = await session.get(Worker, plain.id)
        assert [t.code for t in await workers.manageable_teams(coordinator)] == ["ves-csp"]
        assert await workers.manageable_teams(plain_worker) == []
        token = await workers.create_invite(
            creator=coordinator, team=ves, role="worker", ttl=timedelta(hours=1)
        )
        assert token.startswith("inv_") and len(token) <= 64
        for creator, team in ((coordinator, pyr), (plain_worker, ves)):
            try:
                await workers.create_invite(creator=creator, team=team, role="worker", ttl=timedelta(hours=1))
            except PermissionError:
                pass
            else:
                raise AssertionError("invite created without rights")
        for ttl in (timedelta(0), timedelta(days=31)):
            try:
                await workers.create_invite(creator=coordinator, team=ves, role="worker", ttl=ttl)
            except ValueError:
                pass
            else:
                raise AssertionError(f"ttl {ttl} accepted")
        from models import User

        user = User(telegram_id=3299, language="uk")
        session.add(user)
        await session.flush()
        for payload in ("inv_", "inv_short", "inv_" + "A" * 70, "inv_" + "ä" * 24, "xyz_" + token[4:]):
            try:
                await workers.redeem_invite(payload=payload, user=user, display_name="X")
            except InviteError as exc:
                assert exc.code == "unknown"
            else:
                raise AssertionError(payload)
