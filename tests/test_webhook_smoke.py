"""The real `hromada-bot webhook` process, with its Bot API pointed at the local stand-in.

A /start update with the right secret gets a sendMessage at the stand-in; a wrong secret
gets 401 and no reply; /healthz answers; SIGTERM stops the process cleanly within 5 s.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from infra.db import create_sessionmaker
from models import User, utcnow
from services.outbox import enqueue
from tests.processes import clean_env, free_port, hromada_bot_command
from tools.telegram_standin import TelegramStandIn

TOKEN = "123456:TEST-token-for-the-local-fake-api-server"
SECRET = "smoke-secret_0123456789abcdefABCDEF"


@pytest.fixture
async def fake_api() -> AsyncIterator[tuple[TelegramStandIn, str]]:
    """The Bot API stand-in (tools/telegram_standin.py): Telegram's answers and limits."""
    api = TelegramStandIn(token=TOKEN)
    base = await api.start()
    yield api, base
    await api.stop()


def sent(api: TelegramStandIn, method: str) -> list[dict[str, Any]]:
    """Parameters of the accepted calls of this method, in order."""
    return [call.params for call in api.calls if call.method == method and call.ok]


def start_update(update_id: int, user_id: int) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Olena"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Olena", "language_code": "uk"},
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def test_webhook_process_end_to_end(fake_api, db_url: str, db) -> None:
    api, api_base = fake_api
    port = free_port()
    env = clean_env(
        BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE=api_base,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
        WEBHOOK_URL="https://bot.example.org",
        DATABASE_URL=db_url,
    )
    process = await asyncio.create_subprocess_exec(
        *hromada_bot_command(), "webhook", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )

    async def output() -> str:
        assert process.stdout is not None
        return (await process.stdout.read()).decode(errors="replace")

    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                try:
                    async with http.get(f"{base}/healthz") as response:
                        return response.status == 200 and (await response.json())["status"] == "ok"
                except aiohttp.ClientError:
                    return False

            deadline = time.monotonic() + 60
            while not await healthy():
                if process.returncode is not None:
                    raise AssertionError(await output())
                assert time.monotonic() < deadline, "webhook did not become healthy"
                await asyncio.sleep(0.2)

            # It registered its webhook with Telegram, secret included.
            await wait_for(lambda: sent(api, "setWebhook"))
            assert sent(api, "setWebhook")[0]["secret_token"] == SECRET
            assert sent(api, "setWebhook")[0]["url"] == "https://bot.example.org/telegram/webhook"

            url = f"{base}/telegram/webhook"
            async with http.post(
                url, json=start_update(1, 777), headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            ) as r:
                assert r.status == 401
            async with http.post(url, json=start_update(2, 778)) as r:
                assert r.status == 401  # no secret at all
            async with http.post(
                url, json=start_update(3, 779), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            ) as r:
                assert r.status == 200

            await wait_for(lambda: sent(api, "sendMessage"))
            replies = sent(api, "sendMessage")
            assert [m["chat_id"] for m in replies] == ["779"], (
                "only the update with the right secret is answered"
            )
            assert "Вітаємо" in replies[0]["text"]
            assert replies[0]["reply_markup"]["inline_keyboard"]

            # The process's scheduler delivers the outbox: a queued notice reaches Telegram.
            # (The reply left inside the update; its transaction may commit a moment later.)
            sessionmaker = create_sessionmaker(db)
            user = None
            deadline = time.monotonic() + 20
            while user is None:
                async with sessionmaker() as session:
                    user = await session.scalar(select(User).where(User.telegram_id == 779))
                assert user is not None or time.monotonic() < deadline, "the update never committed"
                if user is None:
                    await asyncio.sleep(0.05)
            async with sessionmaker.begin() as session:
                await enqueue(
                    session,
                    user=user,
                    kind="case_status_changed",
                    urgent=True,
                    payload={
                        "number": "VES-2026-000042",
                        "status": "in_progress",
                        "team": "ЦНАП",
                        "reason": None,
                    },
                    due_at=utcnow(),  # the webhook process runs on the real clock
                )
            await wait_for(lambda: len(sent(api, "sendMessage")) == 2, timeout=30)
            assert "VES-2026-000042" in sent(api, "sendMessage")[1]["text"]
            assert api.responses_429() == 0, "one process keeps the per-chat spacing"

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 10)
        assert time.monotonic() - started < 5, "SIGTERM must stop it within 5 s"
        log = await output()
        assert code == 0, log
        assert "Traceback" not in log, log
        assert "Olena" not in log, "no personal data in logs"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
