"""One phone normaliser: registries' spellings and Telegram's contact numbers."""

from __future__ import annotations

import pytest

from services.phones import contact_phone, normalize_phone


@pytest.mark.parametrize(
    "raw", ["+380501234567", "380501234567", "80501234567", "0501234567", "+38 (050) 123-45-67", 380501234567]
)
def test_ukrainian_spellings_become_one(raw: str | int) -> None:
    assert normalize_phone(raw) == "+380501234567"


@pytest.mark.parametrize(
    "raw", [None, "", "+48123456789", "+3800501234567", "050123456", "phone", "٠٥٠١٢٣٤٥٦٧"]
)
def test_not_a_ukrainian_number(raw: str | None) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("380501234567", "+380501234567"),  # Telegram's usual spelling
        ("+380501234567", "+380501234567"),
        ("0501234567", "+380501234567"),
        ("48123456789", "+48123456789"),  # another country: kept as + and digits
        ("+1 (555) 010-0000", "+15550100000"),
        ("12345678901234567890", "+123456789012345"),
    ],
)
def test_contact_numbers(raw: str, expected: str) -> None:
    assert contact_phone(raw) == expected
