"""Pure helpers of the applications feature: phone and number normalisation, dates, headers."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.applications import mask_phone, normalize_number, normalize_phone
from services.status_import import ImportRefused, map_header, normalize_kind, parse_date

PHONE = re.compile(r"^\+380[1-9]\d{8}$")


@pytest.mark.parametrize(
    "raw",
    ["+380501234567", "380501234567", "0501234567", "80501234567", "+38 (050) 123-45-67", " 050.123.45.67 "],
)
def test_phone_spellings_normalise_to_one_form(raw: str) -> None:
    assert normalize_phone(raw) == "+380501234567"


@pytest.mark.parametrize(
    "raw", ["", "12345", "+48501234567", "+3800501234567", "0501234567890", "+380 50 123 45 6x", "٠٥٠١٢٣٤٥٦٧"]
)
def test_not_ukrainian_numbers_are_refused(raw: str) -> None:
    assert normalize_phone(raw) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_either_refused_or_a_canonical_phone(text: str) -> None:
    result = normalize_phone(text)
    assert result is None or PHONE.match(result)


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"\A[1-9][0-9]{8}\Z"))
def test_every_spelling_of_a_number_agrees(rest: str) -> None:
    spellings = [f"+380{rest}", f"380{rest}", f"0{rest}", f"+38 0{rest[:2]} {rest[2:5]} {rest[5:]}"]
    assert {normalize_phone(s) for s in spellings} == {f"+380{rest}"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_application_numbers_are_bounded_and_clean(text: str) -> None:
    number = normalize_number(text)
    assert number is None or (0 < len(number) <= 40 and not any(c.isspace() for c in number))


def test_number_case_and_spaces_do_not_matter() -> None:
    assert normalize_number(" №впо-2026 001 ") == normalize_number("ВПО-2026001") == "ВПО-2026001"


def test_phone_mask_keeps_only_the_last_two_digits() -> None:
    assert mask_phone("+380501234567") == "+380 ** *** **67"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20.11.2026", datetime(2026, 11, 19, 22, 0, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 19, 22, 0, tzinfo=UTC)),
        ("20.11.2026 14:30", datetime(2026, 11, 20, 12, 30, tzinfo=UTC)),
        ("2026-11-20T14:30:00+02:00", datetime(2026, 11, 20, 12, 30, tzinfo=UTC)),
        (date(2026, 11, 20), datetime(2026, 11, 19, 22, 0, tzinfo=UTC)),
        ("31.02.2026", None),
        ("20/11/2026", None),
        ("11.20.2026", None),
        ("01.01.1999", None),
        ("", None),
        (None, None),
    ],
)
def test_dates(raw, expected) -> None:
    parsed = parse_date(raw)
    assert (parsed.astimezone(UTC) if parsed else None) == expected


def test_kinds_known_by_alias_others_kept() -> None:
    assert normalize_kind("Допомога на проживання ВПО") == "living_allowance"
    assert normalize_kind("Компенсація за житло") == "Компенсація за житло"
    assert normalize_kind("x" * 41) is None
    assert normalize_kind("  ") is None
    # PostgreSQL refuses NUL in text: the cell is cleaned at the input boundary, then looked up.
    assert normalize_kind("субсидія\x00") == "subsidy"
    assert normalize_kind("Інше\x00\u202e") == "Інше"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=50))
def test_stored_kinds_are_clean_text(text: str) -> None:
    kind = normalize_kind(text)
    assert kind is None or (
        0 < len(kind) <= 40 and not any(unicodedata.category(c) in ("Cc", "Cs") for c in kind)
    )


def test_headers_in_any_order_case_and_language() -> None:
    columns = map_header(
        ["Дата зміни статусу", "\ufeffНомер заяви", "PHONE", "Вид допомоги:", "Стан", "інше"]
    )
    assert columns == {"date": 0, "number": 1, "phone": 2, "kind": 3, "status": 4}
    with pytest.raises(ImportRefused) as refused:
        map_header(["номер", "телефон", "статус", "статус", "вид", "дата"])
    assert refused.value.code == "duplicate_column"
