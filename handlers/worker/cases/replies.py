"""A worker answers a relayed resident message by a Telegram reply (swipe to reply): the text
or file goes to that resident under the team's name, exactly like "Write to the resident" —
never from the worker's own account. Only a reply to a message that relayed what a resident
sent counts; any other message of a worker keeps its usual handling."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Filter, StateFilter
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from handlers.kit.conversation import incoming_from, replied_bot_message
from handlers.kit.filters import ActiveWorker
from models import Worker
from services.hub import Services


class RepliesToResident(Filter):
    """A Telegram reply to a relayed resident message; hands in its case as `reply_case_id`."""

    async def __call__(self, message: Message, services: Services) -> bool | dict[str, Any]:
        replied = replied_bot_message(message)
        if replied is None:
            return False
        case_id = await services.conversation.worker_reply_case(message.chat.id, replied)
        return {"reply_case_id": case_id} if case_id is not None else False


async def reply_to_resident(message: Message, services: Services, worker: Worker, reply_case_id: int) -> None:
    incoming = incoming_from(message)
    if incoming is None:
        await message.answer(_("worker.reply.unsupported"))
        return
    # A refusal (no longer in the team, the case closed) is a domain error: the error router
    # answers it and nothing is sent.
    await services.conversation.worker_reply(worker, reply_case_id, incoming)
    await message.answer(_("worker.write.sent"))


def create_router() -> Router:
    router = Router(name=__name__)
    router.message.register(reply_to_resident, StateFilter(None), ActiveWorker(), RepliesToResident())
    return router
