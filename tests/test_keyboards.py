"""Our keyboard builders skip aiogram's deep copy; the markup must still be independent."""

from __future__ import annotations

from aiogram.types import CallbackQuery, Chat, Message, User

from handlers.kit.builders import InlineKeyboardBuilder, ReplyKeyboardBuilder
from handlers.kit.callbacks import CaseCb, IntakeCb, MyCaseCb
from handlers.kit.filters import CallbackPrefix


def test_markup_does_not_change_when_the_builder_goes_on() -> None:
    builder = InlineKeyboardBuilder()
    builder.button(text="Так", callback_data=IntakeCb(action="confirm"))
    markup = builder.as_markup()
    builder.button(text="Ні", callback_data=IntakeCb(action="cancel"))
    builder.adjust(1)
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [["Так"]]
    assert [[b.text for b in row] for row in builder.as_markup().inline_keyboard] == [["Так"], ["Ні"]]


def test_reply_builder_exports_fresh_rows() -> None:
    builder = ReplyKeyboardBuilder()
    builder.button(text="📝 Нове звернення")
    first = builder.as_markup(resize_keyboard=True)
    builder.button(text="📂 Мої звернення")
    assert len(first.keyboard[0]) == 1 and len(builder.export()[0]) == 2


def _press(data: str | None) -> CallbackQuery:
    user = User(id=1, is_bot=False, first_name="R")
    message = Message.model_validate(
        {"message_id": 1, "date": 0, "chat": Chat(id=1, type="private"), "text": ""}
    )
    return CallbackQuery(id="1", from_user=user, chat_instance="c", message=message, data=data)


async def test_callback_prefix_prunes_by_the_factory_prefix_only() -> None:
    only_cases = CallbackPrefix(CaseCb, MyCaseCb)
    assert await only_cases(_press(CaseCb(action="take", case_id=5).pack()))
    assert await only_cases(_press(MyCaseCb(action="open", case_id=5).pack()))
    assert not await only_cases(_press(IntakeCb(action="confirm").pack()))
    assert not await only_cases(_press("cases:take:5"))  # a longer prefix is another factory
    assert not await only_cases(_press(None))
