"""Coordinators change their hromadas' routing without a restart: switch a rule on or off, add
an inter-municipal delegation. Each press is re-checked and audited (services.workers)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import RuleCb
from handlers.kit.filters import Action, ActiveWorker, prune_callbacks
from models import Hromada, RoutingRule, Service, Team, Worker
from services.errors import StaleAction
from services.hub import Services
from services.workers import NotCoordinator


def _rule_label(rule: RoutingRule, locale: str) -> str:
    mark = "✅" if rule.active else "⛔"
    service = rule.service.name(locale) if rule.service else _("coord.routing.all_services")
    place = rule.hromada.name(locale) if rule.hromada else rule.oblast
    if rule.settlement is not None:
        place += f" / {rule.settlement.name(locale)}"
    return f"{mark} {place}: {service} → {rule.team.name(locale)} ({_('coord.routing.kind.' + rule.kind)})"


def rules_screen(rules: list[RoutingRule], locale: str) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    for rule in rules:
        builder.button(
            text=_rule_label(rule, locale)[:120], callback_data=RuleCb(action="toggle", rule_id=rule.id)
        )
    builder.button(text=_("coord.routing.add"), callback_data=RuleCb(action="add"))
    builder.adjust(1)
    text = _("coord.routing.title") if rules else _("coord.routing.none")
    return text, builder.as_markup()


def _choices(prompt: str, buttons: list[tuple[str, RuleCb]]) -> tuple[str, InlineKeyboardMarkup]:
    builder = InlineKeyboardBuilder()
    for text, data in buttons:
        builder.button(text=text, callback_data=data)
    builder.adjust(1)
    return prompt, builder.as_markup()


def hromada_screen(hromadas: list[Hromada], locale: str) -> tuple[str, InlineKeyboardMarkup]:
    return _choices(
        _("coord.routing.choose_hromada"),
        [(h.name(locale), RuleCb(action="hromada", hromada_id=h.id)) for h in hromadas],
    )


def service_screen(hromada_id: int, services: list[Service], locale: str) -> tuple[str, InlineKeyboardMarkup]:
    return _choices(
        _("coord.routing.choose_service"),
        [
            (s.name(locale), RuleCb(action="service", hromada_id=hromada_id, service_id=s.id))
            for s in services
        ],
    )


def team_screen(
    hromada_id: int, service_id: int, teams: list[Team], locale: str
) -> tuple[str, InlineKeyboardMarkup]:
    return _choices(
        _("coord.routing.choose_team"),
        [
            (
                t.name(locale),
                RuleCb(action="team", hromada_id=hromada_id, service_id=service_id, team_id=t.id),
            )
            for t in teams
        ],
    )


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


async def routing_command(message: Message, services: Services, worker: Worker, i18n: I18n) -> None:
    admin = services.routing_admin
    await admin.coordinated(worker)
    text, markup = rules_screen(await admin.rules(worker), i18n.current_locale)
    await message.answer(text, reply_markup=markup)


async def not_a_coordinator(event: object) -> None:
    raise NotCoordinator()


async def list_rules(query: CallbackQuery, services: Services, worker: Worker, i18n: I18n) -> None:
    admin = services.routing_admin
    await admin.coordinated(worker)
    if (message := _message(query)) is not None:
        text, markup = rules_screen(await admin.rules(worker), i18n.current_locale)
        await message.answer(text, reply_markup=markup)


async def toggle_rule(
    query: CallbackQuery,
    callback_data: RuleCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    admin = services.routing_admin
    await admin.coordinated(worker)
    rule = await admin.toggle(worker, callback_data.rule_id)
    callback_answer.text = _("coord.routing.toggled_on" if rule.active else "coord.routing.toggled_off")
    if (message := _message(query)) is not None:
        text, markup = rules_screen(await admin.rules(worker), i18n.current_locale)
        await message.edit_text(text, reply_markup=markup)


async def add_step(
    query: CallbackQuery, callback_data: RuleCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    """The delegation form: hromada, then service, then team (each re-checked by the service)."""
    admin = services.routing_admin
    locale = i18n.current_locale
    hromadas = await admin.coordinated(worker)
    if callback_data.action == "add":
        text, markup = hromada_screen(hromadas, locale)
    elif callback_data.action == "hromada":
        choices = await admin.delegation_services(worker, callback_data.hromada_id)
        text, markup = service_screen(callback_data.hromada_id, choices, locale)
    else:
        teams = await admin.delegation_teams(worker, callback_data.hromada_id)
        text, markup = team_screen(callback_data.hromada_id, callback_data.service_id, teams, locale)
    if (message := _message(query)) is not None:
        await message.answer(text, reply_markup=markup)


async def add_delegation(
    query: CallbackQuery, callback_data: RuleCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    admin = services.routing_admin
    await admin.coordinated(worker)
    rule, created = await admin.add_delegation(
        worker, callback_data.hromada_id, callback_data.service_id, callback_data.team_id
    )
    if (message := _message(query)) is None:
        return
    if not created:
        await message.answer(_("coord.routing.exists"))
        return
    locale = i18n.current_locale
    service, team = await admin.rule_names(rule)
    await message.answer(
        _("coord.routing.added")
        % {
            "service": service.name(locale) if service else "",
            "team": team.name(locale) if team else "",
        }
    )


async def unknown_action(query: CallbackQuery, services: Services, worker: Worker) -> None:
    await services.routing_admin.coordinated(worker)
    raise StaleAction()


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, RuleCb)
    router.message.register(routing_command, Command("routing"), ActiveWorker())
    router.message.register(not_a_coordinator, Command("routing"))
    presses = router.callback_query
    presses.register(list_rules, Action(RuleCb, "list"), ActiveWorker())
    presses.register(toggle_rule, Action(RuleCb, "toggle"), ActiveWorker())
    presses.register(add_step, Action(RuleCb, "add", "hromada", "service"), ActiveWorker())
    presses.register(add_delegation, Action(RuleCb, "team"), ActiveWorker())
    presses.register(unknown_action, RuleCb.filter(), ActiveWorker())
    presses.register(not_a_coordinator, RuleCb.filter())
    return router
