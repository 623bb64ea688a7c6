"""The new-request form's steps and the one table that orders them.

The whole form is one FSM state (`IntakeForm.active`); the current step is `data["step"]`, so
moving on is one storage write (the data) instead of two (data and state). Step values are the
strings saved in drafts: renaming one would strand the drafts people have open."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from aiogram.filters import Filter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup


class IntakeForm(StatesGroup):
    active = State()


ACTIVE = IntakeForm.active.state


class Step(StrEnum):
    hromada = "hromada"
    settlement = "settlement"
    service = "service"
    vulnerability = "vulnerability"
    description = "description"
    attachments = "attachments"
    on_behalf = "on_behalf"
    on_behalf_name = "on_behalf_name"
    on_behalf_relation = "on_behalf_relation"
    contact = "contact"
    confirm = "confirm"


# step: (next, previous). Two steps branch on the answer "on whose behalf" (`data["on_behalf"]`):
# after `on_behalf` comes `on_behalf_name` for someone else, and before `contact` comes
# `on_behalf_relation` for someone else; the table holds the "for me" branch.
TABLE: dict[Step, tuple[Step | None, Step | None]] = {
    Step.hromada: (Step.settlement, None),
    Step.settlement: (Step.service, Step.hromada),
    Step.service: (Step.vulnerability, Step.settlement),
    Step.vulnerability: (Step.description, Step.service),
    Step.description: (Step.attachments, Step.vulnerability),
    Step.attachments: (Step.on_behalf, Step.description),
    Step.on_behalf: (Step.contact, Step.attachments),
    Step.on_behalf_name: (Step.on_behalf_relation, Step.on_behalf),
    Step.on_behalf_relation: (Step.contact, Step.on_behalf_name),
    Step.contact: (Step.confirm, Step.on_behalf),
    Step.confirm: (None, Step.contact),
}

_VALUES = frozenset(step.value for step in Step)

# Steps answered by typing (the settlement and the service: a button or words), and steps
# answered only by buttons.
TEXT_STEPS = frozenset(
    {
        Step.hromada,
        Step.settlement,
        Step.service,
        Step.description,
        Step.on_behalf_name,
        Step.on_behalf_relation,
    }
)
BUTTON_STEPS = frozenset({Step.vulnerability, Step.on_behalf, Step.confirm})


def next_step(step: Step, data: Mapping[str, Any]) -> Step | None:
    if step == Step.hromada and data.get("by_settlement") and data.get("settlement_id"):
        return Step.service
    if step == Step.on_behalf and data.get("on_behalf"):
        return Step.on_behalf_name
    return TABLE[step][0]


def previous(step: str, data: Mapping[str, Any]) -> Step | None:
    """The step Back leads to; None at the first step (and for a step no longer known). A
    settlement chosen in the first step's search skipped the settlement step: Back from the
    service goes back to the search."""
    if step not in _VALUES:
        return None
    if step == Step.service and data.get("by_settlement"):
        return Step.hromada
    if step == Step.contact and data.get("on_behalf"):
        return Step.on_behalf_relation
    return TABLE[Step(step)][1]


def has_answers(data: Mapping[str, Any]) -> bool:
    """Whether cancelling would throw away something the person typed or chose beyond the place:
    then Cancel asks first."""
    return bool(data.get("service_id") or data.get("description") or data.get("attachments"))


def current(data: Mapping[str, Any]) -> Step:
    """The draft's step (a draft without one starts over at the first)."""
    step = data.get("step")
    return Step(step) if step in _VALUES else Step.hromada


class StepIn(Filter):
    """The form is open at one of these steps (the FSM data is read once per update, then cached)."""

    def __init__(self, *steps: Step) -> None:
        self.steps = frozenset(step.value for step in steps)

    async def __call__(self, event: Any, state: FSMContext, raw_state: str | None = None) -> bool:
        if raw_state != ACTIVE:
            return False
        return (await state.get_data()).get("step") in self.steps
