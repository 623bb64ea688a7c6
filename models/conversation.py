"""What a resident says outside any form, and which bot message belongs to which case.

`InboundMessage` keeps each such message (its text or file id, never the bytes) from the moment
it arrives: routed to a case at once, kept until the resident picks a case, or kept as the
description of a request the resident is offered to file. So nothing the person sent depends on
a process staying alive between two taps.

`CaseChatLink` remembers bot messages that handlers sent directly about a case (outbox rows keep
their own Telegram message id), so a Telegram reply to one of them goes to that case."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigIntPK, UtcDateTime, utcnow

# InboundMessage.state
PENDING_CHOICE = "pending"  # waits for the resident to pick one of their open cases
RELAYED = "relayed"  # went to `case_id`
OFFERED = "offered"  # no open case: kept for a new request the resident was offered
USED = "used"  # taken into a new request's draft
DECLINED = "declined"  # the resident said no to a new request (kept, not used)

# InboundMessage.kind
TEXT = "text"
PHOTO = "photo"
DOCUMENT = "document"
VOICE = "voice"
VIDEO_NOTE = "video_note"
KINDS = (TEXT, PHOTO, DOCUMENT, VOICE, VIDEO_NOTE)
FILE_KINDS = (PHOTO, DOCUMENT, VOICE, VIDEO_NOTE)


class InboundMessage(Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_messages_user_state", "user_id", "state"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)  # the text, or a file's caption
    file_id: Mapped[str | None] = mapped_column(String(255))
    file_unique_id: Mapped[str | None] = mapped_column(String(64))
    file_name: Mapped[str | None] = mapped_column(String(255))
    mime_type: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    routed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CaseChatLink(Base):
    __tablename__ = "case_chat_links"
    __table_args__ = (Index("ix_case_chat_links_chat_message", "chat_id", "message_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
