"""The form's answers said in words where it offers buttons (a resident who talks rather than
presses): the help needed, the circumstances, for whom; a typed settlement is in place.py.
What the words decide is taken and shown (Back or a press undoes it); what they do not is
offered as buttons or asked to be pressed. The word rules are services/spoken.py and the
catalogue's `match_services`."""

from __future__ import annotations

from typing import Any

from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from handlers.resident.intake import screens
from handlers.resident.intake.flow import FormFlow
from handlers.resident.intake.steps import Step
from services.cases import VULNERABILITY_MARKERS
from services.spoken import fuller_description, markers_from_words, on_behalf_from_words
from services.text import tidy


async def service_typed(message: Message, state: FSMContext, flow: FormFlow) -> None:
    """The help needed, said in words ("субсидію", "дрова", "догляд за мамою"): a clear match is
    taken (the summary shows it and Back changes it), several are offered, none is said plainly
    with the whole list. A story told here is not lost: the fullest one waits in the draft as
    the description, shown at that step to keep with one tap."""
    story = tidy(message.text, multiline=True)
    updates: dict[str, Any] = {}
    kept = str((await state.get_data()).get("description") or "")
    if (description := fuller_description(story, kept)) is not None:
        updates["description"] = description
    found = await flow.services.catalogue.services_matching(story)
    if found.chosen is not None:
        await flow.advance(
            Step.service,
            {**updates, "service_id": found.chosen.id},
            prefix=screens.service_understood(found.chosen, flow.locale),
        )
        return
    if updates:
        await state.update_data(updates)
    text, markup = screens.service_matches(tidy(message.text), found.candidates, flow.locale)
    await message.answer(text, reply_markup=markup)


async def markers_typed(message: Message, state: FSMContext, flow: FormFlow) -> None:
    """ "Живу сама, пенсіонерка", "ні": what the words name is ticked (and shown, to untick or go
    on), "none of these" goes on; anything else is asked to be pressed."""
    named, none = markers_from_words(message.text)
    if named:
        chosen = set((await state.get_data()).get("vulnerability") or []) | set(named)
        await flow.show(
            Step.vulnerability,
            updates={"vulnerability": [c for c in VULNERABILITY_MARKERS if c in chosen]},
            prefix=screens.markers_understood(named),
        )
    elif none:
        await flow.advance(Step.vulnerability)
    else:
        await message.answer(_("intake.use_buttons"))


async def on_behalf_typed(message: Message, flow: FormFlow) -> None:
    """ "Для себе", "для мами": for whom, said in words; anything else is asked to be pressed."""
    for_other = on_behalf_from_words(message.text)
    if for_other is None:
        await message.answer(_("intake.use_buttons"))
    elif for_other:
        await flow.advance(Step.on_behalf, {"on_behalf": True})
    else:
        await flow.advance(
            Step.on_behalf, {"on_behalf": False, "on_behalf_name": None, "on_behalf_relation": None}
        )
