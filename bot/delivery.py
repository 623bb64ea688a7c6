"""Delivery of outbox rows through the bot: durable, rate-limited, never doubled.

`OutboxDeliverer(bot, sessionmaker, i18n, clock, settings).deliver_due() -> int` sends every
row that is due now and returns how many were sent. The database is the source of truth; the
deliverer keeps in memory only the rate limiter's slot book and the "sent" marks of messages
Telegram accepted whose mark is not committed yet (see "Sent marks" below).

Life of a row (models/outbox.py):

    pending ──claim (lease: claimed_by, claimed_until)──▶ pending+claimed
        │ reason gone (visit cancelled, documents received, case closed, ...) ─▶ cancelled
        │ quiet hours, not urgent ─▶ pending, due_at = end of quiet hours, claim released
        │ chat would wait > max_chat_wait ─▶ pending, due_at = when the chat is free, released
        ▼ slot booked in the rate limiter's bulk lane (just in time, behind handlers' replies),
        │ waited for; none within max_chat_wait (a long 429 pause, replies using the whole
        │ budget) ─▶ pending, due_at = when to try again, released, no attempt used
    sending (committed, claimed_until = now + send lease)
        ▼ the API call
    sent | failed (403 → the User is marked unreachable; 400 → failed) |
    pending again with backoff (429: after retry_after, and every sender of the process pauses
    that long; 5xx, network errors and answers that are not Bot API answers — HTML error pages,
    cut JSON, see infra/telegram_session.py: 5 s·2^attempt, ≤ 10 min),
    failed after `max_attempts` tries (last_error: error class and code, never personal data).

Claiming: PostgreSQL `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` in batches, so
any number of instances share the work and each row is claimed by one of them; SQLite has one
writer at a time, so the same statement without SKIP LOCKED is the single-writer path (and the
deliverer sends one row at a time there).

Guarantee (for the README): **at most once per row; exactly once unless an instance dies in the
middle of sending.** A row is marked `sending` and committed immediately before its API call;
its `sent` mark is committed together with the next row's `sending` mark (or at the end of the
batch), so there is one commit per message.

Sent marks survive a database blip: a mark stays in the deliverer's memory until the commit
that carries it succeeded — a failed commit (the database went away between the API call and
the mark) leaves it there, and it rides along with the next commit. Each run writes the marks
still pending first, before it expires stale `sending` rows or claims new work, and a run that
cannot reach the database fails and is tried again at the next poll: so the mark lands as soon as
the database is back, the row is never resent (it stays `sending` meanwhile, which nothing
claims) and never reported "outcome unknown". If the outage outlasted the send lease and another
instance already marked the row failed/outcome unknown, the mark corrects it to `sent`. Only
the death of the process loses those marks (then: outcome unknown, as below).

Rows an instance had claimed but not started when it died stay `pending` and are taken by
another instance once the claim lease (`claimed_until`) expires — neither lost nor doubled. A
row still `sending` after its send lease expired has an unknown outcome (the instance died
during the call, or after it but before the mark was committed); it is never resent but marked
`failed` with last_error "outcome unknown". So a crash never sends anything twice and can lose
at most the message in flight at that instant — one per concurrent sender (`concurrency`; one on
SQLite) — visible as failed/outcome unknown.
Deliberate exception: a transient error (timeout, 5xx) after Telegram really delivered is retried
and can, in that rare case, repeat the message; a lost message would be worse than a repeat there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from sqlalchemy import Table, and_, bindparam, case, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.kit.notices import NoticeRenderer, notice_media, render_notice
from handlers.kit.render import capped
from infra import ratelimit
from infra.ratelimit import BULK, BaseRateLimiter, Busy, RateLimiter, send_lane, slot_taken
from infra.settings import Settings
from infra.telegram_session import MalformedAnswer
from models import OutboxMessage, User
from models.outbox import CANCELLED, FAILED, PENDING, SENDING, SENT
from services.clock import Clock
from services.conversation import record_extra_messages
from services.privacy import drop_reason
from services.reminders import ReminderRules

log = logging.getLogger(__name__)

CAPTION_MAX = 1024  # Telegram's limit for a file's caption
BACKOFF_BASE = 5.0
BACKOFF_MAX = 600.0
RETRY_AFTER_MAX = 3600.0
UNREACHABLE = "recipient unreachable (blocked the bot or deactivated)"
OUTCOME_UNKNOWN = "outcome unknown: the sending instance stopped during the API call"


@dataclass
class _Job:
    id: int
    chat_id: int
    user_id: int | None
    text: str
    markup: InlineKeyboardMarkup | None
    order: float  # when it could go at the earliest (seconds from now): sending order
    media: tuple[str, str] | None = None  # (type, file id): sent as that file, `text` its caption
    case_id: int | None = None


def default_instance_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxDeliverer:
    def __init__(
        self,
        bot: Bot,
        sessionmaker: async_sessionmaker[AsyncSession],
        i18n: I18n,
        clock: Clock,
        settings: Settings,
        *,
        limiter: BaseRateLimiter | None = None,
        instance_id: str | None = None,
        batch_size: int = 100,
        concurrency: int | None = None,
        send_lease_seconds: float = 120.0,
        claim_lease_seconds: float | None = None,
        max_chat_wait: float = 10.0,
        rules: ReminderRules | None = None,
        renderer: NoticeRenderer = render_notice,
    ) -> None:
        self.bot = bot
        self.sessionmaker = sessionmaker
        self.i18n = i18n
        self.clock = clock
        self.settings = settings
        delivery = settings.delivery
        on_bot = ratelimit.installed(bot)
        # One budget for everything the bot sends: the limiter on the bot wins if there is one.
        self.limiter: BaseRateLimiter = (
            on_bot or limiter or RateLimiter(delivery.global_rate, delivery.per_chat_interval)
        )
        self._on_bot = on_bot is not None
        self.instance_id = instance_id or default_instance_id()
        self.batch_size = batch_size
        self.is_sqlite = sessionmaker.kw["bind"].dialect.name == "sqlite"
        # Enough concurrent calls to fill the rate at ~0.5 s latency; SQLite: one writer.
        self.concurrency = 1 if self.is_sqlite else (concurrency or max(4, int(delivery.global_rate)))
        self.send_lease = timedelta(seconds=send_lease_seconds)
        # A batch takes at least batch_size / rate seconds to send; the claim must outlive that.
        self.claim_lease = timedelta(
            seconds=claim_lease_seconds or 60 + batch_size / delivery.global_rate * 2
        )
        self.max_chat_wait = max_chat_wait
        self.max_attempts = delivery.max_attempts
        self.rules = rules or ReminderRules.from_settings(settings)
        self.renderer = renderer
        # Sent, mark not yet committed: row id -> (sent at, user id); `_flushing`: the ids some
        # transaction is carrying right now (others leave them to it unless it fails).
        # The Telegram message id(s) each row became are kept with it (replies find their case).
        self._sent: dict[int, tuple[datetime, int | None, list[int]]] = {}
        self._flushing: set[int] = set()

    # -- public ---------------------------------------------------------------------------------
    async def deliver_due(self, limit: int | None = None) -> int:
        """Send what is due now (every due row, or at most `limit` claims); returns rows sent."""
        # Marks left from a run the database interrupted go first: until they are written,
        # those rows must not be expired as "outcome unknown" (nor anything new be claimed).
        await self.flush()
        await self.expire_stale_sending()
        sent = 0
        claimed_total = 0
        while limit is None or claimed_total < limit:
            size = self.batch_size if limit is None else min(self.batch_size, limit - claimed_total)
            ids = await self._claim(size)
            if not ids:
                break
            claimed_total += len(ids)
            try:
                sent += await self._process(ids)
            finally:
                await self.flush()
        return sent

    async def expire_stale_sending(self) -> int:
        """Rows left `sending` by an instance that died mid-call: failed, never resent."""
        now = self.clock.now()
        async with self.sessionmaker.begin() as session:
            result = cast(
                CursorResult[Any],
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.state == SENDING, OutboxMessage.claimed_until < now)
                    .values(state=FAILED, last_error=OUTCOME_UNKNOWN, claimed_by=None, claimed_until=None)
                ),
            )
        if result.rowcount:
            log.warning("outbox: %d row(s) with unknown outcome marked failed", result.rowcount)
        return result.rowcount or 0

    # -- claiming -------------------------------------------------------------------------------
    async def _claim(self, size: int) -> list[int]:
        now = self.clock.now()
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.state == PENDING,
                OutboxMessage.due_at <= now,
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
            )
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(size)
        )
        if not self.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(claimed_by=self.instance_id, claimed_until=now + self.claim_lease)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        async with self.sessionmaker.begin() as session:
            return list((await session.scalars(stmt)).all())

    # -- one batch ------------------------------------------------------------------------------
    async def _process(self, ids: list[int]) -> int:
        jobs = await self._prepare(ids)
        if not jobs:
            return 0
        jobs.sort(key=lambda job: job.order)  # one chat's later messages let others go first
        if self.concurrency == 1:
            return sum([await self._send(job) for job in jobs])
        semaphore = asyncio.Semaphore(self.concurrency)

        async def run(job: _Job) -> bool:
            async with semaphore:
                return await self._send(job)

        results = await asyncio.gather(*(run(job) for job in jobs))
        return sum(results)

    async def _prepare(self, ids: list[int]) -> list[_Job]:
        """Checks before sending: reason, quiet hours, per-chat backlog; renders. Slots are
        booked later, one by one just before each send (the bulk lane books just in time)."""
        now = self.clock.now()
        jobs: list[_Job] = []
        in_batch: dict[int, int] = {}  # chat → messages of this batch before this one
        async with self.sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage, User.language)
                    .outerjoin(User, User.id == OutboxMessage.user_id)
                    .where(
                        OutboxMessage.id.in_(ids),
                        OutboxMessage.claimed_by == self.instance_id,
                        OutboxMessage.state == PENDING,
                    )
                    .order_by(OutboxMessage.due_at, OutboxMessage.id)
                )
            ).all()
            for message, language in rows:
                dropped = await drop_reason(session, message)
                if dropped is not None:
                    # Its reason or the recipient's right to it is gone: never sent, and why is kept.
                    self._release(message, state=CANCELLED, error=f"dropped: {dropped}")
                    log.info("outbox %s (%s) dropped: %s", message.id, message.kind, dropped)
                    continue
                if not message.urgent and self.rules.in_quiet_hours(now):
                    self._release(message, due_at=self.rules.quiet_over(now))
                    continue
                earlier = in_batch.get(message.chat_id, 0)
                wait = self.limiter.chat_wait(message.chat_id) + earlier * self.limiter.per_chat_interval
                if wait > self.max_chat_wait:
                    # This chat has a backlog: let other chats go first, come back for it.
                    self._release(message, due_at=now + timedelta(seconds=wait))
                    continue
                try:
                    text, markup = self.renderer(
                        message.kind, message.payload or {}, language or self.i18n.default_locale, self.i18n
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    self._release(message, state=FAILED, error=f"render: {type(exc).__name__}")
                    log.error(
                        "outbox %s (%s): cannot render: %s", message.id, message.kind, type(exc).__name__
                    )
                    continue
                media = notice_media(message.payload or {})
                if media is not None:
                    text = capped(text, self.i18n.gettext("common.cut", locale=language or "uk"), CAPTION_MAX)
                in_batch[message.chat_id] = earlier + 1
                jobs.append(
                    _Job(
                        message.id,
                        message.chat_id,
                        message.user_id,
                        text,
                        markup,
                        wait,
                        media,
                        message.case_id,
                    )
                )
        return jobs

    @staticmethod
    def _release(
        message: OutboxMessage,
        *,
        state: str = PENDING,
        due_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        message.state = state
        message.claimed_by = None
        message.claimed_until = None
        if due_at is not None:
            message.due_at = due_at
        if error is not None:
            message.last_error = error

    # -- one message ----------------------------------------------------------------------------
    async def _send(self, job: _Job) -> bool:
        # The slot is booked and waited for before the row is marked `sending` (its send lease
        # must not run out while it waits). Bulk lane: handlers' replies go first; a long wait
        # (a long 429 pause, replies using the whole budget) hands the row back instead of
        # holding the claim. A pause that begins after the booking is waited out by `settle`.
        try:
            await self.limiter.acquire(job.chat_id, lane=BULK, give_up_after=self.max_chat_wait, settle=False)
        except Busy as busy:
            await self._postpone(job, max(busy.retry_in, 1.0))
            return False
        now = self.clock.now()
        async with self._carrying_marks() as session:
            # The previous messages' "sent" marks ride along in this commit (one commit per
            # message instead of two); until then they are `sending` — never resent.
            started = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == job.id,
                    OutboxMessage.claimed_by == self.instance_id,
                    OutboxMessage.state == PENDING,
                )
                .values(
                    state=SENDING,
                    attempts=OutboxMessage.attempts + 1,
                    claimed_until=now + self.send_lease,
                )
                .returning(OutboxMessage.attempts)
            )
            attempts = started.scalar_one_or_none()
        if attempts is None:  # our claim expired and someone else took it
            return False
        token = slot_taken.set(True)
        lane = send_lane.set(BULK)
        try:
            if not self._on_bot:  # otherwise the bot's RateLimitMiddleware settles, closest to the wire
                await self.limiter.settle(job.chat_id)
            message_ids = await self._call(job)
        except TelegramRetryAfter as exc:
            wait = min(float(exc.retry_after), RETRY_AFTER_MAX)
            self.limiter.pause(wait)
            await self._retry_or_fail(job, attempts, wait, "429 retry_after")
            return False
        except TelegramForbiddenError:
            await self._unreachable(job)
            return False
        except (TelegramBadRequest, TelegramNotFound, TelegramUnauthorizedError) as exc:
            await self._finish(job, FAILED, f"{type(exc).__name__}: {_short(exc)}")
            return False
        except MalformedAnswer as exc:
            # Not a Bot API answer (HTML error page, cut body): retried like a 5xx; the reason
            # names the HTTP status only, never the body.
            await self._retry_or_fail(job, attempts, self._backoff(attempts), exc.message)
            return False
        except (
            TelegramServerError,
            TelegramNetworkError,
            TelegramAPIError,
            ClientDecodeError,  # a session without MalformedAnswer's translation
            OSError,
            TimeoutError,
        ) as exc:
            await self._retry_or_fail(job, attempts, self._backoff(attempts), type(exc).__name__)
            return False
        finally:
            send_lane.reset(lane)
            slot_taken.reset(token)
        self._sent[job.id] = (self.clock.now(), job.user_id, message_ids)
        return True

    async def _call(self, job: _Job) -> list[int]:
        """The API call(s) of one row; the message ids it became (the first is the row's)."""
        bot, chat, text, markup = self.bot, job.chat_id, job.text, job.markup
        if job.media is None:
            return [(await bot.send_message(chat, text, reply_markup=markup)).message_id]
        kind, file_id = job.media
        if kind == "photo":
            sent = await bot.send_photo(chat, file_id, caption=text, reply_markup=markup)
        elif kind == "voice":
            sent = await bot.send_voice(chat, file_id, caption=text, reply_markup=markup)
        elif kind == "video_note":
            # A video note carries no caption: the text goes right after it, as a reply to it.
            sent = await bot.send_video_note(chat, file_id)
            note = await bot.send_message(
                chat, text, reply_markup=markup, reply_to_message_id=sent.message_id
            )
            return [sent.message_id, note.message_id]
        else:
            sent = await bot.send_document(chat, file_id, caption=text, reply_markup=markup)
        return [sent.message_id]

    @staticmethod
    def _backoff(attempts: int) -> float:
        return min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_MAX)

    @asynccontextmanager
    async def _carrying_marks(self) -> AsyncIterator[AsyncSession]:
        """A transaction that also writes the pending "sent" marks; they are forgotten only when
        it committed, and stay pending for the next one when it failed."""
        carried: list[int] = []
        try:
            async with self.sessionmaker.begin() as session:
                await self._write_marks(session, carried)
                yield session
        except BaseException:
            self._flushing.difference_update(carried)
            raise
        for oid in carried:
            self._flushing.discard(oid)
            self._sent.pop(oid, None)

    async def _write_marks(self, session: AsyncSession, carried: list[int]) -> None:
        ids = sorted(oid for oid in self._sent if oid not in self._flushing)
        if not ids:
            return
        # Noted before the first statement: if that one fails, they are handed back.
        carried.extend(ids)
        self._flushing.update(ids)
        rows = cast(Table, OutboxMessage.__table__)
        await session.execute(
            update(rows)
            .where(
                rows.c.id == bindparam("oid"),
                # Still ours, or expired as "outcome unknown" by someone while the database was
                # away: it was delivered, and `sent` is the truth.
                or_(
                    rows.c.state == SENDING,
                    and_(rows.c.state == FAILED, rows.c.last_error == OUTCOME_UNKNOWN),
                ),
            )
            .values(
                state=SENT,
                sent_at=bindparam("at"),
                claimed_by=None,
                claimed_until=None,
                last_error=case((rows.c.state == FAILED, None), else_=rows.c.last_error),
                message_id=bindparam("message_id"),
            ),
            [
                {"oid": oid, "at": self._sent[oid][0], "message_id": next(iter(self._sent[oid][2]), None)}
                for oid in ids
            ],
        )
        extra = [(oid, self._sent[oid][2][1:]) for oid in ids if len(self._sent[oid][2]) > 1]
        if extra:
            await record_extra_messages(session, extra)
        user_ids = sorted({uid for oid in ids if (uid := self._sent[oid][1]) is not None})
        if user_ids:
            await session.execute(
                update(User)
                .where(User.id.in_(user_ids), User.reachable.is_(False))
                .values(reachable=True, unreachable_since=None)
            )

    async def flush(self) -> None:
        """Write the pending "sent" marks now (raises when the database is away; they stay)."""
        if any(oid not in self._flushing for oid in self._sent):
            async with self._carrying_marks():
                pass

    @property
    def pending_marks(self) -> int:
        """Messages sent whose `sent` mark is not committed yet."""
        return len(self._sent)

    async def _finish(self, job: _Job, state: str, error: str | None) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {"state": state, "claimed_by": None, "claimed_until": None}
        if state == SENT:
            values["sent_at"] = now
        if error is not None:
            values["last_error"] = error
            log.warning("outbox %s failed: %s", job.id, error)
        async with self.sessionmaker.begin() as session:
            await session.execute(update(OutboxMessage).where(OutboxMessage.id == job.id).values(**values))
            if state == SENT and job.user_id is not None:
                await session.execute(
                    update(User)
                    .where(User.id == job.user_id, User.reachable.is_(False))
                    .values(reachable=True, unreachable_since=None)
                )

    async def _postpone(self, job: _Job, wait: float) -> None:
        """Back to pending, due when the wait is over; no attempt used (nothing was sent)."""
        due = self.clock.now() + timedelta(seconds=wait)
        async with self.sessionmaker.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == job.id,
                    OutboxMessage.claimed_by == self.instance_id,
                    OutboxMessage.state == PENDING,
                )
                .values(due_at=due, claimed_by=None, claimed_until=None)
            )

    async def _retry_or_fail(self, job: _Job, attempts: int, wait: float, error: str) -> None:
        if attempts >= self.max_attempts:
            await self._finish(job, FAILED, f"{error} (after {attempts} attempts)")
            return
        due = self.clock.now() + timedelta(seconds=wait)
        async with self.sessionmaker.begin() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == job.id)
                .values(state=PENDING, due_at=due, claimed_by=None, claimed_until=None, last_error=error)
            )
        log.info("outbox %s: retry in %.0f s (%s)", job.id, wait, error)

    async def _unreachable(self, job: _Job) -> None:
        await self._finish(job, FAILED, f"TelegramForbiddenError: {UNREACHABLE}")
        if job.user_id is None:
            return
        now = self.clock.now()
        async with self.sessionmaker.begin() as session:
            await session.execute(
                update(User)
                .where(User.id == job.user_id, User.reachable.is_(True))
                .values(reachable=False, unreachable_since=now)
            )


def _short(exc: TelegramAPIError) -> str:
    # Telegram's descriptions name the problem ("chat not found"), not the message content.
    return str(getattr(exc, "message", "") or "")[:200]
