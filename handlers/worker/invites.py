"""Joining through invite links; the first admin from settings; /invite for coordinators.

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

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import InviteCb
from handlers.kit.filters import ActiveWorker, prune_callbacks
from handlers.kit.keyboards import main_menu
from infra.i18n import LANGUAGES
from infra.settings import Settings
from models import User, Worker
from models.people import roles_for_team
from services.clock import Clock
from services.errors import StaleAction
from services.hub import Services
from services.workers import INVITE_PREFIX, InviteError, NotWorker


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
    services: Services,
    user: User,
    clock: Clock,
    i18n: I18n,
) -> None:
    await state.clear()
    users = services.users
    if user.language is None and i18n.current_locale in LANGUAGES:
        await users.set_language(user, i18n.current_locale)
    try:
        member = await services.workers.redeem_invite(
            payload=invite_payload, user=user, display_name=_display_name(message), now=clock.now()
        )
    except InviteError as exc:
        # Answered here: raising would roll back the cleared form and the language just set.
        await message.answer(_(exc.message_key))
        return
    team = await services.workers.team(member.team_id)
    await message.answer(
        _("worker.invite.joined")
        % {"team": team.name(i18n.current_locale) if team else "", "role": _(f"worker.role.{member.role}")},
        reply_markup=main_menu(with_personal=await users.has_consent(user), is_worker=True),
    )


async def become_admin(message: Message, services: Services, user: User, i18n: I18n) -> None:
    users = services.users
    if user.language is None and i18n.current_locale in LANGUAGES:
        await users.set_language(user, i18n.current_locale)
    await services.workers.ensure_admin(user, _display_name(message))
    await message.answer(
        _("worker.admin.ready"),
        reply_markup=main_menu(with_personal=await users.has_consent(user), is_worker=True),
    )


async def invite_start(message: Message, services: Services, worker: Worker, i18n: I18n) -> None:
    teams = await services.workers.manageable_teams(worker)
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
    services: Services,
    worker: Worker,
    clock: Clock,
    settings: Settings,
    i18n: I18n,
    bot: Bot,
) -> None:
    workers = services.workers
    team = await workers.team(callback_data.team_id)
    if team is None or not await workers.can_manage_team(worker, team.id):
        raise StaleAction()
    message = query.message if isinstance(query.message, Message) else None
    if not callback_data.role:
        builder = InlineKeyboardBuilder()
        for role in roles_for_team(team.is_oblast_fallback):
            builder.button(text=_(f"worker.role.{role}"), callback_data=InviteCb(team_id=team.id, role=role))
        if message is not None:
            await message.answer(_("worker.invite.choose_role"), reply_markup=builder.as_markup())
        return
    if callback_data.role not in roles_for_team(team.is_oblast_fallback):
        raise StaleAction()
    ttl = timedelta(hours=settings.delivery.invite_ttl_hours)
    token = await workers.create_invite(
        creator=worker, team=team, role=callback_data.role, ttl=ttl, now=clock.now()
    )
    me = await bot.me()
    until = (clock.now() + ttl).astimezone(settings.locale.tz).strftime("%d.%m.%Y %H:%M")
    if message is not None:
        await message.answer(
            _("worker.invite.link")
            % {
                "team": team.name(i18n.current_locale),
                "role": _(f"worker.role.{callback_data.role}"),
                "until": until,
                "link": f"https://t.me/{me.username}?start={token}",
            }
        )


async def not_a_worker(event: object) -> None:
    raise NotWorker()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, InviteCb)
    router.message.register(join_by_invite, CommandStart(deep_link=True), InviteLink())
    router.message.register(become_admin, Command("admin"), ConfiguredAdmin())
    router.message.register(invite_start, Command("invite"), ActiveWorker())
    router.message.register(not_a_worker, Command("invite"))
    router.callback_query.register(invite_step, InviteCb.filter(), ActiveWorker())
    return router
