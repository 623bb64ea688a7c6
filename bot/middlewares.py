"""Outer middlewares on `dp.update`: one DB unit of work per update, then the user row; and the
inner middleware that answers each button press once."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.dispatcher.middlewares.user_context import EventContext
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from aiogram.types import CallbackQuery, TelegramObject
from aiogram.types import User as TgUser
from aiogram.utils.callback_answer import CallbackAnswer, CallbackAnswerMiddleware
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infra.ratelimit import release_before_wait
from infra.storage import SqlStorage, current_session, flush_pending, prime
from models import FsmRecord, User
from services.clock import Clock
from services.hub import Services
from services.outbox import OUTBOX_DIRTY
from services.reminders import ReminderRules
from services.users import UserService

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """One session per update: commit when the handler returns, roll back when it raises.

    The only owner of the unit of work: handlers get `services` (all over this session) and
    never commit or roll back themselves.

    No connection is held while a reply waits to be sent: the middleware publishes a checkpoint
    (`infra.ratelimit.release_before_wait`) that the rate limiter awaits before a reply would
    wait for its send slot longer than a few milliseconds, or out a 429 pause. The checkpoint
    writes the FSM's pending writes and commits, so the connection goes back to the pool (and,
    on SQLite, the write lock is released) while the reply waits; the rest of the update runs
    in a new transaction on the same session (objects stay loaded: expire_on_commit is off).
    The trade-off: such an update is committed in two parts. What it did before the wait is
    kept even if a later step fails (the later part is rolled back) — e.g. a case filed whose
    confirmation could not be sent; pressing again then shows it as already filed. Without a
    wait nothing changes: the update is all-or-nothing."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
        rules: ReminderRules | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock or Clock()
        self.rules = rules or ReminderRules()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self.sessionmaker() as session:
            data["session"] = session
            data["services"] = Services(session, self.clock, self.rules)

            async def checkpoint() -> None:
                if not session.in_transaction():
                    return  # holds no connection
                await flush_pending(session)
                await session.commit()
                self._kick(session, data)

            token = current_session.set(session)
            hook = release_before_wait.set(checkpoint)
            try:
                result = await handler(event, data)
            except Exception:
                await session.rollback()
                raise
            finally:
                release_before_wait.reset(hook)
                current_session.reset(token)
            await flush_pending(session)  # the FSM writes of this update, in its transaction
            await session.commit()
            self._kick(session, data)
            return result

    @staticmethod
    def _kick(session: AsyncSession, data: dict[str, Any]) -> None:
        # Notifications this update queued are committed now: have them sent at once
        # instead of at the next poll (`delivery` exists when the scheduler runs).
        # Run in an empty context: the delivery run it starts must not inherit this update's
        # session or checkpoint (a checkpoint kicks while they are set).
        delivery = data.get("delivery")
        if session.info.pop(OUTBOX_DIRTY, False) and delivery is not None:
            contextvars.Context().run(delivery.kick)


class UserLockMiddleware(BaseMiddleware):
    """One update at a time per person (chat + user), taken before the database session opens.

    Two taps of one person then never interleave: no lost toggle, no stale read turning into a
    write conflict (SQLite's "database is locked"). Other people's updates run in parallel.
    With Redis the lock is shared by all instances."""

    def __init__(self, isolation: BaseEventIsolation) -> None:
        self.isolation = isolation

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        context: EventContext | None = data.get("event_context")
        if context is None or context.user_id is None:
            return await handler(event, data)
        key = StorageKey(
            bot_id=data["bot"].id, chat_id=context.chat_id or context.user_id, user_id=context.user_id
        )
        async with self.isolation.lock(key):
            return await handler(event, data)


# The sender's user row and their FSM record in one round trip (most updates need both).
_USER_WITH_STATE = (
    select(User, FsmRecord.state, FsmRecord.data)
    .outerjoin(FsmRecord, FsmRecord.key == bindparam("fsm_key"))
    .where(User.telegram_id == bindparam("telegram_id"))
)


class UserMiddleware(BaseMiddleware):
    """Finds or creates our `User` row for the sender and hands it in as `user` (and its
    language as a plain value, `user_language`, readable even after a rollback).

    With our SQL FSM storage, the sender's FSM record is read in the same statement and primed
    into the storage's per-update cache, so the FSM middleware after this one costs no query."""

    def __init__(self, fsm: FSMContextMiddleware | None = None) -> None:
        self.fsm: FSMContextMiddleware | None = None
        self.storage: SqlStorage | None = None
        if fsm is not None and isinstance(fsm.storage, SqlStorage):
            self.fsm, self.storage = fsm, fsm.storage

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        session: AsyncSession = data["session"]
        if tg_user is not None and not tg_user.is_bot:
            users = UserService(session)
            user = await self._read(session, tg_user.id, data) or await users.get_or_create(tg_user.id)
            if not user.reachable:
                await users.mark_reachable(user)  # they wrote to us, so they unblocked the bot
            data["user"] = user
            data["user_language"] = user.language
        return await handler(event, data)

    async def _read(self, session: AsyncSession, telegram_id: int, data: dict[str, Any]) -> User | None:
        if self.fsm is None or self.storage is None:
            return None
        context = self.fsm.resolve_event_context(data["bot"], data)
        if context is None:
            return None
        fsm_key = self.storage.key(context.key)
        params = {"fsm_key": fsm_key, "telegram_id": telegram_id}
        row = (await session.execute(_USER_WITH_STATE, params)).first()
        if row is None:
            return None  # a new person: created by get_or_create, their (empty) state read lazily
        prime(session, fsm_key, row.state, row.data)
        return row[0]


class AnswerPressOnce(CallbackAnswerMiddleware):
    """Answers a button press after its handler returned, with what the handler set on
    `callback_answer` (nothing: an empty answer that stops the spinner).

    aiogram's own middleware answers in a `finally`, also when the handler raised: the error
    router then could not show its alert (Telegram refuses a second answer to one press), and a
    handler that passed the press on (SkipHandler) would have it answered twice. Here a raising
    handler leaves the answer to the error router, and a skipping one to the next handler.

    The spinner never waits for the send budget: when the handler's reply would wait for a send
    slot (another message to the same chat within the second, a 429 pause), the press is answered
    first with what the handler set so far, then the reply waits."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, CallbackQuery):
            return await handler(event, data)
        answer = data["callback_answer"] = self.construct_callback_answer(
            properties=get_flag(data, "callback_answer")
        )
        release = release_before_wait.get()
        started = False

        async def answer_then_release() -> None:
            nonlocal started
            if not started and not answer.disabled and not answer.answered:
                started = True  # the answer's own call may wait out a pause and come back here
                await self._answer(event, answer)
            if release is not None:
                await release()

        hook = release_before_wait.set(answer_then_release)
        try:
            result = await handler(event, data)
        finally:
            release_before_wait.reset(hook)
        if not started and not answer.disabled and not answer.answered:
            await self._answer(event, answer)
        return result

    async def _answer(self, event: CallbackQuery, answer: CallbackAnswer) -> None:
        try:
            await self.answer(event, answer)
        except TelegramBadRequest as exc:
            # The press was handled; only its answer came too late ("query is too old",
            # e.g. a press delivered again after an outage, already answered with the
            # apology). Failing here would roll the handled update back.
            log.info("press answer refused: %s", type(exc).__name__)
