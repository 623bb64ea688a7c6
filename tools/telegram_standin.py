"""A Bot API stand-in on loopback that answers like Telegram and enforces its flood limits.

Tests and benchmarks point `TELEGRAM_API_BASE` at it; the bot's real aiohttp session talks to it
over HTTP, so everything between the bot and the network (aiogram's session, our middlewares,
the rate limiter) runs as in production.

What it does, per call to `POST /bot<token>/<method>` (form, multipart or JSON body):
- answers with a Bot API result of the right shape for the methods the bot uses (getMe,
  setWebhook, deleteWebhook, sendMessage, sendPhoto, sendDocument, sendMediaGroup, copyMessage,
  forwardMessage, editMessageText, editMessageReplyMarkup, editMessageCaption,
  answerCallbackQuery, deleteMessage, getFile, setMyCommands…), so aiogram parses it; a wrong
  token gets 401 and an unknown method 404, as from Telegram;
- **enforces Telegram's limits** on message-creating calls (`MESSAGE_METHODS`): more than
  `rate` (30) of them in any one-second window, or two to the same chat less than
  `per_chat_interval` (1 s) apart, are answered 429 with `parameters.retry_after`, exactly in
  Telegram's shape. Only accepted calls count towards the limits. `tolerance` (default 5 ms)
  absorbs loopback and event-loop jitter between the bot's clock and this one;
- a second answer to one callback query is refused with 400, as Telegram does;
- records every call (`Call`: arrival time, method, chat, parameters, HTTP status, 429 or not),
  so checks can be made afterwards (`max_in_any_second`, `per_chat_violations`) or waited for
  (`wait_for`);
- injects faults on request (`inject(Fault(...))`): a JSON error (5xx), an HTML error page, a
  JSON body cut short, a dropped connection, or a delay before the normal answer.

    standin = TelegramStandIn(token=TOKEN)
    base = await standin.start()          # http://127.0.0.1:<port>, for TELEGRAM_API_BASE
    ...
    await standin.stop()

Files: `GET /file/bot<token>/<path>` answers a few bytes for any path `getFile` handed out.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import math
import os
import signal
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
# Calls that create a message in a chat: Telegram's per-chat and global message limits count
# these. Edits, callback answers, deletions and getters are not limited here (Telegram does not
# document limits for them; the bot's limiter does not book slots for them either).
MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "sendVideo",
        "sendAudio",
        "sendVoice",
        "sendAnimation",
        "sendSticker",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "sendDice",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    }
)
EDIT_METHODS = frozenset({"editMessageText", "editMessageReplyMarkup", "editMessageCaption"})
# Parameters that aiogram sends as JSON text inside a form.
JSON_PARAMS = frozenset({"reply_markup", "media", "entities", "caption_entities", "link_preview_options"})
TRUE_METHODS = frozenset(
    {
        "setWebhook",
        "deleteWebhook",
        "answerCallbackQuery",
        "deleteMessage",
        "deleteMessages",
        "setMyCommands",
        "deleteMyCommands",
        "setChatMenuButton",
        "sendChatAction",
        "setMyDescription",
        "setMyShortDescription",
        "setMyName",
        "close",
        "logOut",
    }
)
HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class Call:
    """One API call as it arrived."""

    seq: int
    at: float  # time.monotonic() when the request reached the stand-in
    method: str
    chat_id: int | str | None
    params: dict[str, Any]
    status: int  # HTTP status answered
    retry_after: int | None = None  # set when answered 429
    message_id: int | None = None  # of the message created or edited
    fault: str | None = None  # the injected fault's kind, if one answered this call
    limit: str | None = None  # which limit a 429 enforced: "global" or "chat"

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.fault is None

    @property
    def limited(self) -> bool:
        return self.status == 429

    @property
    def creates_message(self) -> bool:
        return self.method in MESSAGE_METHODS

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def callback_query_id(self) -> str | None:
        value = self.params.get("callback_query_id")
        return str(value) if value is not None else None

    def buttons(self) -> list[tuple[str, str]]:
        """(text, callback_data or url) of the inline keyboard this call carried, row by row."""
        return inline_buttons(self.params.get("reply_markup"))


def inline_buttons(markup: Any) -> list[tuple[str, str]]:
    if not isinstance(markup, dict):
        return []
    return [
        (str(b.get("text", "")), str(b.get("callback_data") or b.get("url") or ""))
        for row in markup.get("inline_keyboard") or []
        for b in row
        if isinstance(b, dict)
    ]


@dataclass
class Fault:
    """A deliberate failure for the next matching call(s).

    kind: "error" (JSON Bot API error with `status`), "html" (an HTML page with `status`, as a
    proxy in front of Telegram answers), "cut" (HTTP 200 with a JSON body cut short), "reset"
    (the connection is dropped without an answer), "delay" (wait `delay` seconds, then answer
    normally). `times=None` keeps the fault for every matching call."""

    kind: str
    status: int = 502
    delay: float = 0.0
    method: str | None = None
    chat_id: int | None = None
    times: int | None = 1

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.chat_id is None or self.chat_id == chat_id


def _edited(shown: dict[str, Any] | None, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A message's text and inline keyboard after an edit (an edit without a keyboard removes it,
    as on Telegram)."""
    text = (shown or {}).get("text", "")
    if method == "editMessageText":
        text = str(params.get("text", ""))
    elif method == "editMessageCaption":
        text = str(params.get("caption", ""))
    markup = params.get("reply_markup")
    return {"text": text, "reply_markup": markup if isinstance(markup, dict) else None}


def _chat(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Person"}
    return {"id": chat_id, "type": "group", "title": "Team"}


def _chat_id(value: Any) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if text.lstrip("-").isdigit() else text


class TelegramStandIn:
    def __init__(
        self,
        *,
        token: str | None = None,
        rate: int = 30,
        per_chat_interval: float = 1.0,
        tolerance: float = 0.005,
        enforce: bool = True,
        bot_id: int | None = None,
        bot_username: str = "hromada_bot",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.rate = rate
        self.per_chat_interval = per_chat_interval
        self.tolerance = tolerance
        self.enforce = enforce
        if bot_id is None:
            bot_id = int(token.split(":", 1)[0]) if token and token.split(":", 1)[0].isdigit() else 42
        self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "Hromada", "username": bot_username}
        self.clock = clock
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.by_chat: dict[int | str, list[Call]] = defaultdict(list)
        self.answers: dict[str, Call] = {}  # callback_query_id → its first accepted answer
        # Current text and inline keyboard of each message, as the person would see it now.
        # chat → message id → {"text", "reply_markup"}.
        self.messages: dict[int | str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._accepted: deque[float] = deque()  # arrival times of accepted message-creating calls
        self._last_in_chat: dict[int | str, float] = {}
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._seq = itertools.count()
        self._tick = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._owner: asyncio.AbstractEventLoop | None = None  # the loop that reads and waits
        self.on_record: Callable[[Call], None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._server_loop: asyncio.AbstractEventLoop | None = None
        self._lag_task: asyncio.Task[None] | None = None
        # Worst event-loop lag seen (s): arrival times are stamped by this loop, so a lag this
        # large can bunch arrivals that the bot spaced correctly. Reported next to the checks.
        self.loop_lag_max = 0.0
        self.base_url = ""

    # -- server -------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self.handle)
        app.router.add_get("/bot{token}/{method}", self.handle)
        app.router.add_get("/file/bot{token}/{path:.*}", self.file)
        app.router.add_get("/_standin/count", self.count)
        return app

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, thread: bool = False, process: bool = False
    ) -> str:
        """Serve on host:port (0: any free port); returns the base URL for TELEGRAM_API_BASE.

        With `thread`, the server runs on an event loop of its own in a separate thread, so
        arrivals are stamped when they arrive even while the caller's loop is busy (driving
        hundreds of people, say): a stamp delayed by a busy loop can make correctly spaced
        calls look bunched. Records are still read, and waited for, from the caller's loop.

        With `process`, the server is a process of its own (`python -m tools.telegram_standin`)
        that reports every call as a JSON line; this object mirrors them (same records, same
        waiting), and neither this loop nor this process's GIL can delay a stamp. Arrival times
        are `time.monotonic()` there, the same system-wide clock as here. Faults are not
        available in this mode."""
        self._owner = asyncio.get_running_loop()
        self._tick = asyncio.Event()
        if process:
            return await self._spawn(host, port)
        if not thread:
            return await self._serve(host, port)
        started: concurrent.futures.Future[str] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._server_loop = loop
            try:
                started.set_result(loop.run_until_complete(self._serve(host, port)))
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                return
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=run, name="telegram-standin", daemon=True)
        self._thread.start()
        return await asyncio.wrap_future(started)

    async def _serve(self, host: str, port: int) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://{host}:{bound}"
        self._lag_task = asyncio.create_task(self._watch_lag())
        return self.base_url

    async def _watch_lag(self, every: float = 0.005) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(every)
            self.loop_lag_max = max(self.loop_lag_max, loop.time() - before - every)

    async def _close(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
            self._lag_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _spawn(self, host: str, port: int) -> str:
        command = [sys.executable, "-m", "tools.telegram_standin", "--host", host, "--port", str(port)]
        command += ["--rate", str(self.rate), "--per-chat-interval", str(self.per_chat_interval)]
        command += ["--tolerance", str(self.tolerance), "--bot-id", str(self.bot_user["id"])]
        if self.token is not None:
            command += ["--token", self.token]
        if not self.enforce:
            command.append("--no-limits")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self._process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024
        )
        assert self._process.stdout is not None
        first = await asyncio.wait_for(self._process.stdout.readline(), 60)
        if not first:
            raise RuntimeError("the stand-in process did not start")
        self.base_url = json.loads(first)["listening"]
        self._reader = asyncio.create_task(self._mirror(self._process.stdout))
        return self.base_url

    async def _mirror(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            item = json.loads(line)
            if "call" in item:
                self._record(Call(**item["call"]))
            elif "lag" in item:
                self.loop_lag_max = max(self.loop_lag_max, float(item["lag"]))

    async def stop(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            if process.returncode is None:
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._reader, 5)
                self._reader = None
            return
        if self._thread is None:
            await self._close()
            return
        loop, thread = self._server_loop, self._thread
        self._thread = self._server_loop = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)

    # -- faults -------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        if self._process is not None:
            raise NotImplementedError(
                "faults are injected in-process or in-thread, not into a stand-in process"
            )
        self.faults.append(fault)
        return fault

    # -- handling -----------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            return dict(body) if isinstance(body, dict) else {}
        params: dict[str, Any] = {}
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                params[key] = {"upload": value.filename}
                continue
            if key in JSON_PARAMS and isinstance(value, str):
                try:
                    params[key] = json.loads(value)
                    continue
                except ValueError:
                    pass
            params[key] = value
        return params

    def _track(self, call: Call) -> None:
        """What the person sees: a message created or edited by an accepted call."""
        if not call.ok or call.message_id is None:
            return
        chat = call.chat_id if isinstance(call.chat_id, int) else 0
        if call.method in EDIT_METHODS:
            self.messages[chat][call.message_id] = _edited(
                self.messages[chat].get(call.message_id), call.method, call.params
            )
        elif call.method in MESSAGE_METHODS and call.method != "copyMessage":
            markup = call.params.get("reply_markup")
            inline = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
            self.messages[chat][call.message_id] = {"text": call.text, "reply_markup": inline}

    def _record(self, call: Call) -> Call:
        self._track(call)
        if self.on_record is not None:
            self.on_record(call)
        self.calls.append(call)
        if call.chat_id is not None:
            self.by_chat[call.chat_id].append(call)
        query_id = call.callback_query_id
        if call.method == "answerCallbackQuery" and call.ok and query_id is not None:
            self.answers.setdefault(query_id, call)
        owner = self._owner
        if owner is not None and self._thread is not None:
            owner.call_soon_threadsafe(self._wake)
        else:
            self._wake()
        return call

    def _wake(self) -> None:
        """Let every waiter check its condition again (on the loop that waits)."""
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def _over_limit(self, now: float, chat_id: int | str | None) -> tuple[int, str] | None:
        """(retry_after in seconds, which limit) if a message-creating call now would break a
        limit, else None."""
        window = 1.0 - self.tolerance
        while self._accepted and self._accepted[0] <= now - window:
            self._accepted.popleft()
        if len(self._accepted) >= self.rate:
            return max(1, math.ceil(self._accepted[0] + 1.0 - now)), "global"
        if chat_id is not None:
            last = self._last_in_chat.get(chat_id)
            if last is not None and now - last < self.per_chat_interval - self.tolerance:
                return max(1, math.ceil(last + self.per_chat_interval - now)), "chat"
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = self.clock()
        seq = next(self._seq)
        method = request.match_info["method"]
        if self.token is not None and request.match_info["token"] != self.token:
            self._record(Call(seq, now, method, None, {}, 401))
            return self._error(401, "Unauthorized")
        try:
            params = await self._params(request)
        except ValueError:
            self._record(Call(seq, now, method, None, {}, 400))
            return self._error(400, "Bad Request: can't parse JSON body")
        chat_id = _chat_id(params.get("chat_id"))

        fault = next((f for f in self.faults if f.matches(method, chat_id)), None)
        if fault is not None and fault.times is not None:
            fault.times -= 1
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay)
            fault = None
        if fault is not None:
            self._record(Call(seq, now, method, chat_id, params, fault.status, fault=fault.kind))
            return self._fault(request, fault)

        if method in MESSAGE_METHODS and self.enforce:
            over = self._over_limit(now, chat_id)
            if over is not None:
                retry_after, limit = over
                self._record(
                    Call(seq, now, method, chat_id, params, 429, retry_after=retry_after, limit=limit)
                )
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": f"Too Many Requests: retry after {retry_after}",
                        "parameters": {"retry_after": retry_after},
                    },
                    status=429,
                )
        if method == "answerCallbackQuery":
            query_id = str(params.get("callback_query_id", ""))
            if query_id in self.answers:
                self._record(Call(seq, now, method, chat_id, params, 400))
                return self._error(
                    400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
                )
        try:
            result, message_id = self._result(method, chat_id, params)
        except LookupError:
            self._record(Call(seq, now, method, chat_id, params, 404))
            return self._error(404, "Not Found: method not found")
        if method in MESSAGE_METHODS:
            self._accepted.append(now)
            if chat_id is not None:
                self._last_in_chat[chat_id] = now
        self._record(Call(seq, now, method, chat_id, params, 200, message_id=message_id))
        return web.json_response({"ok": True, "result": result})

    async def count(self, request: web.Request) -> web.Response:
        """How many calls were recorded (lets a mirror know when it has caught up)."""
        return web.json_response({"calls": len(self.calls)})

    async def synced(self, timeout: float = 30.0) -> None:
        """Wait until every call the server recorded so far is in these records (a stand-in
        process reports them a moment after answering); at once in the other modes."""
        if self._process is None:
            return
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(f"{self.base_url}/_standin/count") as response:
            recorded = (await response.json())["calls"]
        await self.wait_for(lambda: len(self.calls) >= recorded, timeout)

    async def file(self, request: web.Request) -> web.Response:
        return web.Response(body=b"stand-in file\n", content_type="application/octet-stream")

    @staticmethod
    def _error(code: int, description: str) -> web.Response:
        return web.json_response({"ok": False, "error_code": code, "description": description}, status=code)

    def _fault(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.kind == "html":
            return web.Response(status=fault.status, text=HTML_ERROR_PAGE, content_type="text/html")
        if fault.kind == "cut":
            return web.Response(
                status=200, text='{"ok":true,"result":{"message_id":1', content_type="application/json"
            )
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.close()  # dropped without an answer, as a reset connection
            return web.Response(status=fault.status)
        description = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        return self._error(fault.status, description.get(fault.status, "Internal Server Error"))

    # -- results ------------------------------------------------------------------------------
    def _message(self, chat_id: int | str | None, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        message_id = next(self._message_ids)
        chat = chat_id if isinstance(chat_id, int) else 0
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(chat),
            "from": self.bot_user,
        }
        message.update(extra)
        if isinstance(params.get("reply_markup"), dict) and "inline_keyboard" in params["reply_markup"]:
            message["reply_markup"] = params["reply_markup"]
        return message

    def _file(self, kind: str) -> dict[str, Any]:
        n = next(self._file_ids)
        return {"file_id": f"{kind}-{n}-standin", "file_unique_id": f"u{kind[:3]}{n}", "file_size": 1024}

    def _result(
        self, method: str, chat_id: int | str | None, params: dict[str, Any]
    ) -> tuple[Any, int | None]:
        if method == "getMe":
            return self.bot_user, None
        if method in TRUE_METHODS:
            return True, None
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}, None
        if method == "getFile":
            file_id = str(params.get("file_id", ""))
            path = f"documents/{file_id or 'file'}.bin"
            return {
                "file_id": file_id,
                "file_unique_id": f"u{abs(hash(file_id)) % 10**8}",
                "file_size": 14,
                "file_path": path,
            }, None
        if method == "sendMessage":
            message = self._message(chat_id, params, text=str(params.get("text", "")))
            return message, message["message_id"]
        if method == "sendPhoto":
            photo = self._file("photo")
            sizes = [
                {**photo, "width": 90, "height": 90},
                {**photo, "file_id": photo["file_id"] + "-m", "width": 800, "height": 800},
            ]
            extra: dict[str, Any] = {"photo": sizes}
            if params.get("caption"):
                extra["caption"] = str(params["caption"])
            message = self._message(chat_id, params, **extra)
            return message, message["message_id"]
        if method in ("sendDocument", "sendVideo", "sendAudio", "sendVoice", "sendAnimation", "sendSticker"):
            field_name = {
                "sendDocument": "document",
                "sendVideo": "video",
                "sendAudio": "audio",
                "sendVoice": "voice",
                "sendAnimation": "animation",
                "sendSticker": "sticker",
            }[method]
            item = self._file(field_name)
            if field_name == "document":
                item["file_name"] = "document.bin"
            elif field_name in ("video", "animation"):
                item.update(width=640, height=480, duration=1)
            elif field_name in ("audio", "voice"):
                item["duration"] = 1
            elif field_name == "sticker":
                item.update(type="regular", width=512, height=512, is_animated=False, is_video=False)
            extra = {field_name: item}
            if params.get("caption"):
                extra["caption"] = str(params["caption"])
            message = self._message(chat_id, params, **extra)
            return message, message["message_id"]
        if method == "sendMediaGroup":
            media = params.get("media")
            items = media if isinstance(media, list) else []
            group = f"mg{next(self._file_ids)}"
            messages = []
            for item in items or [{"type": "document"}]:
                kind = item.get("type", "document") if isinstance(item, dict) else "document"
                if kind == "photo":
                    extra = {"photo": [{**self._file("photo"), "width": 800, "height": 800}]}
                else:
                    extra = {"document": {**self._file("document"), "file_name": "document.bin"}}
                if isinstance(item, dict) and item.get("caption"):
                    extra["caption"] = str(item["caption"])
                messages.append(self._message(chat_id, {}, media_group_id=group, **extra))
            return messages, messages[0]["message_id"] if messages else None
        if method in ("copyMessage", "forwardMessage"):
            if method == "copyMessage":
                message_id = next(self._message_ids)
                return {"message_id": message_id}, message_id
            message = self._message(chat_id, params, text="(forwarded)")
            return message, message["message_id"]
        if method in EDIT_METHODS:
            if params.get("inline_message_id"):
                return True, None
            message_id = int(params.get("message_id") or 0)
            chat = chat_id if isinstance(chat_id, int) else 0
            shown = _edited(self.messages.get(chat, {}).get(message_id), method, params)
            message: dict[str, Any] = {
                "message_id": message_id,
                "date": int(time.time()),
                "edit_date": int(time.time()),
                "chat": _chat(chat),
                "from": self.bot_user,
                "text": shown["text"] or "…",
            }
            if shown["reply_markup"] and "inline_keyboard" in shown["reply_markup"]:
                message["reply_markup"] = shown["reply_markup"]
            return message, message_id
        raise LookupError(method)

    # -- reading ------------------------------------------------------------------------------
    def chat_calls(self, chat_id: int | str) -> list[Call]:
        return self.by_chat.get(chat_id, [])

    def sends(self, calls: Iterable[Call] | None = None) -> list[Call]:
        """Message-creating calls as they arrived (accepted or not)."""
        return [c for c in (self.calls if calls is None else calls) if c.creates_message]

    def responses_429(self, calls: Iterable[Call] | None = None) -> int:
        return sum(1 for c in (self.calls if calls is None else calls) if c.limited)

    def shown(self, chat_id: int | str) -> dict[int, dict[str, Any]]:
        """Messages of this chat as the person sees them now: message id → text, reply_markup.
        A copy: the server may be adding to it from its own thread."""
        return dict(self.messages.get(chat_id, {}))

    def keyboard(self, chat_id: int, data: str) -> int | None:
        """The newest message in this chat that shows a button with this callback data now."""
        shown = self.shown(chat_id)
        for message_id in sorted(shown, reverse=True):
            if any(d == data for _t, d in inline_buttons(shown[message_id]["reply_markup"])):
                return message_id
        return None

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Wait until predicate() is truthy (checked after every recorded call); returns its
        value, or raises TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("the stand-in did not see the expected call in time")
            tick = self._tick
            try:
                await asyncio.wait_for(tick.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass


# -- checks over recorded calls ----------------------------------------------------------------
def max_in_any_second(calls: Iterable[Call], window: float = 1.0) -> int:
    """The most message-creating calls (accepted or not) that arrived in any half-open window
    of `window` seconds."""
    times = sorted(c.at for c in calls if c.creates_message)
    worst = j = 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + window:
            j += 1
        worst = max(worst, j - i)
    return worst


def per_chat_gaps(calls: Iterable[Call]) -> list[float]:
    """Gaps between consecutive message-creating calls to the same chat (accepted or not)."""
    by_chat: dict[int | str, list[float]] = defaultdict(list)
    for c in calls:
        if c.creates_message and c.chat_id is not None:
            by_chat[c.chat_id].append(c.at)
    gaps: list[float] = []
    for times in by_chat.values():
        times.sort()
        gaps.extend(b - a for a, b in itertools.pairwise(times))
    return gaps


def per_chat_violations(calls: Iterable[Call], interval: float = 1.0, tolerance: float = 0.005) -> int:
    return sum(1 for gap in per_chat_gaps(calls) if gap < interval - tolerance)


# -- as a process of its own ------------------------------------------------------------------------
async def _serve_process(args: argparse.Namespace) -> None:
    standin = TelegramStandIn(
        token=args.token,
        rate=args.rate,
        per_chat_interval=args.per_chat_interval,
        tolerance=args.tolerance,
        enforce=not args.no_limits,
        bot_id=args.bot_id,
    )

    def report(call: Call) -> None:
        sys.stdout.write(json.dumps({"call": dataclasses.asdict(call)}, default=str) + "\n")
        sys.stdout.flush()

    standin.on_record = report
    url = await standin.start(args.host, args.port)
    print(json.dumps({"listening": url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        if standin.loop_lag_max:
            print(json.dumps({"lag": standin.loop_lag_max}), flush=True)
            standin.loop_lag_max = 0.0
    await standin.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Bot API stand-in; prints each call as a JSON line")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    parser.add_argument("--bot-id", type=int, default=None)
    parser.add_argument("--rate", type=int, default=30)
    parser.add_argument("--per-chat-interval", type=float, default=1.0)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--no-limits", action="store_true")
    asyncio.run(_serve_process(parser.parse_args()))


if __name__ == "__main__":
    main()
