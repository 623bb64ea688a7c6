"""CaseActions, called directly: transitions, audit rows, double taps, access, notifications."""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from handlers.kit.callbacks import CaseCb
from handlers.kit.notices import render_notice
from infra.i18n import create_i18n
from models import Case, CaseEvent, CaseMessage, Hromada, OutboxMessage, Resident, Service, Team, Worker
from models.cases import CANCELLED, IN_PROGRESS, NEW, REJECTED, RESOLVED, VISIT_PLANNED, WAITING_DOCUMENTS
from models.people import ROLE_COORDINATOR
from services.case_actions import TRANSITIONS, CaseActions, InvalidTransition, NotFound
from services.clock import FrozenClock
from tests.factories import add_resident, add_worker

_numbers = itertools.count(1)


@functools.cache
def _i18n():
    return create_i18n()


def rendered(message: OutboxMessage, language: str):
    """The notice as the deliverer sends it: (text, markup)."""
    return render_notice(message.kind, message.payload, language, _i18n())


NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def make_case(
    sessionmaker,
    resident: Resident,
    *,
    team: str = "ves-csp",
    hromada: str = "VES",
    service: str = "subsidy",
    status: str = NEW,
    priority: int = 0,
) -> int:
    async with sessionmaker.begin() as session:
        team_row = await session.scalar(select(Team).where(Team.code == team))
        hromada_row = await session.scalar(select(Hromada).where(Hromada.code == hromada))
        service_row = await session.scalar(select(Service).where(Service.code == service))
        case = Case(
            number=f"{hromada}-2026-{next(_numbers):06d}",
            resident_id=resident.id,
            hromada_id=hromada_row.id,
            service_id=service_row.id,
            team_id=team_row.id,
            status=status,
            priority=priority,
            description="Потрібна допомога",
            contact_phone="+380501112233",
            routing_kind="own",
            routing_detail={},
            created_at=NOW,
        )
        session.add(case)
        await session.flush()
        return case.id


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _user_of(session, resident_id: int):
    resident = await session.get(Resident, resident_id)
    from models import User

    return await session.get(User, resident.user_id)


async def _worker(session, worker_id: int) -> Worker:
    return await session.get(Worker, worker_id)


async def test_transition_table_closed_statuses_are_final() -> None:
    for status in (RESOLVED, REJECTED, CANCELLED):
        assert TRANSITIONS[status] == frozenset()
    assert RESOLVED not in TRANSITIONS[NEW]  # a case is worked on before it is resolved
    assert IN_PROGRESS in TRANSITIONS[WAITING_DOCUMENTS] and WAITING_DOCUMENTS in TRANSITIONS[IN_PROGRESS]


async def test_status_change_writes_event_and_notifies_resident_in_their_language(
    sessionmaker, reference, clock
) -> None:
    resident = await add_resident(sessionmaker, 501, language="en")
    w = await add_worker(sessionmaker, 601, "ves-csp")
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock)
        worker = await _worker(session, w.id)
        await actions.take(case_id, worker)
        await actions.change_status(case_id, worker, WAITING_DOCUMENTS)
    async with sessionmaker() as session:
        events = (await session.scalars(select(CaseEvent).order_by(CaseEvent.id))).all()
        assert [(e.kind, e.from_status, e.to_status) for e in events] == [
            ("assigned", None, None),
            ("status", NEW, IN_PROGRESS),
            ("status", IN_PROGRESS, WAITING_DOCUMENTS),
        ]
        assert all(e.at == NOW and e.actor_user_id == worker.user_id for e in events)
        notices = (
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.kind == "case_status_changed")
                .order_by(OutboxMessage.id)
            )
        ).all()
        assert [n.payload["status"] for n in notices] == [IN_PROGRESS, WAITING_DOCUMENTS]
        texts = [rendered(n, "en")[0] for n in notices]
        assert "<b>🔧 In progress</b>" in texts[0] and "<b>📄 Waiting for documents</b>" in texts[1]
        assert notices[0].chat_id == 501 and notices[0].case_id == case_id


async def test_repeated_status_change_is_a_no_op(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 502)
    w = await add_worker(sessionmaker, 602, "ves-csp")
    case_id = await make_case(sessionmaker, resident, status=IN_PROGRESS)
    for _ in range(3):
        async with sessionmaker.begin() as session:
            actions = CaseActions(session, clock)
            await actions.change_status(case_id, await _worker(session, w.id), VISIT_PLANNED)
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CaseEvent)) == 1
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


@pytest.mark.parametrize(
    ("start", "target", "reason", "code"),
    [
        (NEW, RESOLVED, None, "invalid_transition"),
        (IN_PROGRESS, REJECTED, None, "reason_required"),
        (IN_PROGRESS, CANCELLED, "   ", "reason_required"),
        (RESOLVED, IN_PROGRESS, None, "closed"),
        (CANCELLED, REJECTED, "x", "closed"),
        (IN_PROGRESS, "archived", None, "unknown_status"),
    ],
)
async def test_forbidden_transitions_change_nothing(
    sessionmaker, reference, clock, start, target, reason, code
) -> None:
    resident = await add_resident(sessionmaker, 503)
    w = await add_worker(sessionmaker, 603, "ves-csp")
    case_id = await make_case(sessionmaker, resident, status=start)
    async with sessionmaker() as session:
        actions = CaseActions(session, clock)
        with pytest.raises(InvalidTransition) as info:
            await actions.change_status(case_id, await _worker(session, w.id), target, reason)
        assert info.value.code == code
        await session.rollback()
    async with sessionmaker() as session:
        assert (await session.get(Case, case_id)).status == start
        assert await session.scalar(select(func.count()).select_from(CaseEvent)) == 0
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


async def test_rejection_with_reason_is_audited_and_told(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 504)
    w = await add_worker(sessionmaker, 604, "ves-csp")
    case_id = await make_case(sessionmaker, resident, status=IN_PROGRESS)
    async with sessionmaker.begin() as session:
        await CaseActions(session, clock).close(
            case_id, await _worker(session, w.id), REJECTED, "Не <наша> послуга"
        )
    async with sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case.status == REJECTED and case.closed_at == NOW and case.outcome == "Не <наша> послуга"
        event = await session.scalar(select(CaseEvent))
        assert event.reason == "Не <наша> послуга"
        notice = await session.scalar(select(OutboxMessage))
        assert notice.payload["reason"] == "Не <наша> послуга" and notice.payload["status"] == REJECTED
        text, _ = rendered(notice, "uk")
        assert "\nПричина: Не &lt;наша&gt; послуга" in text
        assert "<b>⛔ Відхилено</b>" in text


async def test_workers_see_only_their_teams_cases_coordinators_their_hromadas(
    sessionmaker, reference, clock
) -> None:
    resident = await add_resident(sessionmaker, 505)
    ves = await add_worker(sessionmaker, 605, "ves-csp")
    pyr = await add_worker(sessionmaker, 606, "pyr-cnap")
    coord = await add_worker(sessionmaker, 607, "pyr-tercentre", role=ROLE_COORDINATOR)
    admin = await add_worker(sessionmaker, 608, "zp-oblast", is_admin=True)
    ves_case = await make_case(sessionmaker, resident)
    pyr_case = await make_case(sessionmaker, resident, team="pyr-cnap", hromada="PYR")
    async with sessionmaker() as session:
        actions = CaseActions(session, clock)
        assert (await actions.worker_case(await _worker(session, ves.id), ves_case)).id == ves_case
        with pytest.raises(NotFound):
            await actions.worker_case(await _worker(session, pyr.id), ves_case)
        # Coordinator of another PYR team: sees PYR cases, not VES ones; no phone (not the team's member).
        coordinator = await _worker(session, coord.id)
        case = await actions.worker_case(coordinator, pyr_case)
        assert not await actions.can_see_contact(coordinator, case)
        with pytest.raises(NotFound):
            await actions.worker_case(coordinator, ves_case)
        assert (await actions.worker_case(await _worker(session, admin.id), ves_case)).id == ves_case
        with pytest.raises(NotFound):
            await actions.worker_case(await _worker(session, ves.id), 999_999)


async def test_resident_sees_only_own_cases_and_messages_reach_on_duty_workers(
    sessionmaker, reference, clock
) -> None:
    a = await add_resident(sessionmaker, 510)
    b = await add_resident(sessionmaker, 511)
    await add_worker(sessionmaker, 611, "ves-csp")
    await add_worker(sessionmaker, 612, "ves-csp", on_duty=False)
    case_id = await make_case(sessionmaker, a)
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock)
        with pytest.raises(NotFound):
            await actions.resident_case(await _user_of(session, b.id), case_id)
        with pytest.raises(NotFound):
            await actions.resident_message(await _user_of(session, b.id), case_id, "hi")
        await actions.resident_message(await _user_of(session, a.id), case_id, "Коли <прийдете>?")
    async with sessionmaker() as session:
        notices = (await session.scalars(select(OutboxMessage))).all()
        assert [(n.kind, n.chat_id) for n in notices] == [("case_message_to_worker", 611)]
        assert notices[0].payload["text"] == "Коли <прийдете>?"
        text, markup = rendered(notices[0], "uk")
        assert "\n\nКоли &lt;прийдете&gt;?" in text
        [[button]] = markup.inline_keyboard
        assert button.callback_data == f"case:open:{case_id}"
        assert CaseCb.unpack(button.callback_data) == CaseCb(action="open", case_id=case_id)
        assert await session.scalar(select(func.count()).select_from(CaseMessage)) == 1


async def test_relay_shows_team_not_worker_and_cancel_by_resident(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 520, language="en")
    w = await add_worker(sessionmaker, 620, "ves-csp", display_name="Olena Secret")
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock)
        worker = await _worker(session, w.id)
        await actions.take(case_id, worker)
        await actions.relay_to_resident(case_id, worker, "Bring your passport")
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock)
        user = await _user_of(session, resident.id)
        await actions.cancel_by_resident(user, case_id, "Already solved")
        await actions.cancel_by_resident(user, case_id, "Already solved")  # double tap
        history = await actions.history(case_id)
        assert [e.to_status for e in history if e.kind == "status"] == [IN_PROGRESS, CANCELLED]
    async with sessionmaker() as session:
        relay = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.kind == "case_message_to_resident")
        )
        assert relay.payload["team"] == "Veselivska Centre of social services"
        assert "Olena" not in str(relay.payload)
        told = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "case_cancelled_to_worker")
            )
        ).all()
        assert [n.chat_id for n in told] == [620]
        with pytest.raises(InvalidTransition):
            await CaseActions(session, clock).resident_message(user, case_id, "more")


async def test_transfer_moves_case_and_tells_resident_and_new_team(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 530)
    w = await add_worker(sessionmaker, 630, "ves-csp")
    await add_worker(sessionmaker, 631, "zp-oblast")
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        team = await session.scalar(select(Team).where(Team.code == "zp-oblast"))
        actions = CaseActions(session, clock)
        worker = await _worker(session, w.id)
        await actions.take(case_id, worker)
        await actions.transfer(case_id, worker, team.id, "Потрібне рішення області")
        case = await session.get(Case, case_id)
        assert case.team_id == team.id and case.assignee_worker_id is None
        # The old team's worker no longer sees it.
        with pytest.raises(NotFound):
            await actions.worker_case(worker, case_id)
    async with sessionmaker() as session:
        kinds = sorted(
            (n.kind, n.chat_id)
            for n in (await session.scalars(select(OutboxMessage))).all()
            if n.kind != "case_status_changed"
        )
        assert kinds == [("case_transferred", 530), ("case_transferred_to_team", 631)]


async def test_every_notice_renders_in_both_languages(app, sessionmaker, reference, clock) -> None:
    """Each outbox kind CaseActions writes has its text and buttons in uk and en."""
    resident = await add_resident(sessionmaker, 540)
    w = await add_worker(sessionmaker, 640, "ves-csp")
    coord = await add_worker(sessionmaker, 641, "ves-csp", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 642, "zp-oblast")
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        actions = CaseActions(session, clock)
        user = await _user_of(session, resident.id)
        worker = await _worker(session, w.id)
        await actions.assign(case_id, await _worker(session, coord.id), w.id)
        await actions.take(case_id, worker)
        await actions.resident_message(user, case_id, "50% готово")
        await actions.resident_attachment(user, case_id, kind="document", file_id="d", file_unique_id="ud")
        await actions.relay_to_resident(case_id, worker, "ok")
        oblast = await session.scalar(select(Team).where(Team.code == "zp-oblast"))
        await actions.transfer(case_id, worker, oblast.id, "note")
        await actions.cancel_by_resident(user, case_id, "не треба")
    async with sessionmaker() as session:
        messages = (await session.scalars(select(OutboxMessage))).all()
    kinds = {m.kind for m in messages}
    assert kinds == {
        "case_assigned",
        "case_status_changed",
        "case_message_to_worker",
        "case_attachment_to_worker",
        "case_message_to_resident",
        "case_transferred",
        "case_transferred_to_team",
        "case_cancelled_to_worker",
    }
    for message in messages:
        for language in ("uk", "en"):
            text, markup = render_notice(message.kind, message.payload, language, app.i18n)
            assert text and not text.startswith("outbox."), (message.kind, language)
            for row in markup.inline_keyboard if markup else []:
                assert all(not b.text.startswith("worker.btn") for b in row)


async def test_message_reaches_off_duty_team_when_nobody_is_on_duty(sessionmaker, reference, clock) -> None:
    resident = await add_resident(sessionmaker, 550)
    await add_worker(sessionmaker, 650, "ves-csp", on_duty=False)
    case_id = await make_case(sessionmaker, resident)
    async with sessionmaker.begin() as session:
        await CaseActions(session, clock).resident_message(await _user_of(session, resident.id), case_id, "?")
    async with sessionmaker() as session:
        assert [m.chat_id for m in (await session.scalars(select(OutboxMessage))).all()] == [650]
