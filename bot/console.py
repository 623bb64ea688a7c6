"""Offline console: the real dispatcher, services and database in a terminal chat.

No token, no network: Telegram is replaced by the recording session. You act as a resident or
as a worker (`:as worker`); buttons are numbered and pressed by typing their number.
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
from pathlib import Path
from typing import TextIO

from aiogram.methods import EditMessageReplyMarkup
from sqlalchemy import func, select

from bot import PACKAGE_ROOT
from bot.delivery import OutboxDeliverer
from bot.factory import App, build_app, create_bot
from bot.offline import BotClient, RecordingSession, Reply
from infra.migrate import prepare_embedded_database
from infra.settings import Settings
from models import Hromada, Team, TeamMember, User, Worker
from models.people import ROLE_COORDINATOR
from services.reference_data import load_reference_file

RESIDENT_ID = 1001
WORKER_ID = 2001
CONSOLE_TEAM = "ves-csp"  # the console's worker coordinates Veselivska's centre
HELP = """Console commands:
  <text>            send a message          <number>   press the button with that number
  'text             send text even if it looks like a number
  :as resident      act as the resident     :as worker  act as a worker (coordinator of a sample team)
  :contact          share your own phone    :contact other   share someone else's contact
  :photo  :doc      send a photo / a PDF    :sticker  :voice  send those
  :help             this help               :quit       leave (Ctrl-D too)"""

_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def sample_reference_path() -> Path | None:
    for base in (PACKAGE_ROOT, Path.cwd()):
        candidate = base / "data" / "sample_reference.yaml"
        if candidate.exists():
            return candidate
    return None


class Console:
    def __init__(self, app: App, session: RecordingSession, out: TextIO) -> None:
        self.app = app
        self.out = out
        bot = create_bot(app.settings, session=session)
        self.deliverer = OutboxDeliverer(bot, app.sessionmaker, app.i18n, app.clock, app.settings)
        self.clients = {
            "resident": BotClient(app.dispatcher, bot, session, user_id=RESIDENT_ID, first_name="Resident"),
            "worker": BotClient(app.dispatcher, bot, session, user_id=WORKER_ID, first_name="Worker"),
        }
        self.role = "resident"
        self.inline: list[tuple[str, str, int | None]] = []  # (text, callback data, message id)

    @property
    def client(self) -> BotClient:
        return self.clients[self.role]

    def say(self, line: str = "") -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def show(self, replies: list[Reply]) -> None:
        fresh_inline: list[tuple[str, str, int | None]] = []
        for reply in replies:
            if reply.kind in ("toast", "alert"):
                self.say(f"  ({plain(reply.text)})")
                continue
            if reply.kind == "edit" and isinstance(reply.method, EditMessageReplyMarkup):
                continue  # only its buttons changed (usually removed after a press)
            marker = "✎ " if reply.kind == "edit" else ""
            self.say(f"🤖 {marker}{plain(reply.text)}")
            for row in reply.inline:
                fresh_inline.extend((text, data, reply.message_id) for text, data in row)
        if fresh_inline:
            self.inline = fresh_inline
        self.show_buttons()

    def show_buttons(self) -> None:
        for number, (text, _, _) in enumerate(self.inline, 1):
            self.say(f"   [{number}] {text}")
        keyboard = [t for row in (self.client.keyboard or []) for t in row]
        if keyboard:
            first = len(self.inline) + 1
            self.say("   keyboard: " + "  ".join(f"({first + i}) {t}" for i, t in enumerate(keyboard)))

    async def press(self, number: int) -> list[Reply] | None:
        if 1 <= number <= len(self.inline):
            _, data, message_id = self.inline[number - 1]
            return await self.client.click_data(data, message_id=message_id)
        keyboard = [t for row in (self.client.keyboard or []) for t in row]
        index = number - len(self.inline) - 1
        if 0 <= index < len(keyboard):
            self.say(f"> {keyboard[index]}")
            return await self.client.send(keyboard[index])
        return None

    async def switch(self, role: str) -> None:
        if role not in self.clients:
            self.say("  (use :as resident or :as worker)")
            return
        self.role = role
        self.inline = []
        self.say(f"── now you are the {role} ──")
        self.show(self.client.read())
        if self.client.keyboard is None:  # first time as this person: bring up their menu
            self.show(await self.client.send("/menu"))

    async def handle(self, line: str) -> bool:
        """One input line; False means quit."""
        line = line.rstrip("\n")
        if not line.strip():
            return True
        command, _, argument = line.strip().partition(" ")
        if command in (":quit", ":q", ":exit"):
            return False
        if command == ":help":
            self.say(HELP)
            return True
        if command == ":as":
            await self.switch(argument.strip())
            return True
        actions = {
            ":contact": lambda: self.client.share_contact(own=argument.strip() != "other"),
            ":photo": self.client.send_photo,
            ":doc": self.client.send_document,
            ":sticker": self.client.send_sticker,
            ":voice": self.client.send_voice,
        }
        if command in actions:
            replies = await actions[command]()
        elif line.strip().isdigit():
            pressed = await self.press(int(line.strip()))
            replies = pressed if pressed is not None else await self.client.send(line.strip())
        else:
            replies = await self.client.send(line[1:] if line.startswith("'") else line)
        self.inline = []
        self.show(replies)
        await self.deliver_others()
        return True

    async def deliver_others(self) -> None:
        """Send due outbox messages (notifications to the other person) and say who got one."""
        if not await self.deliverer.deliver_due():
            return
        mine = self.client.read()
        if mine:
            self.show(mine)
        for role, client in self.clients.items():
            waiting = client.unread_count()
            if role != self.role and waiting:
                self.say(f"  📨 {waiting} new message(s) for the {role}: type :as {role}")


async def ensure_console_worker(app: App) -> None:
    """The console's worker: a coordinator of one sample team (console only; real workers join by invite)."""
    async with app.sessionmaker.begin() as session:
        user = await session.scalar(select(User).where(User.telegram_id == WORKER_ID))
        if user is None:
            user = User(telegram_id=WORKER_ID, language="uk")
            session.add(user)
            await session.flush()
        worker = await session.scalar(select(Worker).where(Worker.user_id == user.id))
        if worker is None:
            worker = Worker(user_id=user.id, display_name="Console worker")
            session.add(worker)
            await session.flush()
        team = await session.scalar(select(Team).where(Team.code == CONSOLE_TEAM))
        if team is None:
            return
        member = await session.scalar(
            select(TeamMember).where(TeamMember.worker_id == worker.id, TeamMember.team_id == team.id)
        )
        if member is None:
            session.add(TeamMember(team_id=team.id, worker_id=worker.id, role=ROLE_COORDINATOR))


async def run_console(
    settings: Settings, *, load_sample: bool = True, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    await prepare_embedded_database(settings.database.url)
    app = build_app(settings)
    try:
        if load_sample:
            async with app.sessionmaker.begin() as session:
                empty = not await session.scalar(select(func.count()).select_from(Hromada))
                sample = sample_reference_path()
                if empty and sample is not None:
                    await load_reference_file(session, sample)
            # The worker exists from the start, so the resident's requests are assigned to them.
            await ensure_console_worker(app)
        console = Console(app, RecordingSession(), out)
        console.say("hromada-bot offline console — type :help for commands, /start to begin.")
        interactive = stdin.isatty()
        while True:
            if interactive:
                out.write(f"{console.role}> ")
                out.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            if not interactive:
                console.say(f"{console.role}> {line.rstrip()}")
            if not await console.handle(line):
                break
    finally:
        await app.close()
    return 0
