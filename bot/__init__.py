"""hromada-bot: Telegram bot for social services of Ukrainian territorial communities."""

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
