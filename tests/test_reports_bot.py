"""Reports in the bot: a coordinator gets the summary, charts as PNG photos and the XLSX/CSV
files; typed dates are validated; a plain worker is refused; the oblast role is granted by an
invite; the weekly report goes out once through the outbox and opens the full report."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from aiogram.methods import SendDocument, SendPhoto
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import func, select

from models import OutboxMessage, TeamMember, Worker
from models.people import ROLE_COORDINATOR, ROLE_OBLAST
from services.clock import FrozenClock
from services.report_weekly import plan_weekly_reports
from services.workers import WorkerService
from tests.factories import add_worker
from tests.test_reports import KYIV, NAME, PHONE, seed

# Monday 23 November 2026, 10:00 in Kyiv: "last week" is 16–22 November, the seeded week.
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def _calls(tg, method, chat_id):
    return [c.method for c in tg.calls if isinstance(c.method, method) and c.method.chat_id == chat_id]


async def test_coordinator_gets_summary_charts_and_exports(make_client, reference, sessionmaker, tg) -> None:
    await seed(sessionmaker)
    await add_worker(sessionmaker, 6101, "ves-csp", role=ROLE_COORDINATOR)
    coordinator = make_client(user_id=6101)
    panel = (await coordinator.send("/worker"))[-1]
    assert "📊 Звіти" in panel.buttons()
    menu = (await coordinator.click("Звіти"))[-1]
    assert "Минулий тиждень" in menu.buttons()
    replies = await coordinator.click("Минулий тиждень")
    summary = next(r for r in replies if "Звіт за 16.11.2026–22.11.2026" in r.text)
    assert "Веселівська" in summary.text
    assert "Звернень: <b>11</b>" in summary.text
    assert "медіана 6 год, 90% — до 33,6 год" in summary.text
    assert "передано в область (немає команди): &lt;5" in summary.text
    assert "Житлова субсидія — 6" in summary.text and "Інші (менше 5 у кожному) — 5" in summary.text
    photos = _calls(tg, SendPhoto, 6101)
    assert len(photos) == 2
    for photo in photos:
        image = Image.open(io.BytesIO(photo.photo.data))
        assert image.format == "PNG" and image.size == (1080, 1350)

    await coordinator.click("Excel (XLSX)")
    document = _calls(tg, SendDocument, 6101)[-1].document
    assert document.filename == "report_20261116_20261122.xlsx"
    workbook = load_workbook(io.BytesIO(document.data))
    assert "Звернення за послугами" in workbook.sheetnames
    rows = list(workbook["Звернення за послугами"].iter_rows(values_only=True))
    assert rows == [("Послуга", "Звернень"), ("Житлова субсидія", 6), ("Інші (менше 5 у кожному)", 5)]
    # The features' sections come with the requests' own: deadlines, ratings, survey results.
    assert "Дотримання строків (SLA)" in workbook.sheetnames
    assert "Задоволеність мешканців" in workbook.sheetnames
    assert any(name.startswith("Опитування") for name in workbook.sheetnames)
    await coordinator.click("CSV")
    archive = zipfile.ZipFile(io.BytesIO(_calls(tg, SendDocument, 6101)[-1].document.data))
    everything = "".join(archive.read(n).decode("utf-8-sig") for n in archive.namelist())
    assert "Послуга;Звернень" in everything
    assert NAME not in everything and PHONE not in everything


async def test_typed_period_is_validated(make_client, reference, sessionmaker) -> None:
    await seed(sessionmaker)
    await add_worker(sessionmaker, 6201, "ves-csp", role=ROLE_COORDINATOR)
    coordinator = make_client(user_id=6201)
    await coordinator.send("/reports")
    asked = (await coordinator.click("Інший період"))[-1]
    assert "01.11.2026–30.11.2026" in asked.text
    for wrong in ("вчора", "30.11.2026–01.11.2026", "01.01.2025–31.12.2026", "31.02.2026–01.03.2026"):
        assert "Не вдалося прочитати дати" in (await coordinator.send(wrong))[-1].text
    assert "текстом" in (await coordinator.send_sticker())[-1].text
    replies = await coordinator.send("16.11.2026 - 22.11.2026")
    assert any("Звернень: <b>11</b>" in r.text for r in replies)


async def test_plain_worker_is_refused(make_client, reference, sessionmaker) -> None:
    await add_worker(sessionmaker, 6301, "ves-csp")
    worker = make_client(user_id=6301)
    assert "📊 Звіти" not in (await worker.send("/worker"))[-1].buttons()
    assert "координаторам" in (await worker.send("/reports"))[-1].text
    # A forged press gets the same refusal, and no report.
    replies = await worker.click_data("rep:period:w1")
    assert replies[0].kind == "alert" and "координаторам" in replies[0].text
    assert not any("Звернень" in r.text for r in replies)


async def test_oblast_role_by_invite_sees_the_oblast(make_client, reference, sessionmaker, clock) -> None:
    await seed(sessionmaker)
    head = await add_worker(sessionmaker, 6401, "zp-oblast", role=ROLE_COORDINATOR)
    async with sessionmaker.begin() as session:
        service = WorkerService(session)
        from models import Team

        oblast_team = await session.scalar(select(Team).where(Team.code == "zp-oblast"))
        ves_team = await session.scalar(select(Team).where(Team.code == "ves-csp"))
        creator = await session.get(Worker, head.id)
        token = await service.create_invite(
            creator=creator, team=oblast_team, role=ROLE_OBLAST, ttl=timedelta(days=1)
        )
        # The oblast role exists only in an oblast fallback team.
        with pytest.raises(ValueError):
            await service.create_invite(
                creator=creator, team=ves_team, role=ROLE_OBLAST, ttl=timedelta(days=1)
            )
    analyst = make_client(user_id=6402)
    await analyst.send(f"/start {token}")
    async with sessionmaker() as session:
        roles = (await session.scalars(select(TeamMember.role).where(TeamMember.role == ROLE_OBLAST))).all()
    assert roles == [ROLE_OBLAST]
    await analyst.send("/reports")
    replies = await analyst.click("Минулий тиждень")
    summary = next(r for r in replies if "Звіт за" in r.text)
    assert "Уся область: громад — 5" in summary.text
    assert "Звернень: <b>12</b>" in summary.text


async def test_weekly_report_goes_out_once_and_opens_the_report(
    make_client, reference, sessionmaker, deliverer, clock
) -> None:
    await seed(sessionmaker)
    await add_worker(sessionmaker, 6501, "ves-csp", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 6502, "zp-oblast", role=ROLE_OBLAST)
    await add_worker(sessionmaker, 6503, "ves-csp")
    async with sessionmaker.begin() as session:
        # Sunday evening: nothing yet.
        assert await plan_weekly_reports(session, datetime(2026, 11, 22, 18, tzinfo=UTC), KYIV) == 0
        # Monday 07:30 in Kyiv: still nothing; 10:00: one each for the coordinator and the oblast.
        assert await plan_weekly_reports(session, datetime(2026, 11, 23, 5, 30, tzinfo=UTC), KYIV) == 0
        assert await plan_weekly_reports(session, NOW, KYIV) == 2
    async with sessionmaker.begin() as session:
        assert await plan_weekly_reports(session, NOW.replace(hour=9), KYIV) == 0
        rows = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "weekly_report"))
        ).all()
        assert all(NAME not in str(r.payload) and PHONE not in str(r.payload) for r in rows)
        assert await session.scalar(select(func.count(OutboxMessage.id))) == 2
    await deliverer.deliver_due()
    coordinator = make_client(user_id=6501)
    notice = next(r for r in coordinator.read() if "Тижневий звіт" in r.text)
    assert "16.11.2026–22.11.2026" in notice.text and "Звернень: <b>11</b>" in notice.text
    oblast = make_client(user_id=6502)
    assert any("Звернень: <b>12</b>" in r.text for r in oblast.read())
    assert make_client(user_id=6503).read() == []
    replies = await coordinator.click("Відкрити звіт", message_id=notice.message_id)
    assert any("Звіт за 16.11.2026–22.11.2026" in r.text for r in replies)
