"""Coordinators keep their teams' saved replies: list, add (language, title, text), add the
other language's version, change a text, delete. `/replies` or the panel's button.

Every press and every typed step is re-checked by services/reply_book.py (the presser
coordinates the template's team) and audited there. A text naming an unknown `{placeholder}`
is refused with the list of known ones, and the step stays for a corrected text."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.coordinator import replies_screens as screens
from handlers.kit.callbacks import ReplyAdminCb
from handlers.kit.filters import Action, ActiveWorker, NotCommand, PlainText, prune_callbacks
from handlers.kit.messages import edit_or_send
from models import SavedReply, Worker
from services.errors import DomainError
from services.hub import Services
from services.saved_replies import ReplyError, check_title
from services.workers import NotCoordinator


class ReplyForm(StatesGroup):
    title = State()  # data: team_id, locale, code (None: a new template)
    text = State()  # data: as title plus title; or reply_id (changing a text)
    rename = State()  # data: reply_id (a new title for that version)


def _message(query: CallbackQuery) -> Message | None:
    return query.message if isinstance(query.message, Message) else None


def _said(error: DomainError) -> str:
    text = _(error.message_key)
    return text % error.params if error.params else text


async def _show_book(target: Message, services: Services, worker: Worker, team_id: int, locale: str) -> None:
    team = await services.replies.managed_team(worker, team_id)
    text, markup = screens.book_screen(team, await services.replies.templates(team.id), locale)
    await target.answer(text, reply_markup=markup)


async def _show_teams(target: Message, services: Services, worker: Worker, locale: str) -> None:
    teams = await services.replies.teams(worker)
    if len(teams) == 1:
        await _show_book(target, services, worker, teams[0].id, locale)
        return
    text, markup = screens.teams_screen(teams, locale)
    await target.answer(text, reply_markup=markup)


async def replies_command(message: Message, services: Services, worker: Worker, i18n: I18n) -> None:
    await _show_teams(message, services, worker, i18n.current_locale)


async def not_a_coordinator(event: object) -> None:
    raise NotCoordinator()


async def teams(query: CallbackQuery, services: Services, worker: Worker, i18n: I18n) -> None:
    if (message := _message(query)) is not None:
        await _show_teams(message, services, worker, i18n.current_locale)


async def team(
    query: CallbackQuery, callback_data: ReplyAdminCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    await services.replies.managed_team(worker, callback_data.team_id)
    if (message := _message(query)) is not None:
        await _show_book(message, services, worker, callback_data.team_id, i18n.current_locale)


async def add(query: CallbackQuery, callback_data: ReplyAdminCb, services: Services, worker: Worker) -> None:
    team = await services.replies.managed_team(worker, callback_data.team_id)
    if (message := _message(query)) is not None:
        text, markup = screens.locale_screen(team.id)
        await message.answer(text, reply_markup=markup)


async def new(
    query: CallbackQuery, callback_data: ReplyAdminCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    """A language chosen for a new template (or, `translate`, for another version of one)."""
    code: str | None = None
    team_id = callback_data.team_id
    if callback_data.action == "translate":
        owner, template = await services.replies.managed_template(worker, callback_data.reply_id)
        team_id, code = owner.id, template.code
    else:
        await services.replies.managed_team(worker, team_id)
    if callback_data.locale not in screens.LOCALES:
        raise ReplyError("bad_locale")
    await state.set_state(ReplyForm.title)
    await state.set_data({"team_id": team_id, "locale": callback_data.locale, "code": code})
    if (message := _message(query)) is not None:
        await message.answer(screens.ask_title(callback_data.locale))


async def _template_screen(
    services: Services, worker: Worker, reply_id: int, locale: str
) -> tuple[str, InlineKeyboardMarkup]:
    owner, template = await services.replies.managed_template(worker, reply_id)
    first = (await services.replies.templates(owner.id))[0].code == template.code
    return screens.template_screen(owner, template, locale, first=first)


async def open_template(
    query: CallbackQuery, callback_data: ReplyAdminCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    text, markup = await _template_screen(services, worker, callback_data.reply_id, i18n.current_locale)
    if (message := _message(query)) is not None:
        await message.answer(text, reply_markup=markup)


async def _ask_about_version(
    services: Services, worker: Worker, state: FSMContext, step: State, reply_id: int
) -> SavedReply:
    """Checked (the presser keeps the template's team), then the step that changes one
    language's version; returns that version for the prompt."""
    _, template = await services.replies.managed_template(worker, reply_id)
    version = next(v for v in template.versions.values() if v.id == reply_id)
    await state.set_state(step)
    await state.set_data({"reply_id": version.id})
    return version


async def rename(
    query: CallbackQuery, callback_data: ReplyAdminCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    version = await _ask_about_version(services, worker, state, ReplyForm.rename, callback_data.reply_id)
    if (message := _message(query)) is not None:
        await message.answer(screens.ask_new_title(version.locale, version.title))


async def _refused(message: Message, state: FSMContext, error: DomainError) -> None:
    """A title or text to correct (unknown placeholder, too long: `ReplyError`, nothing written)
    keeps the step; anything else (no longer theirs to change) ends it, answered here so the
    clear is kept."""
    if not isinstance(error, ReplyError):
        await state.set_state(None)
    await message.answer(_said(error))


async def _saved(
    message: Message, state: FSMContext, services: Services, worker: Worker, reply_id: int, locale: str
) -> None:
    await state.set_state(None)
    await message.answer(_("replies.admin.saved"))
    text, markup = await _template_screen(services, worker, reply_id, locale)
    await message.answer(text, reply_markup=markup)


async def rename_step(
    message: Message, state: FSMContext, services: Services, worker: Worker, i18n: I18n
) -> None:
    reply_id = int((await state.get_data()).get("reply_id") or 0)
    try:
        await services.replies.rename(worker, reply_id, message.text or "")
    except DomainError as error:
        await _refused(message, state, error)
        return
    await _saved(message, state, services, worker, reply_id, i18n.current_locale)


async def move_up(
    query: CallbackQuery, callback_data: ReplyAdminCb, services: Services, worker: Worker, i18n: I18n
) -> None:
    """One place up; the list is shown again so the coordinator sees the new order."""
    owner, _template = await services.replies.managed_template(worker, callback_data.reply_id)
    templates = await services.replies.move_up(worker, callback_data.reply_id)
    text, markup = screens.book_screen(owner, templates, i18n.current_locale)
    await edit_or_send(query, text, markup)


async def edit(
    query: CallbackQuery, callback_data: ReplyAdminCb, services: Services, worker: Worker, state: FSMContext
) -> None:
    version = await _ask_about_version(services, worker, state, ReplyForm.text, callback_data.reply_id)
    if (message := _message(query)) is not None:
        await message.answer(screens.ask_text(version.text))


async def delete(
    query: CallbackQuery,
    callback_data: ReplyAdminCb,
    services: Services,
    worker: Worker,
    i18n: I18n,
    callback_answer: CallbackAnswer,
) -> None:
    owner, _template = await services.replies.managed_template(worker, callback_data.reply_id)
    await services.replies.delete(worker, callback_data.reply_id)
    callback_answer.text = _("replies.admin.deleted")
    if (message := _message(query)) is not None:
        await message.edit_reply_markup(reply_markup=None)
        await _show_book(message, services, worker, owner.id, i18n.current_locale)


async def title_step(message: Message, state: FSMContext) -> None:
    try:
        title = check_title(message.text)
    except ReplyError as error:  # the step stays for a better title
        await message.answer(_said(error))
        return
    await state.update_data(title=title)
    await state.set_state(ReplyForm.text)
    await message.answer(screens.ask_text())


async def text_step(
    message: Message, state: FSMContext, services: Services, worker: Worker, i18n: I18n
) -> None:
    data: dict[str, Any] = await state.get_data()
    book = services.replies
    try:
        if data.get("reply_id"):
            row = await book.edit_text(worker, int(data["reply_id"]), message.text or "")
        else:
            row = await book.add(
                worker,
                int(data["team_id"]),
                str(data["locale"]),
                str(data.get("title") or ""),
                message.text or "",
                code=data.get("code"),
            )
    except DomainError as error:
        await _refused(message, state, error)
        return
    await _saved(message, state, services, worker, row.id, i18n.current_locale)


async def text_required(message: Message) -> None:
    await message.answer(_("replies.text_only"))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, ReplyAdminCb)
    router.message.register(replies_command, Command("replies"), ActiveWorker())
    router.message.register(not_a_coordinator, Command("replies"))
    presses = router.callback_query
    presses.register(teams, Action(ReplyAdminCb, "teams"), ActiveWorker())
    presses.register(team, Action(ReplyAdminCb, "team"), ActiveWorker())
    presses.register(add, Action(ReplyAdminCb, "add"), ActiveWorker())
    presses.register(new, Action(ReplyAdminCb, "new", "translate"), ActiveWorker())
    presses.register(open_template, Action(ReplyAdminCb, "open"), ActiveWorker())
    presses.register(edit, Action(ReplyAdminCb, "edit"), ActiveWorker())
    presses.register(delete, Action(ReplyAdminCb, "delete"), ActiveWorker())
    presses.register(rename, Action(ReplyAdminCb, "rename"), ActiveWorker())
    presses.register(move_up, Action(ReplyAdminCb, "up"), ActiveWorker())
    presses.register(not_a_coordinator, ReplyAdminCb.filter())
    steps = StateFilter(ReplyForm.title, ReplyForm.text, ReplyForm.rename)
    router.message.register(title_step, StateFilter(ReplyForm.title), PlainText(), ActiveWorker())
    router.message.register(text_step, StateFilter(ReplyForm.text), PlainText(), ActiveWorker())
    router.message.register(rename_step, StateFilter(ReplyForm.rename), PlainText(), ActiveWorker())
    router.message.register(text_required, steps, NotCommand())
    return router
