"""A Telegram message as the conversation service sees it (services/conversation.py)."""

from __future__ import annotations

from aiogram.types import Message

from models.conversation import DOCUMENT, PHOTO, TEXT, VIDEO_NOTE, VOICE
from services.conversation import Incoming
from services.text import tidy


def replied_bot_message(message: Message) -> int | None:
    """The id of the bot's message this one is a Telegram reply to, if it is one."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or not replied.from_user.is_bot:
        return None
    return replied.message_id


def incoming_from(message: Message) -> Incoming | None:
    """Text, photo, document, voice or video note; None for anything else (a sticker, a
    location, a contact, a poll...), which gets a kind answer instead."""
    reply_to = replied_bot_message(message)
    if message.text is not None:
        # Only invisible characters: nothing to pass on (answered as not understood).
        return Incoming(TEXT, text=message.text, reply_to=reply_to) if tidy(message.text) else None
    caption = message.caption
    if message.photo:
        photo = message.photo[-1]
        return Incoming(PHOTO, caption, photo.file_id, photo.file_unique_id, reply_to=reply_to)
    if message.document is not None:
        doc = message.document
        return Incoming(
            DOCUMENT, caption, doc.file_id, doc.file_unique_id, doc.file_name, doc.mime_type, reply_to
        )
    if message.voice is not None:
        voice = message.voice
        return Incoming(VOICE, caption, voice.file_id, voice.file_unique_id, None, voice.mime_type, reply_to)
    if message.video_note is not None:
        note = message.video_note
        return Incoming(VIDEO_NOTE, None, note.file_id, note.file_unique_id, reply_to=reply_to)
    return None
