"""Several real `hromada-bot webhook` processes behind HAProxy, and people who talk to them.

`Cluster` builds, for one run:
- a fresh PostgreSQL database (tests/pgtools.py), migrated and seeded with
  data/sample_reference.yaml, and a bot id of its own so its Redis keys are its own;
- a Bot API stand-in (tools/telegram_standin.py) that enforces Telegram's limits;
- N `hromada-bot webhook` processes on loopback, all on that database and on Redis;
- with more than one instance (or `balancer=True`), HAProxy in front of them (round robin, health
  checks on /healthz), where Telegram would deliver the updates.

People post the JSON Telegram sends (with the webhook's secret header) to the balancer and wait
for the bot's answer at the stand-in, as a person waits to see a reply:

    async with Cluster(instances=3) as cluster:
        resident = cluster.person(7001)
        step = await resident.send("/start")          # a Step: when posted, replied, answered
        step = await resident.click("lang:uk")        # the button must be on screen

`file_request(...)` drives a resident through first contact and the whole intake form;
`Worker.take_cases(...)` presses "Take" on every new-case notice a worker gets.

HAProxy comes from Debian's package: `ensure_haproxy()` installs it with apt-get when it is
missing and we are root (as .ci/run does).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.kit.callbacks import ConsentCb, IntakeCb, LanguageCb
from tests.pgtools import create_database, drop_database
from tests.processes import clean_env, free_port
from tools.telegram_standin import Call, TelegramStandIn

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample_reference.yaml"
REDIS_URL = os.environ.get("CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/0")
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# (search text, hromada code, settlement code, service code): spread over hromadas, so the
# per-hromada case counters are not one hot row.
ROUTES = [
    ("Весел", "VES", "vesele", "subsidy"),
    ("Берест", "BRS", "hirsivka", "home_care"),
    ("Пирят", "PYR", "pyriatyn", "idp_support"),
    ("Піщан", "PSH", "kozaky", "home_care"),
    ("Білоц", "BLC", "karpivka", "employment"),
    ("Широк", "SHR", "shyroke", "humanitarian_aid"),
    ("Шишац", "SHS", "shyshaky", "subsidy"),
    ("Омель", "OML", "omelnyk", "social_assistance"),
]
DESCRIPTION = "Прошу допомогти з оформленням субсидії: живу сама, пенсія мала, рахунки зросли."


# -- HAProxy ------------------------------------------------------------------------------------
def ensure_haproxy() -> str | None:
    """The haproxy binary; installed from Debian's packages when missing and we may (root,
    apt-get). None when it is not there and cannot be installed."""
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "haproxy"]
    # The package lists may be missing or stale: install, and if that fails, update and retry.
    for commands in ([install], [[apt, "update", "-q"], install]):
        for command in commands:
            subprocess.run(command, env=env, capture_output=True, check=False, timeout=600)
        found = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None
        )
        if found:
            return found
    return None


def haproxy_config(port: int, stats_port: int, backends: list[int]) -> str:
    servers = "\n".join(
        f"    server bot{i} 127.0.0.1:{p} check inter 500ms fall 2 rise 1" for i, p in enumerate(backends, 1)
    )
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    option http-keep-alive

frontend telegram
    bind 127.0.0.1:{port}
    default_backend bots

backend bots
    balance roundrobin
    option httpchk GET /healthz
{servers}

listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


# -- processes ----------------------------------------------------------------------------------
@dataclass
class BotProcess:
    index: int
    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kb(self) -> tuple[int, int]:
        """(current RSS, peak RSS) in kB from /proc; (0, 0) when gone."""
        values = {"VmRSS": 0, "VmHWM": 0}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0])
        return values["VmRSS"], values["VmHWM"]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


# -- what a person does -------------------------------------------------------------------------
@dataclass
class Step:
    """One update a person sent: when it was posted (monotonic, the stand-in's clock), when the
    bot's first answer in the chat arrived at the stand-in, and, for a press, when the press was
    answered. None = did not happen within the timeout."""

    kind: str  # message | callback
    label: str
    posted: float
    status: int  # HTTP status of the webhook POST (0: the POST itself failed)
    replied: float | None = None
    answered: float | None = None
    reply: Call | None = None
    expects_reply: bool = True
    # What the person waited for after this step never showed up (e.g. the next button).
    incomplete: bool = False

    @property
    def reply_ms(self) -> float | None:
        return None if self.replied is None else (self.replied - self.posted) * 1000

    @property
    def answer_ms(self) -> float | None:
        return None if self.answered is None else (self.answered - self.posted) * 1000

    @property
    def lost(self) -> bool:
        """The update's expected effect never came: no reply (or, for a press, no answer)."""
        if self.status != 200 or self.incomplete:
            return True
        if self.kind == "callback" and self.answered is None:
            return True
        return self.expects_reply and self.replied is None


Until = Callable[[Call], bool]


class NotShown(AssertionError):
    """A person tried to press a button that no message in their chat shows."""


_ids = itertools.count(1)


class Person:
    """One Telegram user talking to the cluster through the balancer."""

    def __init__(self, cluster: Cluster, user_id: int, *, language_code: str = "uk", timeout: float = 30.0):
        self.cluster = cluster
        self.user_id = user_id
        self.language_code = language_code
        self.timeout = timeout
        self.steps: list[Step] = []

    # updates as Telegram shapes them
    def _user(self) -> dict[str, Any]:
        return {"id": self.user_id, "is_bot": False, "first_name": "R", "language_code": self.language_code}

    def _chat(self) -> dict[str, Any]:
        return {"id": self.user_id, "type": "private", "first_name": "R"}

    def message_update(self, text: str | None = None, **fields: Any) -> dict[str, Any]:
        update_id = next(_ids) + self.cluster.update_id_base
        message: dict[str, Any] = {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": self._chat(),
            "from": self._user(),
            **fields,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"update_id": update_id, "message": message}

    def callback_update(self, data: str, message_id: int) -> tuple[dict[str, Any], str]:
        update_id = next(_ids) + self.cluster.update_id_base
        query_id = f"{self.user_id}-{update_id}"
        shown = self.cluster.standin.shown(self.user_id).get(message_id, {})
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat(),
            "from": self.cluster.standin.bot_user,
            "text": shown.get("text") or "…",
        }
        if shown.get("reply_markup"):
            message["reply_markup"] = shown["reply_markup"]
        query = {
            "id": query_id,
            "from": self._user(),
            "chat_instance": f"ci{self.user_id}",
            "message": message,
            "data": data,
        }
        return {"update_id": update_id, "callback_query": query}, query_id

    # acting
    async def send(self, text: str, *, until: Until | None = None) -> Step:
        return await self._post(self.message_update(text), "message", text[:12], None, until)

    async def contact(self, phone: str, *, until: Until | None = None) -> Step:
        contact = {"phone_number": phone, "first_name": "R", "user_id": self.user_id}
        return await self._post(self.message_update(contact=contact), "message", "contact", None, until)

    async def click(
        self,
        data: str,
        *,
        message_id: int | None = None,
        until: Until | None = None,
        expects_reply: bool = True,
    ) -> Step:
        """Press the button with this callback data on the newest message showing it (waiting, as
        a person would, until such a message is on screen)."""
        if message_id is None:
            message_id = await self.wait_shown(data)
        update, query_id = self.callback_update(data, message_id)
        return await self._post(update, "callback", data.split(":")[0], query_id, until, expects_reply)

    async def wait_shown(self, data: str) -> int:
        """The newest message in this chat that shows a button with this callback data."""
        standin = self.cluster.standin
        try:
            return await standin.wait_for(lambda: standin.keyboard(self.user_id, data), self.timeout)
        except TimeoutError:
            raise NotShown(f"no message in chat {self.user_id} shows a button {data!r}") from None

    async def wait_button(self, match: Callable[[str, str], bool]) -> str:
        """Callback data of a button on screen for which match(text, data) holds (waiting for it)."""
        try:
            return await self.cluster.standin.wait_for(lambda: self.button(match), self.timeout)
        except TimeoutError:
            raise NotShown(f"no matching button in chat {self.user_id}") from None

    def last_message_id(self) -> int | None:
        return max(self.cluster.standin.shown(self.user_id), default=None)

    def button(self, match: Callable[[str, str], bool]) -> str | None:
        """Callback data of the first button (text, data) on screen for which match is true,
        newest message first."""
        standin = self.cluster.standin
        shown = standin.shown(self.user_id)
        for message_id in sorted(shown, reverse=True):
            for text, data in _buttons(shown[message_id].get("reply_markup")):
                if match(text, data):
                    return data
        return None

    async def _post(
        self,
        update: dict[str, Any],
        kind: str,
        label: str,
        query_id: str | None,
        until: Until | None,
        expects_reply: bool = True,
    ) -> Step:
        """POST the update, then wait for the bot's reply in the chat (the first accepted call;
        with `until`, also for a call in the chat that satisfies it) and, for a press, its
        answer."""
        standin = self.cluster.standin
        seen = len(standin.chat_calls(self.user_id))
        posted = time.monotonic()
        status = await self.cluster.post(update)
        step = Step(kind, label, posted, status, expects_reply=expects_reply)
        self.steps.append(step)
        if status != 200:
            return step

        def fresh() -> list[Call]:
            return [c for c in standin.chat_calls(self.user_id)[seen:] if c.ok]

        def done() -> bool:
            calls = fresh()
            if expects_reply and not calls:
                return False
            if until is not None and not any(until(c) for c in calls):
                return False
            return query_id is None or query_id in standin.answers

        with contextlib.suppress(TimeoutError):
            await standin.wait_for(done, self.timeout)
        calls = fresh()
        if calls and expects_reply:
            step.reply, step.replied = calls[0], calls[0].at
            if until is not None and not any(until(c) for c in calls):
                step.replied = None  # what the person waits for never came
        if query_id is not None and query_id in standin.answers:
            step.answered = standin.answers[query_id].at
        return step


def _buttons(markup: Any) -> list[tuple[str, str]]:
    from tools.telegram_standin import inline_buttons

    return inline_buttons(markup)


@dataclass
class Route:
    search: str
    hromada_id: int
    settlement_id: int
    service_id: int


class FlowAbandoned(Exception):
    """A step got no answer in time: the person gives up (what is left of the form is not sent)."""

    def __init__(self, step: Step) -> None:
        super().__init__(f"no answer to {step.kind} {step.label!r} (HTTP {step.status})")
        self.step = step


async def file_request(
    person: Person,
    route: Route,
    *,
    think: Callable[[], float] = lambda: 0.0,
    onboard: bool = True,
    double_tap: bool = False,
) -> list[Step]:
    """First contact (/start, language, consent) and the whole intake form: /new, hromada
    search, hromada, settlement, service, a vulnerability marker, done, description, no files,
    for myself, own contact, confirm. Every step waits for the bot's answer (as a person waits
    to see it) and then `think()` seconds. With `double_tap` the confirm button is pressed twice
    at once, as an impatient person does (each press may reach another instance). Raises
    FlowAbandoned when a step is not answered."""

    async def step(action: Awaitable[Step]) -> Step:
        try:
            done = await action
        except NotShown:
            # The button to press never appeared: the previous update's effect is missing.
            if not person.steps:
                raise
            person.steps[-1].incomplete = True
            raise FlowAbandoned(person.steps[-1]) from None
        if done.lost:
            raise FlowAbandoned(done)
        pause = think()
        if pause > 0:
            await asyncio.sleep(pause)
        return done

    steps: list[Step] = []
    if onboard:
        steps.append(await step(person.send("/start")))
        steps.append(await step(person.click(LanguageCb(code="uk").pack())))
        steps.append(await step(person.click(ConsentCb(answer="yes").pack())))
    steps.append(await step(person.send("/new")))
    steps.append(await step(person.send(route.search)))
    steps.append(await step(person.click(IntakeCb(action="h", value=str(route.hromada_id)).pack())))
    steps.append(await step(person.click(IntakeCb(action="st", value=str(route.settlement_id)).pack())))
    steps.append(await step(person.click(IntakeCb(action="sv", value=str(route.service_id)).pack())))
    steps.append(await step(person.click(IntakeCb(action="vul", value="elderly_alone").pack())))
    steps.append(await step(person.click(IntakeCb(action="vdone").pack())))
    steps.append(await step(person.send(DESCRIPTION)))
    steps.append(await step(person.click(IntakeCb(action="adone").pack())))
    steps.append(await step(person.click(IntakeCb(action="beh", value="self").pack())))
    steps.append(await step(person.contact(f"+38050{person.user_id % 10_000_000:07d}", until=shows_confirm)))
    try:
        confirm = await person.wait_button(lambda _text, data: _is_confirm(data))
    except NotShown:
        person.steps[-1].incomplete = True
        raise FlowAbandoned(person.steps[-1]) from None
    if not double_tap:
        steps.append(await step(person.click(confirm)))
        return steps
    message_id = await person.wait_shown(confirm)  # shown: just found
    first, second = await asyncio.gather(
        person.click(confirm, message_id=message_id),
        person.click(confirm, message_id=message_id, expects_reply=False),
    )
    for done in (first, second):
        if done.lost:
            raise FlowAbandoned(done)
    steps += [first, second]
    return steps


def _is_confirm(data: str) -> bool:
    return data.startswith("in:confirm")


def shows_confirm(call: Call) -> bool:
    """The form's summary with its confirm button has arrived."""
    return any(_is_confirm(data) for _text, data in call.buttons())


class Worker(Person):
    """A worker who presses "Take" on every new-case notice that reaches their chat."""

    async def take_cases(
        self, stop: asyncio.Event, *, think: Callable[[], float] = lambda: 0.0, double_tap: bool = False
    ) -> list[int]:
        """Until `stop` is set: for each new notice with a take button, press it (with
        `double_tap`, twice at once). Returns the case ids pressed."""
        standin = self.cluster.standin
        seen = 0
        pressed: list[int] = []
        while not stop.is_set():
            calls = standin.chat_calls(self.user_id)
            fresh, seen = calls[seen:], len(calls)
            for call in fresh:
                if not call.ok or call.message_id is None:
                    continue
                for _text, data in call.buttons():
                    if data.startswith("case:take:"):
                        pause = think()
                        if pause > 0:
                            await asyncio.sleep(pause)
                        presses = [self.click(data, message_id=call.message_id, expects_reply=False)]
                        if double_tap:
                            presses.append(self.click(data, message_id=call.message_id, expects_reply=False))
                        await asyncio.gather(*presses)
                        pressed.append(int(data.rsplit(":", 1)[1]))
            with contextlib.suppress(TimeoutError):
                await standin.wait_for(
                    lambda seen=seen: len(standin.chat_calls(self.user_id)) > seen or stop.is_set(), 0.5
                )
        return pressed


# -- the cluster ----------------------------------------------------------------------------------
@dataclass
class Cluster:
    instances: int = 3
    balancer: bool | None = None  # default: only with more than one instance
    redis: bool = True
    env: dict[str, str] = field(default_factory=dict)  # extra settings for every process
    standin: TelegramStandIn | None = None  # type: ignore[assignment]
    poll_seconds: float = 2.0
    startup_timeout: float = 90.0
    keep_logs: bool = False

    def __post_init__(self) -> None:
        self.bot_id = random.randint(1_000_000_000, 1_999_999_999)
        self.token = f"{self.bot_id}:CLUSTER-stand-in-token-{secrets.token_hex(8)}"
        self.secret = "cluster_" + secrets.token_urlsafe(32)
        self.update_id_base = random.randint(1, 10**6) * 1000
        if self.standin is None:
            self.standin = TelegramStandIn(token=self.token)
        else:
            self.standin.token = self.token
            self.standin.bot_user["id"] = self.bot_id
        if self.balancer is None:
            self.balancer = self.instances > 1
        self.processes: list[BotProcess] = []
        self.database_url = ""
        self.database_name = ""
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.haproxy: asyncio.subprocess.Process | None = None
        self.haproxy_port = 0
        self.stats_port = 0
        self.http: aiohttp.ClientSession | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="hromada-cluster-"))
        self.redis_url = REDIS_URL if self.redis else ""

    # life cycle
    async def __aenter__(self) -> Cluster:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        from infra.db import create_engine, create_sessionmaker
        from infra.migrate import upgrade
        from services.reference_data import load_reference_file

        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=120), connector=aiohttp.TCPConnector(limit=0)
        )
        api_base = await self.standin.start(process=True)
        self.database_url, self.database_name = await create_database("hromada_cluster")
        # Starting a bot process (imports) takes far longer than migrating and seeding: both at
        # once. Nothing in a starting process needs the tables before its first update, and
        # updates come only once everything is up.
        starting = asyncio.gather(*(self._start_process(i, api_base) for i in range(self.instances)))
        await upgrade(self.database_url)
        self.engine = create_engine(self.database_url)
        self.sessionmaker = create_sessionmaker(self.engine)
        async with self.sessionmaker.begin() as session:
            await load_reference_file(session, SAMPLE)
        await starting
        await asyncio.gather(*(self._wait_healthy(p) for p in self.processes))
        if self.balancer:
            await self._start_haproxy()

    def settings_env(self, port: int, api_base: str) -> dict[str, str]:
        env = {
            "BOT_TOKEN": self.token,
            "TELEGRAM_API_BASE": api_base,
            "WEBHOOK_SECRET": self.secret,
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(port),
            "WEBHOOK_URL": "https://bot.example.org",
            "WEBHOOK_PATH": WEBHOOK_PATH,
            "DATABASE_URL": self.database_url,
            # The run must not depend on the hour it is started at.
            "QUIET_HOURS_START": "00:00",
            "QUIET_HOURS_END": "00:00",
            "OUTBOX_POLL_SECONDS": str(self.poll_seconds),
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.env)
        return env

    async def _start_process(self, index: int, api_base: str) -> None:
        port = free_port()
        log_path = self.workdir / f"bot{index + 1}.log"
        log = log_path.open("wb")
        try:
            # This checkout's code, whatever an installed `hromada-bot` script would import.
            pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "webhook",
                env=clean_env(**self.settings_env(port, api_base), PYTHONPATH=pythonpath),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,  # no .env of the developer's is read
            )
        finally:
            log.close()
        self.processes.append(BotProcess(index + 1, port, process, log_path))

    async def _wait_healthy(self, bot: BotProcess) -> None:
        assert self.http is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if bot.process.returncode is not None:
                raise RuntimeError(
                    f"bot{bot.index} exited with {bot.process.returncode}:\n{bot.log()[-3000:]}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self.http.get(f"http://127.0.0.1:{bot.port}/healthz") as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"bot{bot.index} did not become healthy:\n{bot.log()[-3000:]}")
            await asyncio.sleep(0.2)

    async def _start_haproxy(self) -> None:
        binary = ensure_haproxy()
        if binary is None:
            raise RuntimeError("haproxy is not installed and cannot be installed here")
        self.haproxy_port, self.stats_port = free_port(), free_port()
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            haproxy_config(self.haproxy_port, self.stats_port, [p.port for p in self.processes])
        )
        log = (self.workdir / "haproxy.log").open("wb")
        try:
            self.haproxy = await asyncio.create_subprocess_exec(
                binary, "-db", "-f", str(config), stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        deadline = time.monotonic() + 20
        while True:
            stats = await self.balancer_stats()
            if stats and all(s["status"] == "UP" for s in stats.values()):
                return
            if self.haproxy.returncode is not None or time.monotonic() > deadline:
                text = (self.workdir / "haproxy.log").read_text(errors="replace")
                raise RuntimeError(f"haproxy did not come up: {stats}\n{text[-2000:]}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        for bot in self.processes:
            if bot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    bot.process.send_signal(signal.SIGTERM)
        for bot in self.processes:
            try:
                await asyncio.wait_for(bot.process.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    bot.process.kill()
                await bot.process.wait()
        if self.haproxy is not None and self.haproxy.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.haproxy.terminate()
            try:
                await asyncio.wait_for(self.haproxy.wait(), 10)
            except TimeoutError:
                self.haproxy.kill()
                await self.haproxy.wait()
        if self.http is not None:
            await self.http.close()
        await self.standin.stop()
        if self.engine is not None:
            await self.engine.dispose()
        if self.database_name:
            await drop_database(self.database_name)
            self.database_name = ""
        if self.redis_url:
            await self._forget_redis_keys()
        if not self.keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _forget_redis_keys(self) -> None:
        """Our keys only (they carry this run's bot id): the Redis is shared."""
        from redis.asyncio import Redis

        redis = Redis.from_url(self.redis_url)
        try:
            async for key in redis.scan_iter(match=f"*{self.bot_id}*", count=1000):
                await redis.delete(key)
        except Exception:  # noqa: S110 - best effort: a key left behind only wastes a little memory
            pass
        finally:
            await redis.aclose()

    # talking to it
    @property
    def webhook_url(self) -> str:
        if self.balancer:
            return f"http://127.0.0.1:{self.haproxy_port}{WEBHOOK_PATH}"
        return f"http://127.0.0.1:{self.processes[0].port}{WEBHOOK_PATH}"

    async def post(self, update: dict[str, Any]) -> int:
        """POST one update as Telegram does; returns the HTTP status (0 when the POST failed)."""
        assert self.http is not None
        try:
            async with self.http.post(
                self.webhook_url, json=update, headers={SECRET_HEADER: self.secret}
            ) as r:
                await r.read()
                return r.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return 0

    def person(self, user_id: int, **kwargs: Any) -> Person:
        return Person(self, user_id, **kwargs)

    def worker(self, user_id: int, **kwargs: Any) -> Worker:
        return Worker(self, user_id, **kwargs)

    async def balancer_stats(self) -> dict[str, dict[str, Any]]:
        """Per backend server: status and requests sent to it (HAProxy's CSV stats)."""
        if not self.stats_port or self.http is None:
            return {}
        try:
            async with self.http.get(f"http://127.0.0.1:{self.stats_port}/stats;csv") as response:
                text = await response.text()
        except (aiohttp.ClientError, OSError):
            return {}
        lines = [line for line in text.splitlines() if line]
        if not lines:
            return {}
        header = lines[0].lstrip("# ").split(",")
        out: dict[str, dict[str, Any]] = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "bots" and row.get("svname", "").startswith("bot"):
                out[row["svname"]] = {"status": row.get("status", ""), "requests": int(row.get("stot") or 0)}
        return out

    # the database
    async def routes(self) -> list[Route]:
        from models import Hromada, Service, Settlement

        assert self.sessionmaker is not None
        out = []
        async with self.sessionmaker() as session:
            for search, h_code, st_code, sv_code in ROUTES:
                h = await session.scalar(select(Hromada).where(Hromada.code == h_code))
                assert h is not None
                st = await session.scalar(
                    select(Settlement).where(Settlement.hromada_id == h.id, Settlement.code == st_code)
                )
                sv = await session.scalar(select(Service).where(Service.code == sv_code))
                assert st is not None and sv is not None
                out.append(Route(search, h.id, st.id, sv.id))
        return out

    async def add_workers(self, per_team: int, first_id: int) -> dict[str, list[int]]:
        """`per_team` on-duty workers in every team; returns team code → their Telegram ids."""
        from models import Team, TeamMember, User, Worker
        from models.people import ROLE_WORKER

        assert self.sessionmaker is not None
        ids = itertools.count(first_id)
        out: dict[str, list[int]] = {}
        async with self.sessionmaker.begin() as session:
            teams = (await session.scalars(select(Team).order_by(Team.id))).all()
            for team in teams:
                out[team.code] = []
                for _ in range(per_team):
                    tg = next(ids)
                    user = User(telegram_id=tg, language="uk")
                    session.add(user)
                    await session.flush()
                    worker = Worker(user_id=user.id, display_name=f"Worker {tg}")
                    session.add(worker)
                    await session.flush()
                    session.add(
                        TeamMember(team_id=team.id, worker_id=worker.id, role=ROLE_WORKER, on_duty=True)
                    )
                    out[team.code].append(tg)
        return out

    async def add_due_reminders(self, chats: list[int], *, kind: str = "renewal_due", tag: str = "R") -> None:
        """One due reminder per chat, written straight into the outbox (as a planner would)."""
        from models import OutboxMessage
        from models.outbox import PENDING

        assert self.sessionmaker is not None
        due = datetime.now(UTC) - timedelta(seconds=1)
        rows = [
            {
                "kind": kind,
                "user_id": None,
                "chat_id": chat,
                "due_at": due,
                "urgent": False,
                "payload": {"number": f"{tag}-{chat}", "service": "Bench", "due": "01.01.2027"},
                "state": PENDING,
                "attempts": 0,
            }
            for chat in chats
        ]
        async with self.sessionmaker.begin() as session:
            for start in range(0, len(rows), 1000):
                await session.execute(insert(OutboxMessage), rows[start : start + 1000])

    def logs(self) -> str:
        return "\n".join(f"--- bot{p.index} ---\n{p.log()}" for p in self.processes)
