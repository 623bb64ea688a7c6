"""Translations: message keys in code, texts in `locales/<lang>/LC_MESSAGES/*.po`.

Each feature keeps its own `.po` file (common.po, resident.po, ...); they are merged into the
one `messages.mo` that aiogram's I18n loads. Compilation happens on start-up when any `.po`
is newer than the `.mo` (and in the Docker build), so there is no manual step.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.types import User as TgUser
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import locales

SOURCE_DIR = Path(locales.__file__).resolve().parent
LANGUAGES = ("uk", "en")
DOMAIN = "messages"


def po_files(source: Path, language: str) -> list[Path]:
    return sorted((source / language / "LC_MESSAGES").glob("*.po"))


def merged_catalog(source: Path, language: str) -> Catalog:
    """All `.po` files of one language as one catalog; a key defined twice is an error."""
    merged = Catalog(locale=language, domain=DOMAIN)
    seen: dict[str, Path] = {}
    for path in po_files(source, language):
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language)
        for message in catalog:
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            if key in seen:
                raise ValueError(f"message {key!r} is defined in both {seen[key].name} and {path.name}")
            seen[key] = path
            merged[message.id] = message
    return merged


def compile_locales(source: Path = SOURCE_DIR, target: Path | None = None) -> Path:
    """Compile every language into `target` (default: beside the sources, or a cache dir if
    the sources are read-only); skip languages whose `.mo` is newer than all their `.po`."""
    target = target or (source if os.access(source, os.W_OK) else _cache_dir())
    for language in LANGUAGES:
        sources = po_files(source, language)
        mo_path = target / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        newest = max((p.stat().st_mtime for p in sources), default=0)
        if mo_path.exists() and mo_path.stat().st_mtime >= newest:
            continue
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        catalog = merged_catalog(source, language)
        # Write then rename, so a concurrent start never reads half a file.
        with tempfile.NamedTemporaryFile("wb", dir=mo_path.parent, delete=False) as tmp:
            write_mo(tmp, catalog)
        os.replace(tmp.name, mo_path)
    return target


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "hromada-bot" / "locales"


def create_i18n(default_locale: str = "uk") -> I18n:
    return I18n(path=compile_locales(), default_locale=default_locale, domain=DOMAIN)


def language_from_telegram(code: str | None, default: str) -> str:
    """A first guess before the user chooses: English for `en*`, otherwise the default (uk)."""
    if code and code.lower().startswith("en"):
        return "en"
    return default


def choose_locale(stored: str | None, telegram_code: str | None, default: str) -> str:
    """The person's chosen language when we have it, else a guess from Telegram's client language.
    One rule for handlers, the error router and the outage answer (which has no database)."""
    if stored in LANGUAGES:
        return stored
    return language_from_telegram(telegram_code, default)


class UserLanguageMiddleware(I18nMiddleware):
    """Locale = the language stored on our user row (`user_language`, set by `UserMiddleware`:
    a plain value, so the error path can read it after the session rolled back)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        tg_user: TgUser | None = data.get("event_from_user")
        code = tg_user.language_code if tg_user else None
        return choose_locale(data.get("user_language"), code, self.i18n.default_locale)
