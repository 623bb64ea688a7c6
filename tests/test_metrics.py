"""The webhook server's `/metrics`, `/readyz` and `/healthz`, scraped over real HTTP.

Updates go in through the webhook (aiohttp test server), replies go out through the recording
Bot API session or a Bot API stand-in over real HTTP, and what `/metrics` shows is read with
prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import SendMessage
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.factory import App, build_app, create_bot
from bot.offline import RecordingSession
from bot.scheduler import setup_scheduler
from bot.webhook import create_web_app
from infra import ratelimit
from infra.db import create_engine
from infra.metrics import Metrics, SendMetricsMiddleware, observe_limiter_wait
from infra.settings import DatabaseSettings, load_settings
from infra.telegram_session import HromadaAiohttpSession
from models import OutboxMessage, utcnow
from tests.factories import add_worker
from tests.processes import clean_env, free_port, hromada_bot_command
from tests.test_webhook_smoke import TOKEN as SMOKE_TOKEN
from tests.test_webhook_smoke import sent, start_update
from tools.telegram_standin import TelegramStandIn

SECRET = secrets.token_urlsafe(32)
HEADER = "X-Telegram-Bot-Api-Secret-Token"
HANDLED_TG = 7_310_001
REFUSED_TG = 7_310_002  # Telegram answers its reply 400
FLOODED_TG = 7_310_003  # Telegram answers its reply 429
NAME = "Мирослава"


def _message(update_id: int, user_id: int, text: str = "/start") -> dict:
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": NAME},
        "from": {"id": user_id, "is_bot": False, "first_name": NAME, "language_code": "uk"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": update_id, "message": message}


def _edited(update_id: int, user_id: int) -> dict:
    update = _message(update_id, user_id, "змінений текст")
    update["edited_message"] = update.pop("message")
    update["edited_message"]["edit_date"] = int(time.time())
    return update


def samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(body: str, name: str, **labels: str) -> float:
    return samples(body).get((name, frozenset(labels.items())), 0.0)


@asynccontextmanager
async def web_client(app: App, bot: Bot) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_web_app(app, bot, SECRET))) as client:
        yield client


async def scrape(client: TestClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.text()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_updates_and_sends_are_counted_and_timed(
    app: App, bot: Bot, tg: RecordingSession, reference: None
) -> None:
    app.metrics.install(bot)  # as setup_scheduler does in the running process
    tg.queue_error(400, "Bad Request: chat not found", method=SendMessage, chat_id=REFUSED_TG)
    tg.queue_error(
        429, "Too Many Requests: retry after 1", retry_after=1, method=SendMessage, chat_id=FLOODED_TG
    )
    async with web_client(app, bot) as client:
        before = await scrape(client)
        assert value(before, "hromada_updates_total", kind="message", outcome="handled") == 0
        for update in (
            _message(1, HANDLED_TG),
            _message(2, REFUSED_TG),
            _message(3, FLOODED_TG),
            _edited(4, HANDLED_TG),  # no handler takes an edited message
        ):
            response = await client.post("/telegram/webhook", json=update, headers={HEADER: SECRET})
            assert response.status == 200

        async def all_four_counted() -> bool:
            body = await scrape(client)
            return value(body, "hromada_update_handling_seconds_count", kind="message") == 3 and (
                value(body, "hromada_update_handling_seconds_count", kind="edited_message") == 1
            )

        await until(all_four_counted)
        body = await scrape(client)

    assert value(body, "hromada_updates_total", kind="message", outcome="handled") == 1
    # The handler's reply was refused (400) or flooded (429): the update failed.
    assert value(body, "hromada_updates_total", kind="message", outcome="error") == 2
    assert value(body, "hromada_updates_total", kind="edited_message", outcome="not_handled") == 1
    # The histogram observed every update, each in some bucket up to 10 s.
    assert value(body, "hromada_update_handling_seconds_bucket", kind="message", le="+Inf") == 3
    assert value(body, "hromada_update_handling_seconds_bucket", kind="message", le="10.0") == 3
    assert value(body, "hromada_update_handling_seconds_sum", kind="message") > 0

    sends = {
        result: value(body, "hromada_telegram_requests_total", method="sendMessage", result=result)
        for result in ("ok", "retry_after", "bad_request")
    }
    assert sends["retry_after"] == 1 and sends["bad_request"] == 1
    # The welcome to the first person, and the error router's apology to the other two.
    assert sends["ok"] == len([c for c in tg.calls if isinstance(c.method, SendMessage) and c.ok]) >= 1

    # Labels say what happened, never to whom or what.
    for secret in (str(HANDLED_TG), str(REFUSED_TG), str(FLOODED_TG), NAME, "змінений"):
        assert secret not in body


async def test_outbox_backlog_by_kind_and_state_and_the_pool_in_use(app: App, bot: Bot, sessionmaker) -> None:
    later = utcnow() + timedelta(hours=1)
    rows = [
        ("visit_day_before", "pending"),
        ("visit_day_before", "pending"),
        ("visit_day_before", "sending"),
        ("case_status_changed", "pending"),
        ("case_status_changed", "sent"),  # done: not backlog
        ("case_status_changed", "failed"),
        ("documents_due", "cancelled"),
    ]
    async with sessionmaker.begin() as session:
        session.add_all(
            OutboxMessage(kind=kind, chat_id=9_000 + i, due_at=later, payload={}, state=state)
            for i, (kind, state) in enumerate(rows)
        )
    async with web_client(app, bot) as client:
        idle = await scrape(client)
        async with app.engine.connect() as held:
            await held.exec_driver_sql("SELECT 1")
            busy = await scrape(client)

    assert value(idle, "hromada_outbox_backlog", kind="visit_day_before", state="pending") == 2
    assert value(idle, "hromada_outbox_backlog", kind="visit_day_before", state="sending") == 1
    assert value(idle, "hromada_outbox_backlog", kind="case_status_changed", state="pending") == 1
    assert value(idle, "hromada_outbox_backlog_query_ok") == 1
    backlog = {k for k in samples(idle) if k[0] == "hromada_outbox_backlog"}
    assert {dict(labels)["state"] for _, labels in backlog} == {"pending", "sending"}
    assert len(backlog) == 3
    assert ("hromada_db_pool_in_use", frozenset()) in samples(idle)
    assert value(busy, "hromada_db_pool_in_use") == value(idle, "hromada_db_pool_in_use") + 1


async def test_limiter_waits_show_on_every_apps_metrics(app: App, bot: Bot) -> None:
    async with web_client(app, bot) as client:
        before = await scrape(client)
        observe_limiter_wait("interactive", 0.003)
        observe_limiter_wait("interactive", 1.7)
        observe_limiter_wait("bulk", 0.4)
        after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("hromada_limiter_wait_seconds_count", lane="interactive") == 2
    assert delta("hromada_limiter_wait_seconds_bucket", lane="interactive", le="0.005") == 1
    assert delta("hromada_limiter_wait_seconds_bucket", lane="interactive", le="2.5") == 2
    assert delta("hromada_limiter_wait_seconds_count", lane="bulk") == 1
    assert delta("hromada_limiter_wait_seconds_sum", lane="bulk") == pytest.approx(0.4)


def test_two_apps_in_one_process_count_apart() -> None:
    first, second = Metrics(process=False), Metrics(process=False)
    first.observe_update("message", "handled", 0.02)
    first.observe_update("message", "handled", 0.03)
    second.observe_update("message", "handled", 0.02)
    assert value(first.render()[0].decode(), "hromada_updates_total", kind="message", outcome="handled") == 2
    assert value(second.render()[0].decode(), "hromada_updates_total", kind="message", outcome="handled") == 1


def test_the_scheduler_counts_the_bots_calls_inside_the_rate_limiter(app: App, bot: Bot) -> None:
    setup_scheduler(
        app.dispatcher,
        bot=bot,
        sessionmaker=app.sessionmaker,
        i18n=app.i18n,
        clock=app.clock,
        settings=app.settings,
    )
    kinds = [type(m) for m in bot.session.middleware]
    assert kinds.count(SendMetricsMiddleware) == 1
    # Inside the limiter: it counts what Telegram answered, not the time spent queueing.
    assert kinds.index(ratelimit.RateLimitMiddleware) < kinds.index(SendMetricsMiddleware)
    counting = next(m for m in bot.session.middleware if isinstance(m, SendMetricsMiddleware))
    assert counting.metrics is app.metrics


# -- results over real HTTP, from a Bot API stand-in ---------------------------------------------

ANSWERS: list[tuple[int, str]] = [
    (200, "ok"),
    (
        429,
        json.dumps(
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests",
                "parameters": {"retry_after": 3},
            }
        ),
    ),
    (200, "ok"),
    (400, json.dumps({"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"})),
    (
        403,
        json.dumps({"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
    ),
    (500, json.dumps({"ok": False, "error_code": 500, "description": "Internal Server Error"})),
    (502, "<html><body><h1>502 Bad Gateway</h1></body></html>"),  # a proxy's page: no Bot API answer
    (200, '{"ok": true, "result": {"message_id": 1, "da'),  # cut short
]


@pytest.fixture
async def standin() -> AsyncIterator[str]:
    """Answers each sendMessage with the next of ANSWERS, in order."""
    answers = iter(ANSWERS)

    async def handle(request: web.Request) -> web.Response:
        data = await request.post()
        status, body = next(answers)
        if body == "ok":
            body = json.dumps(
                {
                    "ok": True,
                    "result": {
                        "message_id": 1,
                        "date": int(time.time()),
                        "chat": {"id": int(str(data["chat_id"])), "type": "private"},
                        "text": str(data["text"]),
                    },
                }
            )
        return web.Response(status=status, text=body, content_type="application/json")

    server = web.Application()
    server.router.add_post("/bot{token}/sendMessage", handle)
    runner = web.AppRunner(server)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_sends_by_result_over_real_http(standin: str) -> None:
    metrics = Metrics(process=False)
    settings = load_settings(database=DatabaseSettings(DATABASE_URL="sqlite+aiosqlite:///:memory:"))
    bot = create_bot(settings, session=HromadaAiohttpSession(api=TelegramAPIServer.from_base(standin)))
    metrics.install(bot)
    try:
        for _ in ANSWERS:
            try:
                await bot.send_message(chat_id=4242, text="перевірка")
            except TelegramAPIError:
                pass
    finally:
        await bot.session.close()
    body = metrics.render()[0].decode()
    got = {
        dict(labels)["result"]: n
        for (name, labels), n in samples(body).items()
        if name == "hromada_telegram_requests_total" and dict(labels)["method"] == "sendMessage"
    }
    assert got == {
        "ok": 2,
        "retry_after": 1,
        "bad_request": 1,
        "forbidden": 1,
        "server_error": 1,
        "malformed": 2,
    }


# -- readiness and liveness ------------------------------------------------------------------------


def _nowhere(db_url: str) -> str:
    if db_url.startswith("sqlite"):
        return "sqlite+aiosqlite:////nonexistent-directory-for-hromada-tests/bot.db"
    return f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/nowhere"  # nothing listens there


@asynccontextmanager
async def app_on(url: str, engine: AsyncEngine | None = None) -> AsyncIterator[App]:
    settings = load_settings(database=DatabaseSettings(DATABASE_URL=url))
    app = build_app(settings, engine=engine or create_engine(url))
    try:
        yield app
    finally:
        await app.close()


async def test_readyz_answers_200_when_the_database_answers(app: App, bot: Bot) -> None:
    async with web_client(app, bot) as client:
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert await ready.json() == {"status": "ok", "database": "ok"}
        alive = await client.get("/healthz")
        assert alive.status == 200 and (await alive.json())["status"] == "ok"


async def test_a_busy_pool_is_load_not_unreadiness(db: AsyncEngine) -> None:
    url = db.url.render_as_string(hide_password=False)
    one_connection = create_async_engine(url, pool_size=1, max_overflow=0, hide_parameters=True)
    async with app_on(url, one_connection) as app:
        bot = create_bot(app.settings, session=RecordingSession())
        async with web_client(app, bot) as client:
            held = await app.engine.connect()  # the pool's only connection, as a long update holds it
            try:
                started = time.monotonic()
                ready = await client.get("/readyz")
                assert ready.status == 200, await ready.text()
                assert time.monotonic() - started < 1.5
                body = await scrape(client)  # the backlog query waits for the pool, gives up
            finally:
                await held.close()
            assert value(body, "hromada_db_pool_in_use") == 1
            assert value(body, "hromada_outbox_backlog_query_ok") == 0
            assert value(await scrape(client), "hromada_outbox_backlog_query_ok") == 1


async def test_readyz_answers_503_without_a_database_while_healthz_stays_alive(db_url: str) -> None:
    async with app_on(_nowhere(db_url)) as app:
        bot = create_bot(app.settings, session=RecordingSession())
        async with web_client(app, bot) as client:
            started = time.monotonic()
            ready = await client.get("/readyz")
            assert ready.status == 503
            answer = await ready.json()
            assert answer["status"] == "unavailable" and answer["database"]
            assert "nobody" not in json.dumps(answer) and "nonexistent" not in json.dumps(answer)
            assert time.monotonic() - started < 5
            # Liveness: the process answers; restarting it would not bring the database back.
            assert (await client.get("/healthz")).status == 200
            # /metrics still answers, and says the backlog could not be read.
            body = await scrape(client)
            assert value(body, "hromada_outbox_backlog_query_ok") == 0


@pytest.mark.postgres_only
async def test_readyz_gives_up_on_a_database_that_never_answers(db: AsyncEngine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("a server that accepts and stays silent is a network database's failure")
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # holds the connection open, says nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with app_on(f"postgresql+asyncpg://nobody@127.0.0.1:{port}/silent") as app:
            bot = create_bot(app.settings, session=RecordingSession())
            async with web_client(app, bot) as client:
                started = time.monotonic()
                ready = await client.get("/readyz")
                elapsed = time.monotonic() - started
                answer = await ready.json()
        assert ready.status == 503 and answer["database"] == "timeout"
        assert 1.5 < elapsed < 4, elapsed
        assert accepted, "the probe did reach the silent server"
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_refusal_by_the_rules_counts_as_handled(
    app: App, make_client, reference, sessionmaker
) -> None:
    await add_worker(sessionmaker, 7_320_001, "ves-csp")
    worker = make_client(user_id=7_320_001)
    replies = await worker.click_data("case:take:999")  # no such case: the rules refuse
    assert replies and replies[0].kind == "alert" and "Звернення не знайдено" in replies[0].text
    body = app.metrics.render()[0].decode()
    assert value(body, "hromada_updates_total", kind="callback_query", outcome="handled") == 1
    assert value(body, "hromada_updates_total", kind="callback_query", outcome="error") == 0


# -- the real process ------------------------------------------------------------------------------


@pytest.fixture
async def bot_api() -> AsyncIterator[tuple[TelegramStandIn, str]]:
    """The Bot API stand-in over real HTTP: records calls, answers like Telegram."""
    api = TelegramStandIn(token=SMOKE_TOKEN)
    base = await api.start()
    yield api, base
    await api.stop()


async def test_the_webhook_process_serves_metrics_readiness_and_json_logs(bot_api, db_url: str, db) -> None:
    api, api_base = bot_api
    port = free_port()
    env = clean_env(
        BOT_TOKEN=SMOKE_TOKEN,
        TELEGRAM_API_BASE=api_base,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_PORT=str(port),
        DATABASE_URL=db_url,
        LOG_FORMAT="json",
    )
    process = await asyncio.create_subprocess_exec(
        *hromada_bot_command(), "webhook", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{base}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    assert process.returncode is None, "the process ended"
                    return False

            await until(ready, timeout=60)
            async with http.post(
                f"{base}/telegram/webhook", json=start_update(1, 7_330_001), headers={HEADER: SECRET}
            ) as response:
                assert response.status == 200

            async def replied() -> bool:
                return bool(sent(api, "sendMessage"))

            await until(replied)

            async def counted() -> bool:
                async with http.get(f"{base}/metrics") as response:
                    body = await response.text()
                sends = value(body, "hromada_telegram_requests_total", method="sendMessage", result="ok")
                return (
                    sends == 1
                    and value(body, "hromada_updates_total", kind="message", outcome="handled") == 1
                )

            await until(counted)  # the reply is counted just after the stand-in saw it
            async with http.get(f"{base}/metrics") as response:
                body = await response.text()
        assert value(body, "hromada_updates_total", kind="message", outcome="handled") == 1
        assert value(body, "hromada_update_handling_seconds_count", kind="message") == 1
        assert value(body, "hromada_outbox_backlog_query_ok") == 1
        assert value(body, "process_resident_memory_bytes") > 0
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert process.stdout is not None
        output = (await process.stdout.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    entries = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert any(e["message"].startswith("webhook listening") for e in entries), output
    assert "Olena" not in output and "7330001" not in body
