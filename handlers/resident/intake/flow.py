"""Moving through the new-request form: save the draft, fetch what a step's screen shows, show
it (editing the pressed message when possible).

A `FormFlow` is made for each handled update of the form's router (see `inject_flow`), so
handlers take `flow` instead of state, services, user and i18n one by one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.kit.keyboards import main_menu
from handlers.kit.messages import edit_or_send
from handlers.resident.intake import screens
from handlers.resident.intake.steps import ACTIVE, IntakeForm, Step, next_step
from models import User
from services.cases import verified_phone
from services.hub import Services


@dataclass
class FormFlow:
    event: Message | CallbackQuery
    state: FSMContext
    services: Services
    user: User
    i18n: I18n

    @property
    def locale(self) -> str:
        return self.i18n.current_locale

    async def menu(self) -> ReplyKeyboardMarkup:
        is_worker = await self.services.workers.is_active_worker(self.user)
        return main_menu(with_personal=True, is_worker=is_worker)

    async def screen(self, step: Step, data: dict[str, Any]) -> screens.Screen:
        """Fetch what the step's screen shows, then render it."""
        services, locale = self.services, self.locale
        if step == Step.hromada:
            resident = await services.users.consented_resident(self.user)
            suggested = await services.intake.suggested_hromadas(resident, data.get("hromada_id"))
            settlement_id = data.get("settlement_id")
            chosen = (
                await services.places.settlement_with_hromada(int(settlement_id))
                if data.get("by_settlement") and settlement_id
                else None
            )
            return screens.hromada_step(suggested, locale, chosen)
        if step == Step.settlement:
            hromada = await services.catalogue.hromada(data["hromada_id"])
            settlements = await services.catalogue.settlements(data["hromada_id"])
            return screens.settlement_step(hromada, settlements, locale)
        if step == Step.service:
            return screens.service_step(await services.catalogue.services_by_group(), locale)
        if step == Step.vulnerability:
            return screens.vulnerability_step(data.get("vulnerability") or [])
        if step == Step.description:
            return screens.description_step(data.get("description"))
        if step == Step.attachments:
            return screens.attachments_step(len(data.get("attachments") or []))
        if step == Step.on_behalf:
            return screens.on_behalf_step()
        if step == Step.on_behalf_name:
            return screens.on_behalf_name_step()
        if step == Step.on_behalf_relation:
            return screens.on_behalf_relation_step()
        if step == Step.contact:
            return screens.contact_step(verified_phone(await services.users.consented_resident(self.user)))
        settlement_id = data.get("settlement_id")
        text = screens.summary(
            data,
            await services.catalogue.hromada(data["hromada_id"]),
            await services.catalogue.settlement(settlement_id) if settlement_id else None,
            await services.catalogue.service(data["service_id"]),
            locale,
        )
        return screens.confirm_step(text, data["draft_id"])

    async def show(
        self,
        step: Step,
        *,
        updates: dict[str, Any] | None = None,
        fresh: bool = False,
        prefix: str | None = None,
    ) -> None:
        """Go to `step` (saving `updates` into the draft in the same write) and show its screen."""
        state = self.state
        data = {} if fresh else await state.get_data()
        data.update(updates or {})
        data["step"] = step.value
        await state.set_data(data)
        if fresh or await state.get_state() != ACTIVE:
            await state.set_state(IntakeForm.active)
        text, markup = await self.screen(step, data)
        if prefix:
            text = f"{prefix}\n\n{text}"
        event = self.event
        if isinstance(event, Message):
            await event.answer(text, reply_markup=markup)
            return
        message = event.message
        if not isinstance(message, Message):
            return
        if isinstance(markup, InlineKeyboardMarkup):
            await edit_or_send(event, text, markup)
            return
        # A reply keyboard cannot replace inline buttons: take those away, send it below.
        await message.edit_reply_markup(reply_markup=None)
        await message.answer(text, reply_markup=markup)

    async def advance(
        self, step: Step, updates: dict[str, Any] | None = None, *, prefix: str | None = None
    ) -> None:
        """Save `updates` and go to the step after `step` (by the steps table)."""
        data = {**(await self.state.get_data()), **(updates or {})}
        following = next_step(step, data)
        assert following is not None, f"{step} is the last step"
        await self.show(following, updates=updates, prefix=prefix)

    async def cancel(self) -> None:
        await self.state.clear()
        menu = await self.menu()
        event = self.event
        if isinstance(event, Message):
            await event.answer(_("intake.cancelled"), reply_markup=menu)
        elif isinstance(event.message, Message):
            await event.message.edit_reply_markup(reply_markup=None)
            await event.message.answer(_("intake.cancelled"), reply_markup=menu)


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


async def _inject_flow(handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
    user = data.get("user")
    if user is not None and isinstance(event, Message | CallbackQuery):
        data["flow"] = FormFlow(event, data["state"], data["services"], user, data["i18n"])
    return await handler(event, data)


def inject_flow(router: Router) -> None:
    """Hand every handler of `router` its `flow` (after the filters passed)."""
    router.message.middleware(_inject_flow)
    router.callback_query.middleware(_inject_flow)
