"""Joining through invite links; the first admin from settings; /invite for coordinators (issue 3).

Only `/start inv_<token>` deep links are taken here (this router runs before the common one);
every other /start goes on to the common greeting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command, CommandStart, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import InviteCb
from handlers.kit.filters import prune_callbacks
from handlers.kit.keyboards import main_menu
from infra.i18n import LANGUAGES
from infra.settings import Settings
from models import Team, User
from models.people import ROLES
from services.clock import Clock
from services.users import UserService
from services.workers import INVITE_PREFIX, InviteError, WorkerService


class InviteLink(Filter):
    """`/start inv_...`: hands the payload to the handler as `invite_payload`."""

    async def __call__(self, message: Message) -> bool | dict[str, Any]:
        parts = (message.text or "").split(maxsplit=1)
        if len(parts) == 2 and parts[1].startswith(INVITE_PREFIX):
            return {"invite_payload": parts[1].strip()}
        return False


class ConfiguredAdmin(Filter):
    """The sender is listed in ADMIN_TELEGRAM_IDS (others fall through to "unknown command")."""

    async def __call__(self, message: Message, settings: Settings) -> bool:
        return message.from_user is not None and message.from_user.id in settings.telegram.admin_telegram_ids


def _display_name(message: Message) -> str:
    return message.from_user.full_name if message.from_user else ""


async def join_by_invite(
    message: Message,
    invite_payload: str,
    state: FSMContext,
    session: AsyncSession,
    user: User,
    clock: Clock,
    i18n: I18n,
) -> None:
    await state.clear()
    users = UserService(session)
    if user.language is None and i18n.current_locale in LANGUAGES:
        await users.set_language(user, i18n.current_locale)
    try:
        member = await WorkerService(session).redeem_invite(
            payload=invite_payload, user=user, display_name=_display_name(message), now=clock.now()
        )
    except InviteError as exc:
        await message.answer(_(f"worker.invite.{exc.code}"))
        return
    team = await session.get(Team, member.team_id)
    await message.answer(
        _("worker.invite.joined")
        % {"team": team.name(i18n.current_locale) if team else "", "role": _(f"worker.role.{member.role}")},
        reply_markup=main_menu(with_personal=await users.has_consent(user), is_worker=True),
    )


async def become_admin(message: Message, session: AsyncSession, user: User, i18n: I18n) -> None:
    users = UserService(session)
    if user.language is None and i18n.current_locale in LANGUAGES:
        await users.set_language(user, i18n.current_locale)
    await WorkerService(session).ensure_admin(user, _display_name(message))
    await message.answer(
        _("worker.admin.ready"),
        reply_markup=main_menu(with_personal=await users.has_consent(user), is_worker=True),
    )


async def invite_start(message: Message, session: AsyncSession, user: User, i18n: I18n) -> None:
    workers = WorkerService(session)
    worker = await workers.worker_for(user)
    if worker is None:
        await message.answer(_("worker.not_worker"))
        return
    teams = await workers.manageable_teams(worker)
    if not teams:
        await message.answer(_("worker.invite.no_teams"))
        return
    builder = InlineKeyboardBuilder()
    for team in teams:
        builder.button(text=team.name(i18n.current_locale), callback_data=InviteCb(team_id=team.id))
    builder.adjust(1)
    await message.answer(_("worker.invite.choose_team"), reply_markup=builder.as_markup())


async def invite_step(
    query: CallbackQuery,
    callback_data: InviteCb,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    i18n: I18n,
    bot: Bot,
) -> None:
    workers = WorkerService(session)
    worker = await workers.worker_for(user)
    team = await session.get(Team, callback_data.team_id)
    if worker is None or team is None or not await workers.can_manage_team(worker, team.id):
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    if not callback_data.role:
        builder = InlineKeyboardBuilder()
        for role in ROLES:
            builder.button(text=_(f"worker.role.{role}"), callback_data=InviteCb(team_id=team.id, role=role))
        await query.answer()
        if query.message is not None:
            await query.message.answer(_("worker.invite.choose_role"), reply_markup=builder.as_markup())
        return
    if callback_data.role not in ROLES:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    ttl = timedelta(hours=settings.delivery.invite_ttl_hours)
    token = await workers.create_invite(
        creator=worker, team=team, role=callback_data.role, ttl=ttl, now=clock.now()
    )
    me = await bot.me()
    until = (clock.now() + ttl).astimezone(settings.locale.tz).strftime("%d.%m.%Y %H:%M")
    await query.answer()
    if query.message is not None:
        await query.message.answer(
            _("worker.invite.link")
            % {
                "team": team.name(i18n.current_locale),
                "role": _(f"worker.role.{callback_data.role}"),
                "until": until,
                "link": f"https://t.me/{me.username}?start={token}",
            }
        )


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, InviteCb)
    router.message.register(join_by_invite, CommandStart(deep_link=True), InviteLink())
    router.message.register(become_admin, Command("admin"), ConfiguredAdmin())
    router.message.register(invite_start, Command("invite"))
    router.callback_query.register(invite_step, InviteCb.filter())
    return router
