"""The SLA sweep at volume, upgrade-day backfill and the morning digest's counts, on both
databases: a busy sweep costs the same statements for one due case or many and takes at most a
batch per run; open cases filed before the policies get due times from their filing moment
without a flood of notices (one summary per coordinator); the digest counts visits instead of
listing them again and counts the teams' unassigned cases due today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select, update

from bot.cli import backfill_sla
from handlers.kit.notices import render_notice
from models import Case, CaseEvent, OutboxMessage
from models.cases import IN_PROGRESS, WAITING_DOCUMENTS
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from services.outbox import PAYLOAD_VERSION, VERSION_KEY
from services.reminders import ReminderRules
from services.sla import BREACHED, ON_TIME, STEP_BREACHED, STEP_OBLAST
from services.sla_backfill import backfill_batch
from services.sla_digest import plan_morning_digests
from services.sla_sweep import sweep_sla
from tests.factories import add_resident, add_worker
from tests.test_sla import _file

KYIV = ZoneInfo("Europe/Kyiv")
WEDNESDAY_10 = datetime(2026, 12, 2, 10, 0, tzinfo=KYIV)


class StatementCounter:
    def __init__(self, engine) -> None:
        self.count = 0
        self.engine = engine.sync_engine

    def __call__(self, *args) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


async def _file_many(sessionmaker, clock, first_id: int, count: int) -> list[int]:
    return [
        await _file(sessionmaker, clock, await add_resident(sessionmaker, first_id + i)) for i in range(count)
    ]


async def test_busy_sweep_costs_the_same_statements_for_one_or_many_cases_and_is_bounded(
    reference, sessionmaker, db
) -> None:
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    await add_worker(sessionmaker, 5101, "ves-csp", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 5102, "ves-csp", role=ROLE_COORDINATOR)
    one = await _file_many(sessionmaker, clock, 5001, 1)
    clock.set(datetime(2026, 12, 3, 10, 1, tzinfo=KYIV).astimezone(UTC))  # breached
    with StatementCounter(db) as single:
        async with sessionmaker.begin() as session:
            assert await sweep_sla(session, clock, KYIV) == (1, 2)
    many = await _file_many(sessionmaker, clock, 5010, 5)
    clock.set(datetime(2026, 12, 4, 15, 0, tzinfo=KYIV).astimezone(UTC))  # the five breached too
    with StatementCounter(db) as several:
        async with sessionmaker.begin() as session:
            # At most a batch per run; the next run takes the rest.
            looked, _ = await sweep_sla(session, clock, KYIV, batch=4)
    assert looked == 4
    # The same statements for four cases as for one (+ the hromadas and teams, should the
    # first case's oblast step fall in this batch).
    assert several.count <= single.count + 2
    async with sessionmaker.begin() as session:
        assert (await sweep_sla(session, clock, KYIV, batch=4))[0] == 2
    async with sessionmaker.begin() as session:
        assert await sweep_sla(session, clock, KYIV) == (0, 0)
    async with sessionmaker() as session:
        for case_id in [*one, *many]:
            case = await session.get(Case, case_id)
            assert case.sla_breached and case.sla_escalation_step >= STEP_BREACHED
        rows = (
            await session.execute(
                select(OutboxMessage.case_id, func.count())
                .where(OutboxMessage.kind == "sla_breached")
                .group_by(OutboxMessage.case_id)
            )
        ).all()
        # Each case's breach reached both coordinators once.
        assert sorted(rows) == sorted((case_id, 2) for case_id in [*one, *many])
        audited = await session.scalar(select(func.count()).where(CaseEvent.kind == "sla_breached"))
        assert audited == 6


async def _as_before_the_sla(sessionmaker, case_id: int, created: datetime, **values) -> None:
    """A case as filed before the policies: no due times, no state, no next check."""
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(
                created_at=created.astimezone(UTC),
                first_response_due_at=None,
                resolution_due_at=None,
                first_responded_at=None,
                sla_state=None,
                sla_breached=False,
                sla_next_check_at=None,
                sla_escalation_step=0,
                **values,
            )
        )


async def test_backfill_gives_due_times_from_filing_and_one_summary_per_coordinator(
    reference, sessionmaker
) -> None:
    clock = FrozenClock(WEDNESDAY_10.astimezone(UTC))
    worker = await add_worker(sessionmaker, 5201, "ves-csp")
    await add_worker(sessionmaker, 5202, "ves-csp", role=ROLE_COORDINATOR, language="en")
    old = await _file_many(sessionmaker, clock, 5300, 4)
    recent = await _file(sessionmaker, clock, await add_resident(sessionmaker, 5310))
    # Three filed in October (long overdue), one of them taken, one waiting for documents;
    # one filed this morning.
    october = datetime(2026, 10, 5, 9, 0, tzinfo=KYIV)
    for case_id in old[:3]:
        await _as_before_the_sla(sessionmaker, case_id, october)
    await _as_before_the_sla(sessionmaker, old[1], october, status=IN_PROGRESS, assignee_worker_id=worker.id)
    async with sessionmaker.begin() as session:
        session.add(
            CaseEvent(
                case_id=old[1],
                at=october.astimezone(UTC) + timedelta(hours=2),
                kind="assigned",
                actor_user_id=worker.user_id,
                data={},
            )
        )
    await _as_before_the_sla(sessionmaker, old[2], october, status=WAITING_DOCUMENTS)
    await _as_before_the_sla(sessionmaker, recent, datetime(2026, 12, 2, 9, 0, tzinfo=KYIV))
    # old[3] already has its SLA (filed after the policies): left alone.
    async with sessionmaker() as session:
        untouched = (await session.get(Case, old[3])).first_response_due_at

    # One batch of two: the next one starts after the last id read.
    async with sessionmaker.begin() as session:
        first = await backfill_batch(session, clock, KYIV, batch=2)
    assert first.last_id == old[1] and sum(first.started.values()) == 2
    line = await backfill_sla(sessionmaker, KYIV, batch=2, clock=clock)
    # The whole run again found what the first batch left: the third old case and the recent one.
    assert "2 open case(s) given due times, 1 already overdue, 1 summary notice(s) queued" in line

    async with sessionmaker() as session:
        cases = {c.id: c for c in (await session.scalars(select(Case))).all()}
        new_old, taken, waiting = (cases[i] for i in old[:3])
        assert new_old.first_response_due_at == datetime(2026, 10, 6, 9, 0, tzinfo=KYIV)
        assert new_old.sla_state == BREACHED and new_old.sla_breached
        assert new_old.sla_escalation_step == STEP_OBLAST and new_old.sla_next_check_at is None
        assert taken.first_responded_at == october + timedelta(hours=2)
        assert taken.sla_state == BREACHED and taken.resolution_due_at is not None
        assert waiting.sla_paused_at == clock.now() and waiting.sla_next_check_at is None
        assert cases[recent].sla_state == ON_TIME
        assert cases[recent].sla_next_check_at == datetime(2026, 12, 3, 8, 0, tzinfo=KYIV)  # due soon
        assert cases[old[3]].first_response_due_at == untouched
        # No per-case notice: the summary only.
        rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.kind.like("sla_%")))).all()
        assert [(r.kind, r.chat_id) for r in rows] == [("sla_backfill", 5202)]
        assert {k: v for k, v in rows[0].payload.items() if k != VERSION_KEY} == {
            "team_id": new_old.team_id,
            "cases": 2,
            "breached": 1,
        }
    # The sweep right after finds nothing to announce; a second backfill finds nothing.
    async with sessionmaker.begin() as session:
        assert await sweep_sla(session, clock, KYIV) == (0, 0)
    assert "0 open case(s) given due times, 0 already overdue, 0 summary" in await backfill_sla(
        sessionmaker, KYIV, clock=clock
    )


async def test_digest_counts_visits_and_the_teams_unassigned_cases_due_today(
    reference, sessionmaker, app
) -> None:
    clock = FrozenClock(datetime(2026, 12, 2, 15, 30, tzinfo=KYIV).astimezone(UTC))
    # Off duty: nobody is given the case at filing; it is due Thursday 15:30, unassigned.
    await add_worker(sessionmaker, 5401, "ves-csp", language="en", on_duty=False)
    await add_worker(sessionmaker, 5403, "ves-csp", on_duty=False)
    case_id = await _file(sessionmaker, clock, await add_resident(sessionmaker, 5402))
    clock.set(datetime(2026, 12, 3, 8, 0, tzinfo=KYIV).astimezone(UTC))
    async with sessionmaker.begin() as session:
        assert (await session.get(Case, case_id)).assignee_worker_id is None
        assert await plan_morning_digests(session, clock.now(), ReminderRules()) == 2
    async with sessionmaker() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.kind == "sla_digest", OutboxMessage.chat_id == 5401)
        )
    assert row.payload["unassigned_due"] == 1 and row.payload["visits_count"] == 0
    assert "visits" not in row.payload
    i18n = app.i18n
    text, _ = render_notice("sla_digest", row.payload, "en", i18n)
    assert "Unassigned cases of your teams due today: 1" in text
    assert "Visits today" not in text  # none: no line
    counted = {**row.payload, "visits_count": 2}
    text, _ = render_notice("sla_digest", counted, "uk", i18n)
    assert "Візитів сьогодні: 2 — час і адреси в ранковому розкладі візитів." in text
    # A row queued before the change still renders (it carried the list).
    legacy = {k: v for k, v in row.payload.items() if k != "visits_count"}
    legacy["visits"] = [{"time_from": "09:00", "time_to": "10:00", "settlement": "x", "number": "1"}]
    assert "Visits today: 1" in render_notice("sla_digest", legacy, "en", i18n)[0]
    assert legacy[VERSION_KEY] == PAYLOAD_VERSION
