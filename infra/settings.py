"""Settings from the environment and `.env`, in sections.

Every section is its own `BaseSettings` so each variable keeps its plain, documented name
(`DATABASE_URL`, `BOT_TOKEN`, ...). `load_settings()` turns a validation error into one line
that names the variable, so start-up never ends in a traceback for a typo.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from typing import Annotated, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_COMMON = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


# Telegram's own rule for a webhook's secret_token (1-256 of these characters); the floor of 32
# is ours: the secret is the webhook's only authentication, so it must not be guessable.
WEBHOOK_SECRET_MIN = 32
WEBHOOK_SECRET_MAX = 256
_WEBHOOK_SECRET_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_HOW_TO_MAKE_ONE = "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def webhook_secret_problem(raw: str) -> str | None:
    """Why `raw` cannot be the webhook's secret, or None. Never quotes the value."""
    if not raw:
        return "empty"
    if not _WEBHOOK_SECRET_ALPHABET.fullmatch(raw):
        return "only A-Z a-z 0-9 _ - are allowed (Telegram's alphabet for a secret token)"
    if len(raw) < WEBHOOK_SECRET_MIN:
        return f"too short ({len(raw)} of at least {WEBHOOK_SECRET_MIN} characters; {_HOW_TO_MAKE_ONE})"
    if len(raw) > WEBHOOK_SECRET_MAX:
        return f"too long ({len(raw)} characters, Telegram accepts at most {WEBHOOK_SECRET_MAX})"
    return None


class TelegramSettings(BaseSettings):
    model_config = _COMMON

    bot_token: Annotated[SecretStr | None, Field(alias="BOT_TOKEN")] = None
    api_base: Annotated[str | None, Field(alias="TELEGRAM_API_BASE")] = None
    webhook_url: Annotated[str | None, Field(alias="WEBHOOK_URL")] = None
    webhook_secret: Annotated[SecretStr | None, Field(alias="WEBHOOK_SECRET")] = None
    webhook_host: Annotated[str, Field(alias="WEBHOOK_HOST")] = "127.0.0.1"
    webhook_port: Annotated[int, Field(alias="WEBHOOK_PORT", ge=1, le=65535)] = 8080
    webhook_path: Annotated[str, Field(alias="WEBHOOK_PATH")] = "/telegram/webhook"
    # Longest time one update may take inside the webhook request before it is given up and
    # answered 503 (Telegram delivers it again); Telegram itself waits about a minute.
    webhook_handle_timeout: Annotated[float, Field(alias="WEBHOOK_HANDLE_TIMEOUT", gt=0, le=55)] = 25.0
    admin_ids: Annotated[str, Field(alias="ADMIN_TELEGRAM_IDS")] = ""

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value()
        head, sep, tail = raw.partition(":")
        if not sep or not head.isdigit() or len(tail) < 20:
            raise ValueError("must look like 123456:ABC... (from @BotFather)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        # Unset (or set to nothing) is fine for `run` and `console`; `webhook` refuses it
        # through `require_webhook_secret`. A value that is set must be a usable secret.
        if value is None or not value.get_secret_value():
            return None
        problem = webhook_secret_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("api_base", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("admin_ids")
    @classmethod
    def _ids(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            if not part.lstrip("-").isdigit():
                raise ValueError("must be comma-separated Telegram user ids")
        return value

    def require_webhook_secret(self) -> str:
        """The secret for `webhook`; a missing or empty one is a `SettingsError`."""
        raw = self.webhook_secret.get_secret_value() if self.webhook_secret is not None else ""
        if not raw:
            raise SettingsError(
                f"setting WEBHOOK_SECRET is missing: `webhook` needs {WEBHOOK_SECRET_MIN}+ random "
                f"characters A-Z a-z 0-9 _ - ({_HOW_TO_MAKE_ONE})"
            )
        problem = webhook_secret_problem(raw)
        if problem:
            raise SettingsError(f"setting WEBHOOK_SECRET is invalid: {problem}")
        return raw

    @property
    def admin_telegram_ids(self) -> frozenset[int]:
        return frozenset(int(p) for p in self.admin_ids.split(",") if p.strip())


class DatabaseSettings(BaseSettings):
    model_config = _COMMON

    url: Annotated[str, Field(alias="DATABASE_URL")] = "sqlite+aiosqlite:///./hromada.db"
    echo: Annotated[bool, Field(alias="DATABASE_ECHO")] = False
    # PostgreSQL only (infra/db.py says why each exists). Seconds; 0 turns a bound off. A silent
    # outage is noticed after at most about these times, and a dead connection is then replaced.
    connect_timeout: Annotated[float, Field(alias="DATABASE_CONNECT_TIMEOUT", gt=0, le=300)] = 5.0
    command_timeout: Annotated[float, Field(alias="DATABASE_COMMAND_TIMEOUT", ge=0, le=3600)] = 10.0
    pool_timeout: Annotated[float, Field(alias="DATABASE_POOL_TIMEOUT", gt=0, le=300)] = 5.0
    idle_check: Annotated[float, Field(alias="DATABASE_IDLE_CHECK", ge=0, le=3600)] = 2.0
    tcp_keepalive: Annotated[int, Field(alias="DATABASE_TCP_KEEPALIVE", ge=0, le=7200)] = 10

    @field_validator("url")
    @classmethod
    def _driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value


class RedisSettings(BaseSettings):
    model_config = _COMMON

    url: Annotated[str | None, Field(alias="REDIS_URL")] = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class LocaleSettings(BaseSettings):
    model_config = _COMMON

    default_language: Annotated[str, Field(alias="DEFAULT_LANGUAGE")] = "uk"
    timezone: Annotated[str, Field(alias="TIMEZONE")] = "Europe/Kyiv"

    @field_validator("default_language")
    @classmethod
    def _lang(cls, value: str) -> str:
        if value not in ("uk", "en"):
            raise ValueError("must be uk or en")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return value

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class DeliverySettings(BaseSettings):
    """Outgoing message limits and quiet hours, shared by everything the bot sends."""

    model_config = _COMMON

    global_rate: Annotated[float, Field(alias="SEND_RATE_PER_SECOND", gt=0, le=1000)] = 30.0
    per_chat_interval: Annotated[float, Field(alias="SEND_PER_CHAT_INTERVAL", ge=0, le=60)] = 1.0
    quiet_start: Annotated[time, Field(alias="QUIET_HOURS_START")] = time(21, 0)
    quiet_end: Annotated[time, Field(alias="QUIET_HOURS_END")] = time(8, 0)
    poll_seconds: Annotated[float, Field(alias="OUTBOX_POLL_SECONDS", gt=0, le=3600)] = 5.0
    max_attempts: Annotated[int, Field(alias="SEND_MAX_ATTEMPTS", ge=1, le=20)] = 5
    invite_ttl_hours: Annotated[int, Field(alias="INVITE_TTL_HOURS", ge=1, le=24 * 30)] = 72
    # Personal data of cases closed longer ago than this is erased daily (the consent text: 3 years).
    retention_days: Annotated[int, Field(alias="RETENTION_DAYS", ge=30, le=36500)] = 1095


class LoggingSettings(BaseSettings):
    model_config = _COMMON

    # "json": one JSON object per line for a log collector; "text": lines for a person.
    log_format: Annotated[Literal["text", "json"], Field(alias="LOG_FORMAT")] = "text"

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class Settings:
    """All sections together; build with `load_settings()`."""

    def __init__(
        self,
        telegram: TelegramSettings,
        database: DatabaseSettings,
        redis: RedisSettings,
        locale: LocaleSettings,
        delivery: DeliverySettings,
        logging: LoggingSettings | None = None,
    ) -> None:
        self.telegram = telegram
        self.database = database
        self.redis = redis
        self.locale = locale
        self.delivery = delivery
        self.logging = logging if logging is not None else LoggingSettings()


_Section = TypeVar("_Section", bound=BaseSettings)


def _read(cls: type[_Section]) -> _Section:
    try:
        return cls()
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = str(error["loc"][0]) if error.get("loc") else cls.__name__
        reason = error["msg"].removeprefix("Value error, ")
        raise SettingsError(f"setting {variable} is invalid: {reason}") from None


def load_settings(
    *,
    telegram: TelegramSettings | None = None,
    database: DatabaseSettings | None = None,
    redis: RedisSettings | None = None,
    locale: LocaleSettings | None = None,
    delivery: DeliverySettings | None = None,
    logging: LoggingSettings | None = None,
) -> Settings:
    """Read every section not given; raise `SettingsError` with one line naming the bad variable."""
    return Settings(
        telegram=telegram if telegram is not None else _read(TelegramSettings),
        database=database if database is not None else _read(DatabaseSettings),
        redis=redis if redis is not None else _read(RedisSettings),
        locale=locale if locale is not None else _read(LocaleSettings),
        delivery=delivery if delivery is not None else _read(DeliverySettings),
        logging=logging if logging is not None else _read(LoggingSettings),
    )
