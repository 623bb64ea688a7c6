"""Reports against figures computed by hand on a small fixed data set, on both databases: the
sections, the "<5" rule and pooling, who sees which hromadas, and that no personal data reaches
a report, an export or a chart."""

from __future__ import annotations

import csv
import importlib
import io
import zipfile
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from models import (
    Case,
    CaseEvent,
    CaseMessage,
    Hromada,
    MobileOfficeBooking,
    MobileOfficeSchedule,
    Service,
    Settlement,
    StatusLookup,
    Team,
    Visit,
)
from models.people import ROLE_COORDINATOR, ROLE_OBLAST
from services.report_charts import bar_chart_png
from services.report_exports import csv_zip_bytes, xlsx_bytes
from services.report_service import month_period, report_access, week_period
from services.report_tables import Period
from services.report_weekly import summary_values
from services.reports import OTHER, build_report, percentile, pool_small
from tests.factories import add_resident, add_worker

BACKFILL_FIRST_RESPONSE = importlib.import_module(
    "migrations.versions.0013_report_indexes"
)._BACKFILL_FIRST_RESPONSE
KYIV = zoneinfo.ZoneInfo("Europe/Kyiv")
WEEK = Period(date(2026, 11, 16), date(2026, 11, 22))
# Personal data planted in the data set; none of it may reach any report.
PHONE = "+380501112233"
NAME = "Марія Коваленко"
DESCRIPTION = "Потрібна допомога для Марії Коваленко"
REASON = "Відмовлено: Іван Петренко подав чужі документи"
WORKER_NAME = "Петро Сидоренко"


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# (service, settlement code or None, created, first worker response: (hours, "event"|"message")
#  or None, final status, hours to closing or None, routing kind)
CASES = [
    ("subsidy", "vesele", at(16, 8), (2, "event"), "resolved", 26, "own"),
    ("subsidy", "vesele", at(16, 9), (4, "message"), "resolved", 50, "own"),
    ("subsidy", "vesele", at(17, 10), (30, "event"), "resolved", 100, "own"),
    ("subsidy", "matviivka", at(18, 10), (1, "event"), "rejected", 5, "own"),
    ("subsidy", "matviivka", at(19, 10), (10, "event"), "in_progress", None, "own"),
    # 00:30 on Monday in Kyiv: inside the week.
    ("subsidy", "vesele", at(15, 22, 30), None, "new", None, "own"),
    ("home_care", "matviivka", at(20, 10), (48, "event"), "in_progress", None, "fallback"),
    ("home_care", "vesele", at(20, 11), None, "new", None, "fallback"),
    ("home_care", None, at(21, 12), (3, "event"), "resolved", 20, "own"),
    ("humanitarian_aid", "vesele", at(21, 13), (6, "message"), "resolved", 8, "own"),
    ("humanitarian_aid", "matviivka", at(22, 14), (12, "event"), "rejected", 12, "own"),
    # Outside the week (23:30 on Sunday in Kyiv) or open for long (a long wait).
    ("subsidy", "vesele", at(15, 21, 30), None, "new", None, "own"),
    ("subsidy", "vesele", at(1, 9, month=10), (5, "event"), "in_progress", None, "own"),
]


# Closed cases of the week with an SLA, by index in CASES: 5 of 7 met (71.4 %); subsidy has 4
# and the pooled services 3: too few to publish a share.
SLA_STATES = {0: "met", 1: "met", 2: "missed", 3: "met", 8: "met", 9: "met", 10: "missed"}


async def seed(sessionmaker, *, first_responses: bool = True, sla: dict[int, str] | None = None) -> None:
    """The data set. `first_responses=False` leaves `cases.first_responded_at` empty, as for
    cases filed before migration 0013 (which backfills it from the audit trail)."""
    sla = sla or {}
    resident = await add_resident(sessionmaker, 5001)
    worker = await add_worker(sessionmaker, 5101, "ves-csp", display_name=WORKER_NAME)
    async with sessionmaker.begin() as session:
        ref = {h.code: h for h in (await session.scalars(select(Hromada))).all()}
        services = {s.code: s for s in (await session.scalars(select(Service))).all()}
        settlements = {s.code: s for s in (await session.scalars(select(Settlement))).all()}
        ves_team = await session.scalar(select(Team).where(Team.code == "ves-csp"))
        pyr_team = await session.scalar(select(Team).where(Team.code == "pyr-cnap"))
        brs_team = await session.scalar(select(Team).where(Team.code == "brs-social"))
        worker_user = (await session.get(type(worker), worker.id)).user_id
        extra = [
            ("PYR", pyr_team, "subsidy", None, at(18, 9)),
            ("BRS", brs_team, "subsidy", "berestove", at(18, 9)),
        ]
        ids = []
        for n, (service, settlement, created, response, status, closing, routing) in enumerate(CASES):
            case = Case(
                number=f"VES-2026-{n:06d}",
                resident_id=resident.id,
                on_behalf=True,
                on_behalf_name=NAME,
                hromada_id=ref["VES"].id,
                settlement_id=settlements[settlement].id if settlement else None,
                service_id=services[service].id,
                team_id=ves_team.id,
                status=status,
                description=DESCRIPTION,
                contact_phone=PHONE,
                routing_kind=routing,
                routing_detail={},
                created_at=created,
                closed_at=created + timedelta(hours=closing) if closing is not None else None,
                outcome=NAME if status == "resolved" else None,
                first_responded_at=(
                    created + timedelta(hours=response[0]) if response and first_responses else None
                ),
                sla_state=sla.get(n),
            )
            session.add(case)
            await session.flush()
            ids.append(case.id)
            session.add(
                CaseEvent(case_id=case.id, at=created, actor_user_id=None, kind="created", to_status="new")
            )
            # A resident's own message is no response.
            session.add(
                CaseMessage(
                    case_id=case.id, at=created + timedelta(minutes=10), from_resident=True, text=PHONE
                )
            )
            if response is not None:
                hours, kind = response
                if kind == "event":
                    session.add(
                        CaseEvent(
                            case_id=case.id,
                            at=created + timedelta(hours=hours),
                            actor_user_id=worker_user,
                            kind="status",
                            from_status="new",
                            to_status="in_progress",
                        )
                    )
                else:
                    session.add(
                        CaseMessage(
                            case_id=case.id,
                            at=created + timedelta(hours=hours),
                            from_resident=False,
                            author_user_id=worker_user,
                            text=NAME,
                        )
                    )
            if closing is not None:
                session.add(
                    CaseEvent(
                        case_id=case.id,
                        at=created + timedelta(hours=closing),
                        actor_user_id=worker_user,
                        kind="status",
                        from_status="in_progress",
                        to_status=status,
                        reason=REASON if status == "rejected" else None,
                    )
                )
        for code, team, service, settlement, created in extra:
            session.add(
                Case(
                    number=f"{code}-2026-000001",
                    resident_id=resident.id,
                    hromada_id=ref[code].id,
                    settlement_id=settlements[settlement].id if settlement else None,
                    service_id=services[service].id,
                    team_id=team.id,
                    status="new",
                    description=DESCRIPTION,
                    routing_kind="own",
                    routing_detail={},
                    created_at=created,
                )
            )
        # Visits: one done in the week counts; a planned one and one done before it do not.
        for case_index, status, starts in (
            (8, "done", at(21, 14)),
            (6, "planned", at(21, 9)),
            (0, "done", at(10, 9)),
        ):
            session.add(
                Visit(
                    case_id=ids[case_index],
                    worker_id=worker.id,
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=1),
                    who_comes=WORKER_NAME,
                    status=status,
                )
            )
        matviivka = MobileOfficeSchedule(
            settlement_id=settlements["matviivka"].id,
            weekday=1,
            start_time=time(10),
            end_time=time(13),
            valid_from=date(2026, 1, 1),
            place=NAME,
        )
        vesele = MobileOfficeSchedule(
            settlement_id=settlements["vesele"].id,
            weekday=3,
            start_time=time(10),
            end_time=time(12),
            valid_from=date(2026, 1, 1),
        )
        session.add_all([matviivka, vesele])
        await session.flush()
        for slot, status in ((time(10), "booked"), (time(10, 20), "booked"), (time(10, 40), "cancelled")):
            session.add(
                MobileOfficeBooking(
                    schedule_id=matviivka.id,
                    trip_date=date(2026, 11, 17),
                    slot_start=slot,
                    user_id=resident.user_id,
                    topic=DESCRIPTION,
                    status=status,
                )
            )
        for hromada, moment, found in (
            ("VES", at(16, 10), True),
            ("VES", at(17, 10), True),
            ("VES", at(18, 10), False),
            ("PYR", at(18, 10), True),
            ("VES", at(10, 10), True),
        ):
            session.add(StatusLookup(hromada_id=ref[hromada].id, at=moment, found=found))


def tables_by_key(tables):
    return {t.key: t for t in tables}


async def ves_scope(session):
    ves = await session.scalar(select(Hromada.id).where(Hromada.code == "VES"))
    from services.report_tables import ReportScope

    return ReportScope((ves,))


async def test_report_figures_match_hand_computed_ones(sessionmaker, reference) -> None:
    await seed(sessionmaker)
    async with sessionmaker() as session:
        tables = tables_by_key(await build_report(session, await ves_scope(session), WEEK, KYIV))
    assert tables["reports.t.totals"].rows == [("reports.row.requests", 11)]
    # subsidy 6; home care 3 and humanitarian aid 2 pooled (5).
    assert tables["reports.t.by_service"].rows == [("Житлова субсидія", 6), (OTHER, 5)]
    # Vesele 6; Matviivka 4 and "no settlement" 1 pooled (5).
    assert tables["reports.t.by_settlement"].rows == [("Веселе", 6), (OTHER, 5)]
    # resolved 5; new 2, in progress 2, rejected 2 pooled (6).
    assert tables["reports.t.by_status"].rows == [("reports.status.resolved", 5), ("reports.status.other", 6)]
    times = {row[0]: row[1:] for row in tables["reports.t.times"].rows}
    # Subsidy first responses 1, 2, 4, 10, 30 h: median 4, p90 22.0, 4 of 5 within 24 h;
    # three resolutions only: no times published.
    assert times["Житлова субсидія"] == (4.0, 22.0, 80.0, None, None)
    # The pooled services have four responses: too few to publish.
    assert times[OTHER] == (None, None, None, None, None)
    # All: 1 2 3 4 6 10 12 30 48 → median 6, p90 33.6, 7 of 9 on time; resolutions
    # 8 20 26 50 100 → median 26, p90 80.
    assert times["reports.row.all"] == (6.0, 33.6, 77.8, 26.0, 80.0)
    assert tables["reports.t.unmet"].rows == [
        ("reports.row.fallback", 2),
        ("reports.row.rejected", 2),
        ("reports.row.long_waits", 1),
    ]
    assert tables["reports.t.rejected"].rows == [(OTHER, 2)]
    assert tables["reports.t.fallback"].rows == [(OTHER, 2)]
    assert tables["reports.t.activity"].rows == [
        ("reports.row.visits_done", 1),
        ("reports.row.lookups", 3),
        ("reports.row.lookups_found", 2),
    ]
    # Matviivka: one Tuesday trip, two bookings (pooled: fewer than five); Vesele: one trip.
    assert sorted(tables["reports.t.mobile_office"].rows) == [(OTHER, 1, 2), ("Веселе", 1, 0)]
    # Published: every count from 1 to 4 is "<5".
    assert tables["reports.t.unmet"].published() == [
        ("reports.row.fallback", "<5"),
        ("reports.row.rejected", "<5"),
        ("reports.row.long_waits", "<5"),
    ]


async def test_share_on_time_is_the_sla_share_where_cases_have_an_sla(sessionmaker, reference) -> None:
    await seed(sessionmaker, sla=SLA_STATES)
    async with sessionmaker() as session:
        tables = tables_by_key(await build_report(session, await ves_scope(session), WEEK, KYIV))
    times = {row[0]: row[1:] for row in tables["reports.t.times"].rows}
    # Calendar hours as before; the share: subsidy 3 met of 4 with an SLA, the pooled services
    # 2 of 3 — below five, not published (no fallback to the 24-hour share: they have an SLA).
    assert times["Житлова субсидія"] == (4.0, 22.0, None, None, None)
    assert times[OTHER] == (None, None, None, None, None)
    assert times["reports.row.all"] == (6.0, 33.6, 71.4, 26.0, 80.0)
    assert summary_values(list(tables.values()))["on_time"] == 71.4


async def test_first_responses_backfilled_from_the_audit_trail_give_the_same_report(
    sessionmaker, reference
) -> None:
    await seed(sessionmaker, first_responses=False)
    async with sessionmaker.begin() as session:
        assert await session.scalar(select(func.count()).where(Case.first_responded_at.is_not(None))) == 0
        await session.execute(BACKFILL_FIRST_RESPONSE)
    async with sessionmaker() as session:
        # The two workers' responses of every answered case; the residents' own messages and
        # the system's "created" entries are not responses.
        assert await session.scalar(select(func.count()).where(Case.first_responded_at.is_not(None))) == 10
        tables = tables_by_key(await build_report(session, await ves_scope(session), WEEK, KYIV))
    times = {row[0]: row[1:] for row in tables["reports.t.times"].rows}
    assert times["Житлова субсидія"] == (4.0, 22.0, 80.0, None, None)
    assert times["reports.row.all"] == (6.0, 33.6, 77.8, 26.0, 80.0)


async def test_oblast_role_sees_the_whole_oblast_and_coordinator_only_their_hromadas(
    sessionmaker, reference
) -> None:
    await seed(sessionmaker)
    oblast = await add_worker(sessionmaker, 5201, "zp-oblast", role=ROLE_OBLAST)
    coordinator = await add_worker(sessionmaker, 5202, "ves-csp", role=ROLE_COORDINATOR)
    plain = await add_worker(sessionmaker, 5203, "ves-csp")
    async with sessionmaker() as session:
        zaporizka = set(
            (await session.scalars(select(Hromada.id).where(Hromada.oblast == "zaporizka"))).all()
        )
        access = await report_access(session, oblast)
        assert access is not None and access.oblast_level and set(access.scope.hromada_ids) == zaporizka
        assert access.scope.oblast == "zaporizka"
        coord = await report_access(session, coordinator)
        assert coord is not None and not coord.oblast_level
        assert coord.scope.hromada_ids == ((await ves_scope(session)).hromada_ids)
        assert await report_access(session, plain) is None
        tables = tables_by_key(await build_report(session, access.scope, WEEK, KYIV))
    # Veselivska's 11 and Berestivska's one; Pyriatynska is in another oblast.
    assert tables["reports.t.totals"].rows == [("reports.row.requests", 12)]
    assert tables["reports.t.by_service"].rows == [("Житлова субсидія", 7), (OTHER, 5)]


def test_pooling_never_leaves_a_small_count_to_subtract() -> None:
    rows, where = pool_small([("a", 20), ("b", 3), ("c", 7), ("d", 0)])
    # b (3) alone is below five: the smallest listed category, c, joins it.
    assert rows == [("a", 20), (OTHER, 10)]
    assert where == {"a": "a", "b": OTHER, "c": OTHER}
    assert pool_small([("a", 6), ("b", 2), ("c", 4)])[0] == [("a", 6), (OTHER, 6)]
    assert pool_small([("a", 3)])[0] == [(OTHER, 3)]
    assert pool_small([("a", 5), ("b", 9)])[0] == [("b", 9), ("a", 5)]
    assert percentile([1, 2, 4, 10, 30], 90) == pytest.approx(22.0)


def test_periods() -> None:
    assert week_period(date(2026, 11, 23), 1) == WEEK
    assert week_period(date(2026, 11, 26)) == Period(date(2026, 11, 23), date(2026, 11, 29))
    assert month_period(date(2026, 1, 10), 1) == Period(date(2025, 12, 1), date(2025, 12, 31))
    assert month_period(date(2026, 2, 10)) == Period(date(2026, 2, 1), date(2026, 2, 28))


def translate(key: str) -> str:
    return {"reports.t.by_service": "За послугами", "reports.c.requests": "Звернень"}.get(key, key)


async def test_xlsx_has_a_typed_sheet_per_table_and_csv_opens_in_excel(sessionmaker, reference) -> None:
    await seed(sessionmaker)
    async with sessionmaker() as session:
        tables = await build_report(session, await ves_scope(session), WEEK, KYIV)
    workbook = load_workbook(io.BytesIO(xlsx_bytes(tables, translate)))
    assert len(workbook.sheetnames) == len(tables)
    sheet = workbook["За послугами"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:B3"
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == ("reports.c.service", "Звернень")
    assert values[1] == ("Житлова субсидія", 6)
    assert isinstance(values[1][1], int)
    times = workbook[workbook.sheetnames[[t.key for t in tables].index("reports.t.times")]]
    all_row = next(r for r in times.iter_rows(values_only=True) if r[0] == "reports.row.all")
    assert all_row[1:] == (6.0, 33.6, 77.8, 26.0, 80.0)
    # Real number cells (openpyxl reads 6.0 back as 6).
    assert all(isinstance(v, (int, float)) for v in all_row[1:])
    assert times.cell(row=2, column=2).number_format == "0.0"
    unmet = workbook[workbook.sheetnames[[t.key for t in tables].index("reports.t.unmet")]]
    assert [r[1] for r in unmet.iter_rows(min_row=2, values_only=True)] == ["<5", "<5", "<5"]

    archive = zipfile.ZipFile(io.BytesIO(csv_zip_bytes(tables, translate)))
    assert len(archive.namelist()) == len(tables)
    raw = archive.read(next(n for n in archive.namelist() if n.endswith("_by_service.csv")))
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows == [["reports.c.service", "Звернень"], ["Житлова субсидія", "6"], [OTHER, "5"]]


async def test_no_personal_data_in_any_report_export_or_chart(sessionmaker, reference) -> None:
    await seed(sessionmaker)
    async with sessionmaker() as session:
        tables = await build_report(session, await ves_scope(session), WEEK, KYIV)
    texts = [repr(t.rows) for t in tables]
    workbook = zipfile.ZipFile(io.BytesIO(xlsx_bytes(tables, translate)))
    texts += [workbook.read(n).decode("utf-8") for n in workbook.namelist()]
    archive = zipfile.ZipFile(io.BytesIO(csv_zip_bytes(tables, translate)))
    texts += [archive.read(n).decode("utf-8-sig") for n in archive.namelist()]
    everything = "\n".join(texts)
    assert "Житлова субсидія" in everything  # the check reads real content
    for secret in (
        PHONE,
        PHONE[4:],
        NAME,
        "Коваленко",
        DESCRIPTION,
        REASON,
        "Петренко",
        WORKER_NAME,
        "VES-2026",
    ):
        assert secret not in everything
    for table in tables:
        png = bar_chart_png(table, translate, title=table.key)
        if png is not None:
            for secret in (NAME, PHONE, WORKER_NAME):
                assert secret.encode() not in png


def test_chart_is_a_phone_sized_png() -> None:
    from PIL import Image

    from services.report_tables import Column, ReportTable

    table = ReportTable(
        "reports.t.by_service",
        (Column("reports.c.service"), Column("reports.c.requests", "count")),
        [("Житлова субсидія", 40), ("Догляд вдома", 12), (OTHER, 3)],
    )
    png = bar_chart_png(table, lambda k: "Інші" if k == OTHER else k, title="Звернення за послугами")
    assert png is not None
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (1080, 1350)
