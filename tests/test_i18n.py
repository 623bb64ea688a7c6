"""Every message exists in Ukrainian and English; every key the code uses exists; plurals work."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from infra.i18n import LANGUAGES, SOURCE_DIR, create_i18n, merged_catalog, po_files
from models.cases import EVENT_KINDS, STATUSES
from services.reference_data import SERVICE_GROUPS

ROOT = Path(__file__).resolve().parent.parent
CODE_DIRS = ("bot", "handlers", "services")
KEY_FUNCTIONS = {"_", "gettext", "lazy_gettext", "__", "MenuButton"}


def _catalog_keys(language: str) -> dict[str, object]:
    catalog = merged_catalog(SOURCE_DIR, language)
    return {(m.id if isinstance(m.id, str) else m.id[0]): m for m in catalog if m.id}


def _keys_used_in_code() -> set[str]:
    keys: set[str] = set()
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                name = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else ""
                )
                first = node.args[0]
                if name in KEY_FUNCTIONS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    keys.add(first.value)
    return keys


def test_every_message_has_both_languages_and_a_text() -> None:
    uk, en = _catalog_keys("uk"), _catalog_keys("en")
    assert set(uk) - set(en) == set(), "missing in English"
    assert set(en) - set(uk) == set(), "missing in Ukrainian"
    for language, catalog in (("uk", uk), ("en", en)):
        for key, message in catalog.items():
            strings = message.string if isinstance(message.string, tuple) else (message.string,)  # type: ignore[attr-defined]
            assert all(s.strip() for s in strings), f"{language}: empty translation for {key}"
            if isinstance(message.string, tuple):  # type: ignore[attr-defined]
                assert len(strings) == (3 if language == "uk" else 2), f"{language}: plural forms of {key}"


def test_every_key_used_in_code_is_translated() -> None:
    uk = _catalog_keys("uk")
    used = _keys_used_in_code()
    assert used, "the scan found no keys: it is broken"
    missing = sorted(k for k in used if k not in uk and "." in k)
    assert missing == []


@pytest.mark.parametrize(
    "prefix,values",
    [
        ("case.status.", STATUSES),
        ("service_group.", SERVICE_GROUPS),
        ("worker.event.", EVENT_KINDS),
        ("mycases.event.", tuple(k for k in EVENT_KINDS if k != "status")),
    ],
)
def test_dynamic_keys_exist(prefix: str, values: tuple[str, ...]) -> None:
    uk = _catalog_keys("uk")
    assert [v for v in values if prefix + v not in uk] == []


def test_po_files_parse_and_headers_declare_plural_forms() -> None:
    for language in LANGUAGES:
        files = po_files(SOURCE_DIR, language)
        assert files
        for path in files:
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=language)
            assert catalog.num_plurals == (3 if language == "uk" else 2), path


@pytest.mark.parametrize(
    ("n", "uk", "en"),
    [
        (1, "1 звернення", "1 request"),
        (2, "2 звернення", "2 requests"),
        (5, "5 звернень", "5 requests"),
        (11, "11 звернень", "11 requests"),
        (21, "21 звернення", "21 requests"),
        (114, "114 звернень", "114 requests"),
    ],
)
def test_ukrainian_plural_forms(n: int, uk: str, en: str) -> None:
    i18n = create_i18n()
    assert i18n.gettext("requests.count", "requests.count", n, locale="uk") % {"n": n} == uk
    assert i18n.gettext("requests.count", "requests.count", n, locale="en") % {"n": n} == en


def test_mo_is_rebuilt_when_a_po_changes(tmp_path) -> None:
    import shutil

    from infra.i18n import compile_locales

    src = tmp_path / "locales"
    shutil.copytree(SOURCE_DIR, src, ignore=shutil.ignore_patterns("*.mo", "__pycache__"))
    compile_locales(src)
    mo = src / "uk" / "LC_MESSAGES" / "messages.mo"
    first = mo.read_bytes()
    po = src / "uk" / "LC_MESSAGES" / "common.po"
    po.write_text(
        po.read_text(encoding="utf-8").replace("Раді знову вас бачити!", "Знову вітаємо!"), encoding="utf-8"
    )
    import os
    import time

    os.utime(po, (time.time() + 5, time.time() + 5))
    compile_locales(src)
    assert mo.read_bytes() != first


def test_every_audit_entry_the_services_write_has_a_kind_with_words() -> None:
    from services.privacy import RETENTION_EVENT

    assert RETENTION_EVENT in EVENT_KINDS
