"""The new-request form's steps table and pure screens, without a dispatcher or a database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from handlers.kit.callbacks import IntakeCb
from handlers.resident.intake import screens
from handlers.resident.intake.steps import TABLE, Step, current, next_step, previous
from infra.i18n import create_i18n
from models import Hromada, Settlement
from services.cases import VULNERABILITY_MARKERS
from services.places import PlaceResults, SettlementHit

FOR_ME: dict[str, object] = {"on_behalf": False}
FOR_OTHER: dict[str, object] = {"on_behalf": True}

# The form as a resident goes through it, for themselves and for someone else.
PATH_FOR_ME = [
    Step.hromada,
    Step.settlement,
    Step.service,
    Step.vulnerability,
    Step.description,
    Step.attachments,
    Step.on_behalf,
    Step.contact,
    Step.confirm,
]
PATH_FOR_OTHER = [
    *PATH_FOR_ME[:7],
    Step.on_behalf_name,
    Step.on_behalf_relation,
    Step.contact,
    Step.confirm,
]


def test_step_values_are_the_strings_saved_in_drafts() -> None:
    # Drafts saved before the enum existed hold these strings in data["step"].
    assert [s.value for s in Step] == [
        "hromada",
        "settlement",
        "service",
        "vulnerability",
        "description",
        "attachments",
        "on_behalf",
        "on_behalf_name",
        "on_behalf_relation",
        "contact",
        "confirm",
    ]
    assert set(TABLE) == set(Step)


@pytest.mark.parametrize("path,data", [(PATH_FOR_ME, FOR_ME), (PATH_FOR_OTHER, FOR_OTHER)])
def test_next_and_previous_walk_the_whole_form(path: list[Step], data: dict[str, object]) -> None:
    for here, there in itertools.pairwise(path):
        assert next_step(here, data) == there, here
        assert previous(there.value, data) == here, there
    assert previous(path[0].value, data) is None
    assert next_step(path[-1], data) is None


def test_every_step_has_its_previous_and_next() -> None:
    expected_previous = {
        Step.hromada: None,
        Step.settlement: Step.hromada,
        Step.service: Step.settlement,
        Step.vulnerability: Step.service,
        Step.description: Step.vulnerability,
        Step.attachments: Step.description,
        Step.on_behalf: Step.attachments,
        Step.on_behalf_name: Step.on_behalf,
        Step.on_behalf_relation: Step.on_behalf_name,
        Step.contact: Step.on_behalf,
        Step.confirm: Step.contact,
    }
    expected_next = {
        Step.hromada: Step.settlement,
        Step.settlement: Step.service,
        Step.service: Step.vulnerability,
        Step.vulnerability: Step.description,
        Step.description: Step.attachments,
        Step.attachments: Step.on_behalf,
        Step.on_behalf: Step.contact,
        Step.on_behalf_name: Step.on_behalf_relation,
        Step.on_behalf_relation: Step.contact,
        Step.contact: Step.confirm,
        Step.confirm: None,
    }
    for step in Step:
        assert previous(step.value, FOR_ME) == expected_previous[step], step
        assert next_step(step, FOR_ME) == expected_next[step], step
    # Only the two steps around the "someone else" branch depend on the answer.
    assert previous(Step.contact.value, FOR_OTHER) == Step.on_behalf_relation
    assert next_step(Step.on_behalf, FOR_OTHER) == Step.on_behalf_name
    for step in set(Step) - {Step.contact}:
        assert previous(step.value, FOR_OTHER) == expected_previous[step], step
    for step in set(Step) - {Step.on_behalf}:
        assert next_step(step, FOR_OTHER) == expected_next[step], step


def test_unknown_or_missing_step() -> None:
    assert previous("gone", {}) is None
    assert previous("", {}) is None
    assert current({}) == Step.hromada
    assert current({"step": "gone"}) == Step.hromada
    assert current({"step": "contact"}) == Step.contact


# -- pure screens ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def i18n() -> Iterator[I18n]:
    i18n = create_i18n("uk")
    with i18n.context(), i18n.use_locale("uk"):
        yield i18n


def _callbacks(markup: InlineKeyboardMarkup) -> list[IntakeCb]:
    return [IntakeCb.unpack(b.callback_data or "") for row in markup.inline_keyboard for b in row]


def test_vulnerability_screen_marks_the_chosen_and_keeps_back_and_cancel(i18n: I18n) -> None:
    text, markup = screens.vulnerability_step(["children"])
    assert "Крок 4" in text
    labels = [b.text for row in markup.inline_keyboard for b in row]
    checked = [label for label in labels if label.startswith("✅")]
    assert checked == [f"✅ {i18n.gettext('intake.marker.children')}"]
    actions = [(cb.action, cb.value) for cb in _callbacks(markup)]
    assert actions == [
        *[("vul", code) for code in VULNERABILITY_MARKERS],
        ("vdone", ""),
        ("back", ""),
        ("cancel", ""),
    ]


def test_search_screen_escapes_what_was_typed_and_offers_hits(i18n: I18n) -> None:
    text, markup = screens.place_hits("<b>x</b>", PlaceResults([], []), "uk")
    assert "&lt;b&gt;x&lt;/b&gt;" in text and "<b>x" not in text
    assert [cb.action for cb in _callbacks(markup)] == ["cancel"]  # no Back at the first step
    hromada = Hromada(id=7, code="VES", name_uk="Веселівська", name_en="Veselivska", oblast="zp")
    hromada.raion_uk, hromada.raion_en = "Мелітопольський", "Melitopolskyi"
    village = Settlement(id=9, code="x", name_uk="Веселе", name_en="Vesele", kind="X", hromada=hromada)
    text, markup = screens.place_hits(
        "Весел", PlaceResults([SettlementHit(village, "prefix")], [hromada]), "uk"
    )
    assert [b.text for row in markup.inline_keyboard[:2] for b in row] == [
        "🏛 Веселівська громада",
        "📍 с-ще Веселе — Веселівська громада, Мелітопольський р-н",
    ]
    assert _callbacks(markup)[:2] == [IntakeCb(action="h", value="7"), IntakeCb(action="ps", value="9")]


def test_summary_escapes_typed_values(i18n: I18n) -> None:
    data = {
        "description": "Мамі <80> & більше",
        "on_behalf": True,
        "on_behalf_name": "<Оля>",
        "on_behalf_relation": "донька",
        "contact_phone": "+380501234567",
        "attachments": [{}, {}],
        "vulnerability": ["children"],
    }
    text = screens.summary(data, None, None, None, "uk")
    assert "Мамі &lt;80&gt; &amp; більше" in text and "&lt;Оля&gt;" in text
    assert "+380501234567" in text and "Файлів: 2" in text
    text, markup = screens.confirm_step(text, "draft123")
    assert _callbacks(markup)[0] == IntakeCb(action="confirm", value="draft123")
