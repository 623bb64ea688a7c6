"""Coordinators change their hromadas' routing without a restart (issue 3): switch a rule on or
off, add an inter-municipal delegation. Each press is re-checked and audited (services.workers)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import RuleCb
from handlers.kit.filters import prune_callbacks
from handlers.worker.queues import current_worker
from models import RoutingRule, Service, Team, User, Worker
from services.workers import RoutingAdmin, RoutingAdminError


def _rule_label(rule: RoutingRule, locale: str) -> str:
    mark = "✅" if rule.active else "⛔"
    service = rule.service.name(locale) if rule.service else _("coord.routing.all_services")
    place = rule.hromada.name(locale) if rule.hromada else rule.oblast
    if rule.settlement is not None:
        place += f" / {rule.settlement.name(locale)}"
    return f"{mark} {place}: {service} → {rule.team.name(locale)} ({_('coord.routing.kind.' + rule.kind)})"


async def _rules_view(session: AsyncSession, worker: Worker, locale: str) -> tuple[str, InlineKeyboardMarkup]:
    rules = await RoutingAdmin(session).rules(worker)
    builder = InlineKeyboardBuilder()
    for rule in rules:
        builder.button(
            text=_rule_label(rule, locale)[:120], callback_data=RuleCb(action="toggle", rule_id=rule.id)
        )
    builder.button(text=_("coord.routing.add"), callback_data=RuleCb(action="add"))
    builder.adjust(1)
    text = _("coord.routing.title") if rules else _("coord.routing.none")
    return text, builder.as_markup()


async def routing_command(message: Message, session: AsyncSession, user: User, i18n: I18n) -> None:
    worker = await current_worker(session, user)
    if worker is None or not await RoutingAdmin(session).hromadas(worker):
        await message.answer(_("coord.not_coordinator"))
        return
    text, markup = await _rules_view(session, worker, i18n.current_locale)
    await message.answer(text, reply_markup=markup)


async def routing_press(
    query: CallbackQuery, callback_data: RuleCb, session: AsyncSession, user: User, i18n: I18n
) -> None:
    worker = await current_worker(session, user)
    admin = RoutingAdmin(session)
    if worker is None or not await admin.hromadas(worker):
        await query.answer(_("coord.not_coordinator"), show_alert=True)
        return
    locale = i18n.current_locale
    action = callback_data.action
    try:
        if action == "list":
            text, markup = await _rules_view(session, worker, locale)
            await query.answer()
            if query.message is not None:
                await query.message.answer(text, reply_markup=markup)
            return
        if action == "toggle":
            rule = await admin.toggle(worker, callback_data.rule_id)
            await query.answer(_("coord.routing.toggled_on" if rule.active else "coord.routing.toggled_off"))
            text, markup = await _rules_view(session, worker, locale)
            if query.message is not None:
                await query.message.edit_text(text, reply_markup=markup)  # type: ignore[union-attr]
            return
        builder = InlineKeyboardBuilder()
        if action == "add":
            for hromada in await admin.hromadas(worker):
                builder.button(
                    text=hromada.name(locale), callback_data=RuleCb(action="hromada", hromada_id=hromada.id)
                )
            prompt = _("coord.routing.choose_hromada")
        elif action == "hromada":
            await admin.delegation_teams(worker, callback_data.hromada_id)  # checks the hromada
            services = (await session.scalars(select(Service).order_by(Service.position, Service.id))).all()
            for service in services:
                builder.button(
                    text=service.name(locale),
                    callback_data=RuleCb(
                        action="service", hromada_id=callback_data.hromada_id, service_id=service.id
                    ),
                )
            prompt = _("coord.routing.choose_service")
        elif action == "service":
            for team in await admin.delegation_teams(worker, callback_data.hromada_id):
                builder.button(
                    text=team.name(locale),
                    callback_data=RuleCb(
                        action="team",
                        hromada_id=callback_data.hromada_id,
                        service_id=callback_data.service_id,
                        team_id=team.id,
                    ),
                )
            prompt = _("coord.routing.choose_team")
        elif action == "team":
            rule, created = await admin.add_delegation(
                worker, callback_data.hromada_id, callback_data.service_id, callback_data.team_id
            )
            service = await session.get(Service, rule.service_id) if rule.service_id else None
            team = await session.get(Team, rule.team_id)
            await query.answer()
            if query.message is not None:
                await query.message.answer(
                    _("coord.routing.added")
                    % {
                        "service": service.name(locale) if service else "",
                        "team": team.name(locale) if team else "",
                    }
                    if created
                    else _("coord.routing.exists")
                )
            return
        else:
            await query.answer(_("errors.stale_button"), show_alert=True)
            return
    except RoutingAdminError:
        await query.answer(_("errors.stale_button"), show_alert=True)
        return
    builder.adjust(1)
    await query.answer()
    if query.message is not None:
        await query.message.answer(prompt, reply_markup=builder.as_markup())


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, RuleCb)
    router.message.register(routing_command, Command("routing"))
    router.callback_query.register(routing_press, RuleCb.filter())
    return router
