"""The form's phone step: a contact shared through Telegram's own button (verified only when it is
the sender's own), the phone saved earlier, or Back / Cancel from the reply keyboard."""

from __future__ import annotations

from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from handlers.resident.intake import screens
from handlers.resident.intake.flow import FormFlow
from handlers.resident.intake.steps import Step, has_answers, previous
from services.cases import verified_phone
from services.phones import contact_phone, normalize_phone


async def contact_shared(message: Message, flow: FormFlow) -> None:
    contact = message.contact
    assert contact is not None
    if message.from_user is None or contact.user_id != message.from_user.id:
        await message.answer(_("intake.contact_not_own"))
        return
    resident = await flow.services.users.consented_resident(flow.user)
    if resident is None:
        await flow.cancel()
        return
    phone = contact_phone(contact.phone_number)
    await _phone_done(message, phone, flow)
    await flow.services.intake.remember_phone(resident, phone)


async def use_saved_phone(message: Message, flow: FormFlow) -> None:
    phone = verified_phone(await flow.services.users.consented_resident(flow.user))
    if phone is None:
        await message.answer(_("intake.contact_use_button"))
        return
    await _phone_done(message, phone, flow)


async def _phone_done(message: Message, phone: str, flow: FormFlow) -> None:
    # The reply keyboard goes back to the menu; the summary comes with its inline buttons.
    await message.answer(screens.phone_saved_text(phone), reply_markup=await flow.menu())
    await flow.advance(Step.contact, {"contact_phone": phone})


async def contact_back(message: Message, state: FSMContext, flow: FormFlow) -> None:
    back_to = previous(Step.contact, await state.get_data())
    assert back_to is not None
    await message.answer(_("intake.going_back"), reply_markup=await flow.menu())
    await flow.show(back_to)


async def contact_cancel(message: Message, state: FSMContext, flow: FormFlow) -> None:
    if has_answers(await state.get_data()):
        text, markup = screens.cancel_question()
        await message.answer(text, reply_markup=markup)
        return
    await flow.cancel()


async def contact_other(message: Message, flow: FormFlow) -> None:
    """Anything but the contact. A number typed by hand is explained rather than just refused
    (only the button shows the number is the sender's own), and the button is shown again: it
    may be hidden behind the keyboard icon."""
    typed_number = normalize_phone(message.text) is not None
    key = "intake.contact_typed_number" if typed_number else "intake.contact_use_button"
    resident = await flow.services.users.consented_resident(flow.user)
    await message.answer(_(key), reply_markup=screens.contact_keyboard(verified_phone(resident)))
