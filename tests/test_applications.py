"""Application status through the bot: verified self-check, foreign contacts, lookups by number
(another person's number reveals nothing), subscriptions and pushes, throttling, the worker's
status change and lookups report, imports sent as files. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiogram.methods import GetFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.offline import BotClient
from handlers.kit.callbacks import AppCb, AppStatusCb
from handlers.kit.notices import render_notice
from infra.i18n import create_i18n
from models import (
    Application,
    ApplicationStatusChange,
    ApplicationSubscription,
    Hromada,
    LookupAttempt,
    OutboxMessage,
    Resident,
)
from models.people import ROLE_COORDINATOR
from services.clock import FrozenClock
from services.outbox import PAYLOAD_VERSION, VERSION_KEY
from tests.factories import add_worker

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MY_PHONE = "+380501234567"
OTHER_PHONE = "+380679876543"
NOT_FOUND = "Заяву з таким номером за вашим номером телефону не знайдено"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def add_app(
    sessionmaker,
    number: str,
    phone: str,
    status: str = "received",
    *,
    kind: str = "idp_registration",
    hromada: str | None = "PYR",
    at: datetime = datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
) -> int:
    async with sessionmaker.begin() as session:
        hromada_id = (
            await session.scalar(select(Hromada.id).where(Hromada.code == hromada)) if hromada else None
        )
        app = Application(
            number=number,
            kind=kind,
            phone=phone,
            hromada_id=hromada_id,
            status_code=status,
            status_changed_at=at,
        )
        session.add(app)
        await session.flush()
        session.add(
            ApplicationStatusChange(
                application_id=app.id, from_status=None, to_status=status, changed_at=at, source="import"
            )
        )
        return app.id


async def verify(client: BotClient, phone: str = MY_PHONE):
    await client.send("/status")
    return await client.share_contact(phone.lstrip("+"))


def texts(replies) -> str:
    return "\n".join(r.text for r in replies)


async def test_push_button_is_the_factorys_unsubscribe() -> None:
    payload = {
        VERSION_KEY: PAYLOAD_VERSION,
        "application_id": 17,
        "number": "ВПО-5",
        "status": "Готово",
        "date": "2026-11-22",
        "next_step": "",
    }
    _, markup = render_notice("app_status_changed", payload, "uk", create_i18n())
    assert markup.inline_keyboard[0][0].callback_data == AppCb(action="unsub", application_id=17).pack()


async def test_without_consent_the_check_explains_and_offers_consent(make_client, reference) -> None:
    client = make_client()
    await client.send("/start")
    await client.click("Українська")
    replies = await client.send("/status")
    assert "потрібна ваша згода" in replies[0].text
    assert "✅ Погоджуюсь" in replies[0].buttons()
    await client.click("Погоджуюсь")
    replies = await client.press("Стан моєї заяви")
    assert "Надіслати мій номер" in replies[0].text
    assert replies[0].method.reply_markup.keyboard[0][0].request_contact is True


async def test_verified_phone_shows_own_applications_with_history(resident, sessionmaker) -> None:
    mine = await add_app(sessionmaker, "ВПО-2026-001", MY_PHONE)
    await add_app(sessionmaker, "С-77", MY_PHONE, "documents_missing", kind="subsidy", hromada=None)
    await add_app(sessionmaker, "ЧУЖА-1", OTHER_PHONE)
    async with sessionmaker.begin() as session:
        app = await session.get(Application, mine)
        app.status_code, app.status_changed_at = "in_review", datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
        session.add(
            ApplicationStatusChange(
                application_id=mine,
                from_status="received",
                to_status="in_review",
                changed_at=app.status_changed_at,
                source="import",
            )
        )

    replies = await resident.press("Стан моєї заяви")
    assert "Надіслати мій номер" in replies[0].text
    replies = await resident.share_contact("380501234567")
    body = texts(replies)
    assert "номер підтверджено" in body
    assert f"За номером {MY_PHONE} знайдено 2 заяви" in body
    assert "ЧУЖА-1" not in body
    card = next(r for r in replies if "ВПО-2026-001" in r.text)
    assert "Довідка ВПО" in card.text
    assert "Стан: <b>На розгляді</b> (з 20.11.2026)" in card.text
    assert "до 10 робочих днів" in card.text  # next step from the YAML
    assert "• 18.11.2026 — Заяву прийнято\n• 20.11.2026 — На розгляді" in card.text
    subsidy = next(r for r in replies if "С-77" in r.text)
    assert "Житлова субсидія" in subsidy.text and "Бракує документів" in subsidy.text
    async with sessionmaker() as session:
        stored = await session.scalar(select(Resident).where(Resident.phone == MY_PHONE))
        assert stored is not None and stored.phone_verified_at is not None
    # Next time no contact is needed.
    replies = await resident.send("/status")
    assert "знайдено 2 заяви" in replies[0].text


async def test_foreign_or_forwarded_contact_is_refused(resident, sessionmaker) -> None:
    await add_app(sessionmaker, "ВПО-1", MY_PHONE)
    await resident.send("/status")
    replies = await resident.share_contact(MY_PHONE, own=False)
    assert "не ваш власний контакт" in replies[0].text
    assert "ВПО-1" not in texts(replies)
    async with sessionmaker() as session:
        assert await session.scalar(select(Resident.phone).where(Resident.phone.is_not(None))) is None
    # Still waiting for the contact: typed text is answered, the own contact works.
    replies = await resident.send("0501234567")
    assert "натисніть кнопку" in replies[0].text
    replies = await resident.share_contact(MY_PHONE)
    assert "ВПО-1" in texts(replies)


async def test_non_ukrainian_phone_is_explained(resident) -> None:
    await resident.send("/status")
    replies = await resident.share_contact("+48501234567")
    assert "не український" in replies[0].text


async def test_number_of_another_phone_reveals_nothing(resident, sessionmaker) -> None:
    await add_app(sessionmaker, "ВПО-МОЯ", MY_PHONE)
    await add_app(sessionmaker, "ВПО-ЧУЖА", OTHER_PHONE, "approved")
    await verify(resident)
    await resident.click("Знайти за номером")
    foreign = await resident.send("ВПО-ЧУЖА")
    missing = await resident.send("ВПО-НЕМАЄ")
    assert len(foreign) == len(missing) == 1
    assert foreign[0].text == missing[0].text
    assert NOT_FOUND in foreign[0].text
    assert foreign[0].inline == missing[0].inline
    replies = await resident.send("впо-моя")  # case and spaces do not matter
    assert "<b>Заява № ВПО-МОЯ</b>" in replies[0].text
    # A forged "open" for someone else's application is refused like a stale button.
    async with sessionmaker() as session:
        other_id = await session.scalar(select(Application.id).where(Application.number == "ВПО-ЧУЖА"))
    for action in ("open", "sub"):
        replies = await resident.click_data(AppCb(action=action, application_id=other_id).pack())
        assert replies[0].kind == "alert"
        assert "Призначено" not in texts(replies)


async def test_subscribe_push_on_change_then_unsubscribe(
    resident, make_client, sessionmaker, deliverer, reference
) -> None:
    app_id = await add_app(sessionmaker, "ВПО-5", MY_PHONE)
    await add_worker(sessionmaker, 7001, "pyr-cnap")
    worker = make_client(user_id=7001)
    await verify(resident)
    replies = await resident.click("Повідомляти про зміни")
    # The press is answered after its handler, so the toast comes after the card's edit.
    toasts = [r for r in replies if r.kind == "toast"]
    assert len(toasts) == 1 and "повідомлю" in toasts[0].text
    assert any(r.kind == "edit" and r.buttons() == ["🔕 Не повідомляти"] for r in replies)

    replies = await worker.send("/app впо-5")
    assert "+380 ** *** **67" in replies[0].text and MY_PHONE not in replies[0].text
    replies = await worker.click("Бракує документів")
    toasts = [r for r in replies if r.kind == "toast"]
    assert len(toasts) == 1 and "Підписників повідомлено: 1" in toasts[0].text
    assert await deliverer.deliver_due() == 1
    pushes = resident.read()
    assert len(pushes) == 1
    assert "Заява № ВПО-5" in pushes[0].text and "Бракує документів" in pushes[0].text
    assert "22.11.2026" in pushes[0].text and "Принесіть документи" in pushes[0].text
    async with sessionmaker() as session:
        change = await session.scalar(
            select(ApplicationStatusChange).where(ApplicationStatusChange.source == "worker")
        )
        assert change is not None and change.to_status == "documents_missing" and change.actor_user_id

    replies = await resident.click("Не повідомляти", message_id=pushes[0].message_id)
    toasts = [r for r in replies if r.kind == "toast"]
    assert len(toasts) == 1 and "Більше не повідомлятиму" in toasts[0].text
    await worker.click("Призначено")
    assert await deliverer.deliver_due() == 0
    assert resident.read() == []
    async with sessionmaker() as session:
        assert (await session.get(Application, app_id)).status_code == "approved"


async def test_push_is_in_the_subscribers_language(make_client, sessionmaker, deliverer, reference) -> None:
    client = make_client(language_code="en")
    await client.send("/start")
    await client.click("English")
    await client.click("I agree")
    await add_app(sessionmaker, "EN-1", MY_PHONE)
    await add_worker(sessionmaker, 7002, "pyr-cnap")
    await verify(client)
    await client.click("Notify me")
    worker = make_client(user_id=7002)
    await worker.send("/app EN-1")
    await worker.click("Призначено")
    await deliverer.deliver_due()
    push = client.read()[0]
    assert "Application № EN-1" in push.text and "Approved" in push.text
    assert push.buttons() == ["🔕 Stop notifications"]


async def test_number_lookups_are_throttled_and_reported_without_personal_data(
    resident, make_client, sessionmaker, clock, reference
) -> None:
    await add_app(sessionmaker, "ВПО-9", MY_PHONE)
    await verify(resident)
    await resident.click("Знайти за номером")
    for n in range(5):
        replies = await resident.send(f"ВПО-{100 + n}")
        assert NOT_FOUND in replies[0].text
    replies = await resident.send("ВПО-9")
    assert "Забагато спроб" in replies[0].text and "10 хв" in replies[0].text
    clock.advance(minutes=10, seconds=1)
    await resident.click("Знайти за номером")
    replies = await resident.send("ВПО-9")
    assert "<b>Заява № ВПО-9</b>" in replies[0].text
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(LookupAttempt)) == 6
        user_id = await session.scalar(select(Resident.user_id))

    await add_worker(sessionmaker, 7003, "pyr-cnap", role=ROLE_COORDINATOR)
    await add_worker(sessionmaker, 7004, "pyr-cnap")
    report = (await make_client(user_id=7003).send("/lookups"))[0].text
    assert f"користувач #{user_id}: невдалих 5 із 6" in report
    assert "ВПО-10" not in report and "380" not in report
    assert "координаторам" in (await make_client(user_id=7004).send("/lookups"))[0].text
    # Not a worker at all: the command does not exist for them.
    assert "Такої команди немає" in (await resident.send("/lookups"))[0].text


async def test_worker_cannot_touch_other_hromadas_or_forge_statuses(
    make_client, sessionmaker, resident, reference
) -> None:
    app_id = await add_app(sessionmaker, "VES-1", MY_PHONE, hromada="VES")
    await add_worker(sessionmaker, 7005, "pyr-cnap")
    worker = make_client(user_id=7005)
    assert "немає серед заяв ваших громад" in (await worker.send("/app VES-1"))[0].text
    replies = await worker.click_data(AppStatusCb(application_id=app_id, status="approved").pack())
    assert replies[0].kind == "alert"
    replies = await resident.click_data(AppStatusCb(application_id=app_id, status="approved").pack())
    assert replies[0].kind == "alert"
    await add_worker(sessionmaker, 7006, "ves-csp")
    other = make_client(user_id=7006)
    await other.send("/app VES-1")
    replies = await other.click_data(AppStatusCb(application_id=app_id, status="no_such_status").pack())
    assert replies[0].kind == "alert"
    async with sessionmaker() as session:
        assert (await session.get(Application, app_id)).status_code == "received"
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def _table(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=";").writerows(rows)


async def send_table(app, client, file_name: str, mime_type: str) -> list:
    """Send a table file and wait for the import job it starts; everything the worker saw."""
    replies = await client.send_document(file_name, mime_type)
    await app.dispatcher["jobs"].wait()
    return replies + client.read()


async def test_worker_imports_a_file_through_telegram_with_progress_and_report(
    make_client, app, sessionmaker, reference, tmp_path, resident, deliverer
) -> None:
    await add_worker(sessionmaker, 7007, "pyr-cnap")
    app_id = await add_app(sessionmaker, "ВПО-1", MY_PHONE)
    await verify(resident)
    await resident.click("Повідомляти про зміни")
    source = tmp_path / "export.csv"
    rows = [["Номер заяви", "Телефон", "Вид допомоги", "Статус", "Дата зміни статусу"]]
    rows.append(["ВПО-1", MY_PHONE, "Довідка ВПО", "Призначено", "21.11.2026"])
    rows += [[f"N-{i}", "0501112233", "субсидія", "прийнято", "20.11.2026"] for i in range(2500)]
    rows.append(["BAD", "12", "субсидія", "прийнято", "20.11.2026"])
    _table(source, rows)

    async def reader(bot, document, destination: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, source, destination)

    app.dispatcher["status_file_reader"] = reader
    app.dispatcher["import_progress_interval"] = 0.0
    worker = make_client(user_id=7007)
    replies = await send_table(app, worker, "export.csv", "text/csv")
    assert replies[0].text.startswith("⏳")
    edits = [r for r in replies if r.kind == "edit"]
    assert any("оброблено рядків — 1000" in r.text for r in edits)
    final = edits[-1].text
    assert "Імпорт завершено" in final and "Додано: 2500" in final and "Оновлено: 1" in final
    assert "рядок 2503: телефон не у форматі" in final
    assert "Повідомлень підписникам: 1" in final
    await deliverer.deliver_due()
    assert "Призначено" in resident.read()[0].text
    async with sessionmaker() as session:
        assert (await session.get(Application, app_id)).status_code == "approved"

    # The same file again: nothing changes, nobody is pushed twice.
    replies = await send_table(app, worker, "export.csv", "text/csv")
    final = [r for r in replies if r.kind == "edit"][-1].text
    assert "Додано: 0" in final and "Оновлено: 0" in final and "Без змін: 2501" in final
    assert await deliverer.deliver_due() == 0


async def test_import_command_and_the_real_download_path(
    make_client, app, sessionmaker, reference, tg
) -> None:
    await add_worker(sessionmaker, 7008, "pyr-cnap")
    worker = make_client(user_id=7008)
    assert "CSV або XLSX" in (await worker.send("/import"))[0].text
    assert "Надішліть таблицю файлом" in (await worker.send("готово"))[0].text
    assert "лише файли .csv і .xlsx" in (await worker.send_document("scan.pdf"))[0].text
    # bot.download: getFile answered, the recording session streams no bytes → an empty file.
    tg.queue_result(
        {"file_id": "f", "file_unique_id": "uf", "file_size": 10, "file_path": "documents/t.csv"},
        method=GetFile,
    )
    replies = await send_table(app, worker, "statuses.csv", "text/csv")
    assert "Файл не імпортовано, нічого не змінено: файл порожній" in replies[-1].text
    assert any(isinstance(c.method, GetFile) for c in tg.calls)


async def test_missing_column_file_is_refused_with_a_clear_reason(
    make_client, app, sessionmaker, reference, tmp_path
) -> None:
    await add_worker(sessionmaker, 7009, "pyr-cnap")
    source = tmp_path / "bad.csv"
    _table(source, [["номер заяви", "телефон", "статус"], ["1", MY_PHONE, "прийнято"]])

    async def reader(bot, document, destination: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, source, destination)

    app.dispatcher["status_file_reader"] = reader
    replies = await send_table(app, make_client(user_id=7009), "bad.csv", "text/csv")
    text = replies[-1].text
    assert "нічого не змінено" in text and "немає стовпців: вид допомоги, дата зміни статусу" in text


async def test_a_resident_sending_a_table_imports_nothing(resident, sessionmaker, app, tmp_path) -> None:
    called = []

    async def reader(bot, document, destination: Path) -> None:
        called.append(document)

    app.dispatcher["status_file_reader"] = reader
    replies = await resident.send_document("statuses.csv", "text/csv")
    assert not called
    assert "Імпорт" not in texts(replies)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.text(min_size=1, max_size=80).filter(lambda t: not t.startswith("/") and t.strip()))
async def test_any_typed_number_gets_a_polite_answer(resident, sessionmaker, text) -> None:
    # Fixtures live for the whole test, not per example: set up once, on the first example.
    async with sessionmaker() as session:
        ready = await session.scalar(select(Application.id).where(Application.number == "ВПО-77"))
    if ready is None:
        await add_app(sessionmaker, "ВПО-77", MY_PHONE)
        await verify(resident)
    await resident.click("Знайти за номером")
    replies = await resident.send(text)
    assert len(replies) == 1
    answer = replies[0].text
    assert any(
        marker in answer
        for marker in (NOT_FOUND, "Номер заяви складається", "Забагато спроб", "Заява № ВПО-77")
    ), answer
    assert "Вибачте, сталася помилка" not in answer


async def test_a_new_number_replaces_the_old_one_and_its_subscriptions(resident, sessionmaker) -> None:
    await add_app(sessionmaker, "СТАРА-1", MY_PHONE)
    await add_app(sessionmaker, "НОВА-1", OTHER_PHONE)
    await verify(resident)
    await resident.click("Повідомляти про зміни")
    replies = await resident.click("У мене інший номер")
    assert "Надіслати мій номер" in replies[0].text
    replies = await resident.share_contact(OTHER_PHONE)
    body = texts(replies)
    assert "НОВА-1" in body and "СТАРА-1" not in body
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ApplicationSubscription)) == 0
