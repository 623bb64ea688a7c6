"""Helpers for tests that start the real `hromada-bot` command as a process."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path


def hromada_bot_command() -> list[str]:
    script = shutil.which("hromada-bot", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "bot.cli"]


def clean_env(**overrides: str) -> dict[str, str]:
    """The current environment without any of our settings, plus the given ones."""
    ours = (
        "BOT_TOKEN",
        "TELEGRAM_API_BASE",
        "WEBHOOK_",
        "DATABASE_",
        "REDIS_URL",
        "ADMIN_TELEGRAM_IDS",
        "DEFAULT_LANGUAGE",
        "TIMEZONE",
        "SEND_",
        "QUIET_HOURS_",
        "OUTBOX_",
        "INVITE_TTL_HOURS",
        "LOG_FORMAT",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
