"""The form's place steps: where the resident lives, typed (a town, a village or a hromada) and
picked from the search, then the hromada's settlement, pressed from a paged list or typed.
Every id from a button is re-checked against the draft and the database."""

from __future__ import annotations

from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from handlers.kit.callbacks import IntakeCb
from handlers.kit.messages import edit_or_send
from handlers.resident.intake import screens
from handlers.resident.intake.flow import FormFlow
from handlers.resident.intake.steps import Step
from services.errors import StaleAction
from services.text import tidy

SETTLEMENT_MATCHES = 8
HROMADA_MATCHES = 4
# Settlements of the hromada offered for a typed name that matches several.
SETTLEMENTS_OFFERED = 8


async def hromada_search(message: Message, flow: FormFlow) -> None:
    query = tidy(message.text)
    if not screens.SEARCH_MIN <= len(query) <= screens.SEARCH_MAX:
        text, markup = screens.hromada_query_bad()
    else:
        found = await flow.services.places.search(
            query, settlements=SETTLEMENT_MATCHES, hromadas=HROMADA_MATCHES
        )
        text, markup = screens.place_hits(query, found, flow.locale)
    await message.answer(text, reply_markup=markup)


async def pick_hromada(
    query: CallbackQuery, callback_data: IntakeCb, state: FSMContext, flow: FormFlow
) -> None:
    value = callback_data.value
    if not value.isdigit():
        raise StaleAction()
    hromada = await flow.services.intake.accepting_hromada(int(value), flow.locale)
    updates: dict[str, Any] = {"hromada_id": hromada.id, "by_settlement": False}
    data = await state.get_data()
    if data.get("hromada_id") != hromada.id or data.get("by_settlement"):
        updates["settlement_id"] = None
    await flow.advance(Step.hromada, updates)


async def pick_place(query: CallbackQuery, callback_data: IntakeCb, flow: FormFlow) -> None:
    """A settlement from the search: its hromada follows, the settlement step is skipped."""
    value = callback_data.value
    settlement = await flow.services.places.settlement_with_hromada(int(value)) if value.isdigit() else None
    if settlement is None:
        raise StaleAction()
    hromada = await flow.services.intake.accepting_hromada(settlement.hromada_id, flow.locale)
    await flow.show(
        Step.service,
        updates={"hromada_id": hromada.id, "settlement_id": settlement.id, "by_settlement": True},
        prefix=screens.place_chosen(settlement, flow.locale),
    )


async def pick_settlement(
    query: CallbackQuery, callback_data: IntakeCb, state: FSMContext, flow: FormFlow
) -> None:
    value = callback_data.value
    hromada_id = (await state.get_data()).get("hromada_id")
    catalogue = flow.services.catalogue
    settlement = await catalogue.settlement_of(hromada_id, int(value)) if value.isdigit() else None
    if settlement is None:
        raise StaleAction()
    await flow.advance(Step.settlement, {"settlement_id": settlement.id})


async def settlement_page(
    query: CallbackQuery, callback_data: IntakeCb, state: FSMContext, flow: FormFlow
) -> None:
    """Another page of the hromada's settlements (or the whole list again after a typed name)."""
    value = callback_data.value
    hromada_id = (await state.get_data()).get("hromada_id")
    if not value.isdigit() or hromada_id is None:
        raise StaleAction()
    catalogue = flow.services.catalogue
    hromada = await catalogue.hromada(int(hromada_id))
    settlements = await catalogue.settlements(int(hromada_id))
    await edit_or_send(query, *screens.settlement_step(hromada, settlements, flow.locale, int(value)))


async def settlement_typed(message: Message, state: FSMContext, flow: FormFlow) -> None:
    """The settlement's name typed instead of pressed: one exact match is taken, several are
    offered as buttons, none is said plainly with the way back to the list."""
    typed = tidy(message.text)
    hromada_id = (await state.get_data()).get("hromada_id")
    if hromada_id is None:
        raise StaleAction()
    if not screens.SEARCH_MIN <= len(typed) <= screens.SEARCH_MAX:
        text, markup = screens.settlement_query_bad()
        await message.answer(text, reply_markup=markup)
        return
    hits = await flow.services.places.settlements_in(int(hromada_id), typed, limit=SETTLEMENTS_OFFERED)
    exact = [hit for hit in hits if hit.match == "exact"]
    if len(exact) == 1:
        await flow.advance(Step.settlement, {"settlement_id": exact[0].settlement.id})
        return
    hromada = await flow.services.catalogue.hromada(int(hromada_id))
    text, markup = screens.settlement_matches(typed, exact or hits, hromada, flow.locale)
    await message.answer(text, reply_markup=markup)
