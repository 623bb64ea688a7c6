"""Telegram without the network: a recording `BaseSession` and a `BotClient` that drives the
real Dispatcher as a person would. Used by the offline console and by every test.

The session answers each API call with a plausible result built from the call itself, unless a
response was queued for it (FIFO), which lets aiogram raise its real errors (403, 429, 400).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendDocument,
    SendMessage,
    SendPhoto,
    SendVideoNote,
    SendVoice,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    CallbackQuery,
    Chat,
    Contact,
    Document,
    InlineKeyboardMarkup,
    Location,
    Message,
    PhotoSize,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Sticker,
    Update,
    User,
    VideoNote,
    Voice,
)

from infra.telegram_session import KeepResponseTypesMixin

_MESSAGE_METHODS = (SendMessage, SendPhoto, SendDocument, SendVoice, SendVideoNote)
_EDIT_METHODS = (EditMessageText, EditMessageReplyMarkup, EditMessageCaption)


@dataclass
class QueuedResponse:
    ok: bool
    result: Any = None
    error_code: int = 200
    description: str | None = None
    retry_after: int | None = None
    method: type | None = None
    chat_id: int | None = None
    raw: str | None = None  # the body exactly as queued (HTML error pages, cut JSON)

    def matches(self, method: TelegramMethod[Any]) -> bool:
        if self.method is not None and not isinstance(method, self.method):
            return False
        return self.chat_id is None or getattr(method, "chat_id", None) == self.chat_id

    def body(self) -> str:
        if self.raw is not None:
            return self.raw
        payload: dict[str, Any] = {"ok": self.ok}
        if self.ok:
            payload["result"] = self.result
        else:
            payload["error_code"] = self.error_code
            payload["description"] = self.description or "error"
            if self.retry_after is not None:
                payload["parameters"] = {"retry_after": self.retry_after}
        return json.dumps(payload)


@dataclass
class SentCall:
    method: TelegramMethod[Any]
    at: float  # time.monotonic() when the call reached the session
    ok: bool
    message_id: int | None = None


class RecordingSession(KeepResponseTypesMixin, BaseSession):
    """Records every call; answers from the queue or with a result shaped like Telegram's."""

    def __init__(self, bot_user_id: int = 42, latency: float = 0.0) -> None:
        super().__init__()
        self.calls: list[SentCall] = []
        self.queued: list[QueuedResponse] = []
        self.bot_user_id = bot_user_id
        self.latency = latency  # simulated network time, for benchmarks
        self._message_ids = itertools.count(1_000)
        self._answered_queries: set[str] = set()

    # -- queueing -------------------------------------------------------------------------
    def queue_error(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        method: type | None = None,
        chat_id: int | None = None,
    ) -> None:
        self.queued.append(
            QueuedResponse(False, None, error_code, description, retry_after, method=method, chat_id=chat_id)
        )

    def queue_result(self, result: Any, *, method: type | None = None, chat_id: int | None = None) -> None:
        self.queued.append(QueuedResponse(True, result, method=method, chat_id=chat_id))

    def queue_raw(
        self, status: int, body: str, *, method: type | None = None, chat_id: int | None = None
    ) -> None:
        """Answer the next matching call with this HTTP status and body, as is (a proxy's HTML
        error page, a body cut short): what aiogram makes of it is what the caller sees."""
        self.queued.append(
            QueuedResponse(status < 400, None, status, method=method, chat_id=chat_id, raw=body)
        )

    # -- BaseSession ----------------------------------------------------------------------
    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        if self.latency:
            await asyncio.sleep(self.latency)
        call = SentCall(method=method, at=time.monotonic(), ok=True)
        self.calls.append(call)
        queued = next((q for q in self.queued if q.matches(method)), None)
        if isinstance(method, AnswerCallbackQuery) and queued is None:
            # As Telegram: a button press can be answered once; a second answer is refused.
            if method.callback_query_id in self._answered_queries:
                queued = QueuedResponse(
                    False,
                    None,
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID is invalid",
                )
            self._answered_queries.add(method.callback_query_id)
        if queued is not None:
            if queued in self.queued:
                self.queued.remove(queued)
            status = queued.error_code if not queued.ok or queued.raw is not None else 200
            content = queued.body()
        else:
            result = self._auto_result(method)
            status, content = 200, json.dumps({"ok": True, "result": result})
        try:
            response = self.check_response(bot=bot, method=method, status_code=status, content=content)
        except Exception:
            call.ok = False
            raise
        if isinstance(response.result, Message):
            call.message_id = response.result.message_id
        # check_response raised unless the call succeeded, so there is a result (aiogram casts it too).
        return cast(TelegramType, response.result)

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    def _auto_result(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, GetMe):
            return {
                "id": self.bot_user_id,
                "is_bot": True,
                "first_name": "Hromada",
                "username": "hromada_bot",
            }
        if isinstance(method, (*_MESSAGE_METHODS, EditMessageText, EditMessageCaption)):
            chat_id = getattr(method, "chat_id", None) or 0
            message: dict[str, Any] = {
                "message_id": getattr(method, "message_id", None) or next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id if isinstance(chat_id, int) else 0, "type": "private"},
            }
            text = getattr(method, "text", None) or getattr(method, "caption", None)
            if text is not None:
                message["text"] = text
            return message
        return True

    # -- reading --------------------------------------------------------------------------
    def sent_to(self, chat_id: int) -> list[SentCall]:
        return [c for c in self.calls if getattr(c.method, "chat_id", None) == chat_id]


@dataclass
class Reply:
    """What a person sees from one bot call: a message, an edit, or a callback answer."""

    kind: str  # message | edit | alert | toast
    text: str
    chat_id: int | None
    message_id: int | None
    inline: list[list[tuple[str, str]]] = field(default_factory=list)  # rows of (text, data)
    keyboard: list[list[str]] | None = None  # reply keyboard rows; [] means "removed"
    method: TelegramMethod[Any] | None = None

    def buttons(self) -> list[str]:
        return [text for row in self.inline for text, _ in row]

    def __str__(self) -> str:
        return self.text


def _inline_rows(markup: Any) -> list[list[tuple[str, str]]]:
    if not isinstance(markup, InlineKeyboardMarkup):
        return []
    return [[(b.text, b.callback_data or b.url or "") for b in row] for row in markup.inline_keyboard]


def _reply_rows(markup: Any) -> list[list[str]] | None:
    if isinstance(markup, ReplyKeyboardMarkup):
        return [[b.text for b in row] for row in markup.keyboard]
    if isinstance(markup, ReplyKeyboardRemove):
        return []
    return None


_update_ids = itertools.count(1)
_file_ids = itertools.count(1)


class BotClient:
    """One Telegram user talking to the bot. Several clients may share a dispatcher and session."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        session: RecordingSession,
        *,
        user_id: int,
        first_name: str = "Test",
        language_code: str | None = "uk",
    ) -> None:
        self.dp = dispatcher
        self.bot = bot
        self.session = session
        self.user = User(id=user_id, is_bot=False, first_name=first_name, language_code=language_code)
        self.chat = Chat(id=user_id, type="private", first_name=first_name)
        self._cursor = 0  # index into session.calls already read by this client
        self.messages: dict[int, Reply] = {}  # message_id -> last known state of a bot message
        self.keyboard: list[list[str]] | None = None
        self._callback_ids: set[str] = set()
        self._message_ids = itertools.count(1)

    # -- sending ---------------------------------------------------------------------------
    def _message(self, *, reply_to: int | None = None, **fields: Any) -> Message:
        """A message from this user; `reply_to` makes it a Telegram reply to that bot message."""
        if reply_to is not None:
            fields["reply_to_message"] = self._bot_message(reply_to)
        return Message(
            message_id=next(self._message_ids),
            date=datetime.now(UTC),
            chat=self.chat,
            from_user=self.user,
            **fields,
        )

    def _bot_message(self, message_id: int) -> Message:
        known = self.messages.get(message_id)
        return Message(
            message_id=message_id,
            date=datetime.now(UTC),
            chat=self.chat,
            from_user=User(id=self.session.bot_user_id, is_bot=True, first_name="Hromada"),
            text=known.text if known else "",
        )

    async def _feed(self, update: Update) -> list[Reply]:
        await self.dp.feed_update(self.bot, update)
        return self.read()

    async def send_message(self, message: Message) -> list[Reply]:
        return await self._feed(Update(update_id=next(_update_ids), message=message))

    async def send(self, text: str, *, reply_to: int | None = None) -> list[Reply]:
        """Type `text`; with `reply_to`, as a Telegram reply (swipe to reply) to that bot message."""
        return await self.send_message(self._message(text=text, reply_to=reply_to))

    async def press(self, button_text: str) -> list[Reply]:
        """Press a button of the current reply keyboard (it sends its text)."""
        rows = self.keyboard or []
        match = _find(button_text, (t for row in rows for t in row))
        if match is None:
            raise AssertionError(f"no reply button {button_text!r} in {rows!r}")
        return await self.send(match)

    async def click(self, button_text: str, *, message_id: int | None = None) -> list[Reply]:
        """Press an inline button: on the given message, else the newest that has it."""
        candidates = [self.messages[message_id]] if message_id else list(reversed(self.messages.values()))
        for reply in candidates:
            data = _find_data(button_text, reply.inline)
            if data is not None:
                return await self.click_data(data, message_id=reply.message_id)
        raise AssertionError(
            f"no inline button {button_text!r}; have {[r.buttons() for r in candidates[:3]]}"
        )

    async def click_data(self, data: str, *, message_id: int | None = None) -> list[Reply]:
        """Send raw callback data — also how tests forge a button."""
        reply = self.messages.get(message_id or 0)
        message = Message(
            message_id=message_id or 1,
            date=datetime.now(UTC),
            chat=self.chat,
            from_user=User(id=self.session.bot_user_id, is_bot=True, first_name="Hromada"),
            text=reply.text if reply else "",
        )
        callback_id = f"cb{next(_update_ids)}"
        self._callback_ids.add(callback_id)
        query = CallbackQuery(
            id=callback_id, from_user=self.user, chat_instance="ci", message=message, data=data
        )
        return await self._feed(Update(update_id=next(_update_ids), callback_query=query))

    async def share_contact(self, phone: str = "+380501234567", *, own: bool = True) -> list[Reply]:
        contact = Contact(
            phone_number=phone,
            first_name=self.user.first_name,
            user_id=self.user.id if own else self.user.id + 1_000_000,
        )
        return await self.send_message(self._message(contact=contact))

    async def send_photo(self, caption: str | None = None, *, reply_to: int | None = None) -> list[Reply]:
        n = next(_file_ids)
        photo = [PhotoSize(file_id=f"photo-{n}", file_unique_id=f"uph-{n}", width=800, height=600)]
        return await self.send_message(self._message(photo=photo, caption=caption, reply_to=reply_to))

    async def send_document(
        self,
        file_name: str = "scan.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        *,
        reply_to: int | None = None,
    ) -> list[Reply]:
        n = next(_file_ids)
        document = Document(
            file_id=f"doc-{n}", file_unique_id=f"udoc-{n}", file_name=file_name, mime_type=mime_type
        )
        return await self.send_message(self._message(document=document, caption=caption, reply_to=reply_to))

    async def send_sticker(self) -> list[Reply]:
        n = next(_file_ids)
        sticker = Sticker(
            file_id=f"st-{n}",
            file_unique_id=f"ust-{n}",
            type="regular",
            width=512,
            height=512,
            is_animated=False,
            is_video=False,
        )
        return await self.send_message(self._message(sticker=sticker))

    async def send_voice(self, *, reply_to: int | None = None) -> list[Reply]:
        n = next(_file_ids)
        voice = Voice(file_id=f"v-{n}", file_unique_id=f"uv-{n}", duration=3, mime_type="audio/ogg")
        return await self.send_message(self._message(voice=voice, reply_to=reply_to))

    async def send_video_note(self, *, reply_to: int | None = None) -> list[Reply]:
        n = next(_file_ids)
        note = VideoNote(file_id=f"vn-{n}", file_unique_id=f"uvn-{n}", length=240, duration=5)
        return await self.send_message(self._message(video_note=note, reply_to=reply_to))

    async def send_location(self, latitude: float = 47.1, longitude: float = 35.4) -> list[Reply]:
        return await self.send_message(
            self._message(location=Location(latitude=latitude, longitude=longitude))
        )

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> list[Reply]:
        """Everything the bot sent this user since the last read (including pushes)."""
        replies: list[Reply] = []
        calls = self.session.calls
        for call in calls[self._cursor :]:
            reply = self._as_reply(call)
            if reply is not None:
                replies.append(reply)
        self._cursor = len(calls)
        return replies

    def unread_count(self) -> int:
        """Bot messages to this chat not yet read."""
        return sum(
            1
            for call in self.session.calls[self._cursor :]
            if call.ok and getattr(call.method, "chat_id", None) == self.chat.id
        )

    def _as_reply(self, call: SentCall) -> Reply | None:
        method = call.method
        if isinstance(method, AnswerCallbackQuery):
            if method.callback_query_id not in self._callback_ids or not method.text:
                return None
            return Reply(
                "alert" if method.show_alert else "toast", method.text, self.chat.id, None, method=method
            )
        if getattr(method, "chat_id", None) != self.chat.id or not call.ok:
            return None
        if isinstance(method, _MESSAGE_METHODS):
            text = getattr(method, "text", None) or getattr(method, "caption", None) or ""
            reply = Reply(
                "message",
                text,
                self.chat.id,
                call.message_id,
                inline=_inline_rows(method.reply_markup),
                keyboard=_reply_rows(method.reply_markup),
                method=method,
            )
            if reply.keyboard is not None:
                self.keyboard = reply.keyboard
            if call.message_id is not None:
                self.messages[call.message_id] = reply
            return reply
        if isinstance(method, _EDIT_METHODS):
            previous = self.messages.get(method.message_id or 0)
            text = getattr(method, "text", None) or getattr(method, "caption", None)
            reply = Reply(
                "edit",
                text if text is not None else (previous.text if previous else ""),
                self.chat.id,
                method.message_id,
                inline=_inline_rows(method.reply_markup),
                method=method,
            )
            if method.message_id is not None:
                self.messages[method.message_id] = reply
            return reply
        return None


def _find(wanted: str, texts: Iterable[str]) -> str | None:
    texts = list(texts)
    for text in texts:
        if text == wanted:
            return text
    for text in texts:
        if wanted.casefold() in text.casefold():
            return text
    return None


def _find_data(wanted: str, rows: list[list[tuple[str, str]]]) -> str | None:
    flat = [(t, d) for row in rows for t, d in row]
    text = _find(wanted, (t for t, _ in flat))
    if text is None:
        return None
    return next(d for t, d in flat if t == text)
