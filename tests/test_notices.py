"""The notice renderer: each kind's payload of plain values → text and buttons, per language."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from aiogram.utils.i18n import I18n

from handlers.kit.callbacks import AppCb, CaseCb, VisitAnswerCb, VisitWorkerCb
from handlers.kit.notices import NOTICES, render_notice
from infra.i18n import create_i18n
from services.outbox import PAYLOAD_VERSION, VERSION_KEY


@functools.cache
def _i18n() -> I18n:
    return create_i18n()


def render(kind: str, locale: str = "uk", **values: Any):
    return render_notice(kind, {VERSION_KEY: PAYLOAD_VERSION, **values}, locale, _i18n())


def callbacks(markup) -> list[list[str]]:
    return [[button.callback_data for button in row] for row in markup.inline_keyboard]


def labels(markup) -> list[list[str]]:
    return [[button.text for button in row] for row in markup.inline_keyboard]


CASE_NEW = {
    "case_id": 42,
    "number": "VES-2026-000042",
    "service_uk": "Субсидія <b>",
    "service_en": "Subsidy <b>",
    "hromada_uk": "Веселівська",
    "hromada_en": "Veselivska",
    "settlement_uk": None,
    "settlement_en": None,
}
VISIT = {
    "visit_id": 9,
    "number": "VES-2026-000042",
    "starts_at": "2026-11-25T14:00:00+02:00",
    "ends_at": "2026-11-25T15:00:00+02:00",
    "who": "Олена & Co",
    "prepare": "",
}
DOCS = {"number": "VES-1", "items": ["Паспорт <копія>", "ІПН"], "place": "вул. Миру, 1", "note": "a<b"}


def test_new_case_escapes_names_and_packs_take_and_open() -> None:
    text, markup = render("case_new", **CASE_NEW, priority=3, excerpt="Тече <дах> & вікна")
    assert "Послуга: Субсидія &lt;b&gt;" in text and "<b>Нове звернення VES-2026-000042</b>" in text
    assert "населений пункт: —" in text and "Пріоритет: 3" in text
    assert text.endswith("\n\nТече &lt;дах&gt; &amp; вікна")
    assert labels(markup) == [["✋ Взяти в роботу", "📂 Відкрити"]]
    [[take, open_]] = callbacks(markup)
    assert CaseCb.unpack(take) == CaseCb(action="take", case_id=42)
    assert CaseCb.unpack(open_) == CaseCb(action="open", case_id=42)
    text, _ = render("case_new", "en", **CASE_NEW, priority=0, excerpt=None)
    assert "Subsidy &lt;b&gt;" in text and text.endswith("\n\n—")


def test_group_notice_has_only_open() -> None:
    text, markup = render("case_new_group", **CASE_NEW)
    assert "Субсидія &lt;b&gt;" in text
    assert [[CaseCb.unpack(c) for c in row] for row in callbacks(markup)] == [
        [CaseCb(action="open", case_id=42)]
    ]


@pytest.mark.parametrize(
    ("kind", "extra", "actions"),
    [
        ("case_assigned", {}, ["open"]),
        ("case_attachment_to_worker", {}, ["open"]),
        ("case_message_to_worker", {"text": "Коли <прийдете>?"}, ["open"]),
        ("case_cancelled_to_worker", {"reason": "<не треба>"}, ["open"]),
        ("case_transferred_to_team", {"note": "Для <області>"}, ["take", "open"]),
    ],
)
def test_worker_case_notices_open_the_case(kind: str, extra: dict[str, str], actions: list[str]) -> None:
    text, markup = render(kind, "en", case_id=5, number="N-1", **extra)
    assert "<b>N-1</b>" in text and not text.startswith("outbox.")
    for value in extra.values():
        assert value.replace("<", "&lt;").replace(">", "&gt;") in text
    [row] = callbacks(markup)
    assert [CaseCb.unpack(c) for c in row] == [CaseCb(action=a, case_id=5) for a in actions]
    assert all(not label.startswith("worker.btn") for label in labels(markup)[0])


def test_status_change_translates_status_and_composes_reason() -> None:
    text, markup = render(
        "case_status_changed", number="N-1", status="rejected", team="ЦНАП <1>", reason="Не <наша>"
    )
    assert markup is None
    assert "<b>⛔ Відхилено</b>" in text and "Команда: ЦНАП &lt;1&gt;" in text
    assert text.endswith("\nПричина: Не &lt;наша&gt;")
    text, _ = render("case_status_changed", "en", number="N-1", status="in_progress", team="T", reason=None)
    assert "<b>🔧 In progress</b>" in text and text.endswith("Team: T")


def test_messages_to_the_resident_name_the_team() -> None:
    text, markup = render("case_message_to_resident", number="N-1", team="A&B", text="<i>ok</i>")
    assert markup is None and "«A&amp;B»" in text and text.endswith("\n\n&lt;i&gt;ok&lt;/i&gt;")
    text, _ = render("case_transferred", number="N-1", team="A&B")
    assert "«A&amp;B»" in text


@pytest.mark.parametrize("kind", ["visit_new", "visit_changed"])
def test_visit_invitation_offers_the_residents_answers(kind: str) -> None:
    text, markup = render(kind, **VISIT)
    assert "25.11.2026, 14:00–15:00" in text
    assert "Хто прийде: Олена &amp; Co" in text and "Що підготувати: —" in text
    assert [[VisitAnswerCb.unpack(c) for c in row] for row in callbacks(markup)] == [
        [VisitAnswerCb(action="confirm", visit_id=9), VisitAnswerCb(action="reschedule", visit_id=9)],
        [VisitAnswerCb(action="cancel", visit_id=9)],
    ]


@pytest.mark.parametrize("kind", ["visit_day_before", "visit_soon", "visit_cancelled_by_worker"])
def test_visit_reminders_have_no_buttons(kind: str) -> None:
    text, markup = render(kind, "en", **VISIT)
    assert markup is None and "14:00" in text and "VES-2026-000042" in text


def test_residents_answer_lets_the_worker_move_or_cancel() -> None:
    visit = {k: v for k, v in VISIT.items() if k not in ("who", "prepare")}
    text, markup = render(
        "visit_answer_reschedule", **visit, note="Краще <ввечері>", proposed="2026-11-27T10:00:00+02:00"
    )
    assert "Пропонований час: 27.11.2026 10:00" in text and "Коментар: Краще &lt;ввечері&gt;" in text
    assert [[VisitWorkerCb.unpack(c) for c in row] for row in callbacks(markup)] == [
        [VisitWorkerCb(action="move", visit_id=9), VisitWorkerCb(action="cancel", visit_id=9)]
    ]
    text, markup = render("visit_answer_reschedule", **visit, note="без дати", proposed=None)
    assert "Пропонований час: —" in text
    _, markup = render("visit_answer_confirmed", **visit, note=None, proposed=None)
    assert markup is not None
    _, markup = render("visit_answer_cancelled", **visit, note=None, proposed=None)
    assert markup is None


def test_agenda_lists_visits() -> None:
    items = [
        {"time_from": "09:00", "time_to": "10:00", "settlement": "Веселе <1>", "number": "N-1"},
        {"time_from": "11:00", "time_to": "12:00", "settlement": "", "number": "N-2"},
    ]
    text, markup = render("visit_agenda", date="2026-11-25", items=items)
    assert markup is None and "25.11.2026</b> (2)" in text
    assert text.endswith("• 09:00–10:00 · Веселе &lt;1&gt; · N-1\n• 11:00–12:00 · — · N-2")


def test_document_request_and_reminders() -> None:
    text, markup = render("docs_requested", **DOCS, deadline="2026-12-04")
    assert markup is None
    assert "• Паспорт &lt;копія&gt;\n• ІПН" in text and "до <b>04.12.2026</b>" in text
    assert text.endswith("\n\na&lt;b")
    text, _ = render("docs_requested_open", "en", **DOCS, deadline=None)
    assert "04.12" not in text and text.endswith("\n\na&lt;b")
    for kind in ("docs_reminder", "docs_overdue"):
        text, _ = render(kind, **{**DOCS, "note": None}, deadline="2026-12-04")
        assert "04.12.2026" in text and "a&lt;b" not in text
    text, _ = render("docs_reminder_open", **{**DOCS, "note": None}, deadline=None)
    assert "вул. Миру, 1" in text


@pytest.mark.parametrize("kind", ["docs_requested", "docs_requested_open", "docs_reminder", "docs_overdue"])
def test_document_notices_name_the_office_or_ask_for_photos_when_there_is_none(kind: str) -> None:
    text, _ = render(kind, **DOCS, deadline="2026-12-04")
    assert "Куди принести: вул. Миру, 1" in text and "фото" in text
    text, _ = render(kind, "en", **DOCS, deadline="2026-12-04")
    assert "Where to bring them: вул. Миру, 1" in text
    for place in ("", None, "  "):
        text, _ = render(kind, **{**DOCS, "place": place}, deadline="2026-12-04")
        assert "Надішліть фото чи скан кожного документа сюди" in text
        assert "Куди принести" not in text and " до  " not in text
        text, _ = render(kind, "en", **{**DOCS, "place": place}, deadline="2026-12-04")
        assert "Send a photo or scan of each document here" in text and "Where to bring" not in text


def test_mobile_office_reminders() -> None:
    trip = {
        "settlement": "Веселе",
        "date": "2026-11-24",
        "time_from": "09:00",
        "time_to": "13:00",
        "place": None,
    }
    text, markup = render("mo_day_before", **trip)
    assert markup is None and "24.11.2026, з 09:00 до 13:00 у Веселе" in text and text.endswith("Де: —")
    text, _ = render("mo_booking_day_before", "en", **{**trip, "place": "Club <2>"}, slot="10:20")
    assert "10:20" in text and "Club &lt;2&gt;" in text


def test_renewal_and_application_push() -> None:
    text, markup = render("renewal_due", number="N-1", service="Допомога <x>", due="2027-01-01")
    assert markup is None and "«Допомога &lt;x&gt;»" in text and "<b>01.01.2027</b>" in text
    text, markup = render(
        "app_status_changed",
        "en",
        application_id=17,
        number="EN<1>",
        status="Approved",
        date="2026-11-22",
        next_step="",
    )
    assert "EN&lt;1&gt;" in text and "(22.11.2026)" in text
    assert labels(markup) == [["🔕 Stop notifications"]]
    assert AppCb.unpack(callbacks(markup)[0][0]) == AppCb(action="unsub", application_id=17)


def test_missing_values_raise_for_the_deliverer() -> None:
    with pytest.raises(KeyError):
        render("renewal_due", number="x")


def test_unknown_kind_gets_its_escaped_values_and_no_buttons() -> None:
    text, markup = render("nothing_known", a="<x>")
    assert text == "outbox.nothing_known" and markup is None


def test_old_shape_payload_is_rendered_as_it_was() -> None:
    text, markup = render_notice(
        "case_assigned",
        {"number": "N-1", "buttons": [[["worker.btn.open", "case:open:3"]]]},
        "uk",
        _i18n(),
    )
    assert "<b>N-1</b>" in text
    assert callbacks(markup) == [["case:open:3"]] and not labels(markup)[0][0].startswith("worker.")


@pytest.mark.parametrize("locale", ["uk", "en"])
def test_every_kind_has_its_text(locale: str) -> None:
    for kind in NOTICES:
        text = _i18n().gettext(f"outbox.{kind}", locale=locale)
        assert text != f"outbox.{kind}", (kind, locale)
