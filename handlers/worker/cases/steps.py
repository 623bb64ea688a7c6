"""Typed steps started from the case card: a reason or an outcome for a status change, a
message to the resident, a note for a transfer. Each step takes one text and is over then,
even when the action is refused."""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from handlers.worker.cases.card import show_card
from infra.settings import Settings
from models import Worker
from services.case_actions import MAX_REASON, MAX_TEXT
from services.errors import DomainError
from services.hub import Services
from services.text import tidy


class CaseForm(StatesGroup):
    reason = State()  # data: case_id, to_status
    write = State()  # data: case_id
    transfer_note = State()  # data: case_id, team_id


class Step(StrEnum):
    REASON = "reason"
    WRITE = "write"
    TRANSFER_NOTE = "transfer_note"


@dataclass(frozen=True)
class StepRule:
    state: State
    limit: int
    empty_key: str


STEPS: dict[Step, StepRule] = {
    Step.REASON: StepRule(CaseForm.reason, MAX_REASON, "case.error.empty_text"),
    Step.WRITE: StepRule(CaseForm.write, MAX_TEXT, "case.error.empty_text"),
    Step.TRANSFER_NOTE: StepRule(CaseForm.transfer_note, MAX_REASON, "case.error.note_required"),
}


async def text_required(message: Message) -> None:
    """A sticker, photo or voice in a text step: say so, keep the step."""
    await message.answer(_("worker.text_only"))


async def not_a_worker(message: Message, state: FSMContext) -> None:
    """A step of someone who is no longer an active worker: it ends here."""
    await state.set_state(None)
    await message.answer(_("worker.not_worker"))


async def _take_text(message: Message, state: FSMContext, step: Step) -> tuple[str, dict[str, Any]] | None:
    """A valid text (else a polite answer, the step kept) and the step's data; the step is
    left. None when the user was told why not."""
    rule = STEPS[step]
    text = tidy(message.text, multiline=True)
    if not text:
        await message.answer(_(rule.empty_key))
        return None
    if len(text) > rule.limit:
        await message.answer(_("case.error.text_too_long") % {"limit": rule.limit, "n": len(text)})
        return None
    data = await state.get_data()
    await state.set_state(None)
    return text, data


async def _refused(message: Message, error: DomainError) -> None:
    # Answered here, not by the error router: raising would roll the update back, and the
    # step must end (its FSM clear is committed) even when the action is refused.
    text = _(error.message_key)
    await message.answer(text % error.params if error.params else text)


async def reason_step(
    message: Message, state: FSMContext, services: Services, worker: Worker, settings: Settings
) -> None:
    taken = await _take_text(message, state, Step.REASON)
    if taken is None:
        return
    text, data = taken
    case_id, to_status = int(data["case_id"]), str(data.get("to_status"))
    try:
        await services.case_actions.apply_status(case_id, worker, to_status, text)
    except DomainError as error:
        await _refused(message, error)
        return
    await message.answer(_("worker.status.changed") % {"status": _("case.status." + to_status)})
    await show_card(message, services, worker, case_id, settings)


async def write_step(message: Message, state: FSMContext, services: Services, worker: Worker) -> None:
    taken = await _take_text(message, state, Step.WRITE)
    if taken is None:
        return
    text, data = taken
    try:
        await services.case_actions.relay_to_resident(int(data["case_id"]), worker, text)
    except DomainError as error:
        await _refused(message, error)
        return
    await message.answer(_("worker.write.sent"))


async def transfer_step(message: Message, state: FSMContext, services: Services, worker: Worker) -> None:
    taken = await _take_text(message, state, Step.TRANSFER_NOTE)
    if taken is None:
        return
    text, data = taken
    try:
        case = await services.case_actions.transfer(int(data["case_id"]), worker, int(data["team_id"]), text)
    except DomainError as error:
        await _refused(message, error)
        return
    team = await services.workers.team(case.team_id)
    name = html.escape(team.name(get_i18n().current_locale)) if team else ""
    await message.answer(_("worker.transfer.done") % {"team": name})
