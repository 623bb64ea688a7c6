"""Surveys for coordinators.

/surveys — the surveys, each opens a card: launch, results, close.
/survey_new — then the survey's YAML as the next message (or below the command in the same
message); the same code again replaces the coordinator's own draft. The format is in
services/survey_spec.py and data/sample_reference.yaml; a mistake is answered with its line.
Launch: residents or the mobile office's subscribers → settlements of the coordinator's
hromadas → now, tomorrow at 10:00 or a typed "dd.mm.yyyy HH:MM". Every press is re-checked by
the service (SurveyAdmin): the presser coordinates the hromadas of the settlements chosen.
"""

from __future__ import annotations

import html
from datetime import datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.kit.builders import InlineKeyboardBuilder
from handlers.kit.callbacks import SurveyAdminCb
from handlers.kit.filters import ActiveWorker, NotMenuText, prune_callbacks
from models import Settlement, Survey, User, Worker
from models.surveys import AUDIENCE_RESIDENTS, AUDIENCE_SUBSCRIBERS, SURVEY_ACTIVE, SURVEY_CLOSED
from services.errors import StaleAction
from services.hub import Services
from services.report_tables import ReportTable

MAX_PLACES_SHOWN = 40
MAX_RESULT_ROWS = 60


class SurveyAdminStates(StatesGroup):
    definition = State()  # waiting for the YAML text
    launch = State()  # data: survey_id, audience, settlements
    moment = State()  # data as launch: waiting for "dd.mm.yyyy HH:MM"


# -- screens (pure) --------------------------------------------------------------------------------
def list_screen(surveys: list[Survey], lang: str) -> tuple[str, InlineKeyboardMarkup | None]:
    lines = [_("surveys.coord.title")]
    builder = InlineKeyboardBuilder()
    for survey in surveys:
        state = _(f"surveys.state.{survey.state}")
        lines.append(f"• {html.escape(survey.title(lang))} — {state}")
        builder.button(
            text=survey.title(lang)[:60], callback_data=SurveyAdminCb(action="open", survey_id=survey.id)
        )
    if not surveys:
        lines.append(_("surveys.coord.empty"))
    lines += ["", _("surveys.coord.howto")]
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup() if surveys else None


def card_screen(survey: Survey, lang: str) -> tuple[str, InlineKeyboardMarkup]:
    text = _("surveys.coord.card") % {
        "title": html.escape(survey.title(lang)),
        "code": html.escape(survey.code),
        "state": _(f"surveys.state.{survey.state}"),
        "anonymous": _("surveys.coord.anonymous") if survey.anonymous else _("surveys.coord.named"),
    }
    builder = InlineKeyboardBuilder()
    if survey.state != SURVEY_CLOSED:
        builder.button(
            text=_("surveys.coord.btn_launch"),
            callback_data=SurveyAdminCb(action="launch", survey_id=survey.id),
        )
    builder.button(
        text=_("surveys.coord.btn_results"),
        callback_data=SurveyAdminCb(action="results", survey_id=survey.id),
    )
    if survey.state == SURVEY_ACTIVE:
        builder.button(
            text=_("surveys.coord.btn_close"),
            callback_data=SurveyAdminCb(action="close", survey_id=survey.id),
        )
    builder.adjust(1)
    return text, builder.as_markup()


def launch_screen(
    survey: Survey, audience: str, chosen: set[int], places: list[Settlement], lang: str
) -> tuple[str, InlineKeyboardMarkup]:
    sid = survey.id
    builder = InlineKeyboardBuilder()
    other = AUDIENCE_SUBSCRIBERS if audience == AUDIENCE_RESIDENTS else AUDIENCE_RESIDENTS
    builder.button(
        text=_(f"surveys.coord.audience.{audience}"),
        callback_data=SurveyAdminCb(action="audience", survey_id=sid, value=other),
    )
    for place in places[:MAX_PLACES_SHOWN]:
        mark = "✅" if place.id in chosen else "▫️"
        builder.button(
            text=f"{mark} {place.name(lang)}",
            callback_data=SurveyAdminCb(action="place", survey_id=sid, value=str(place.id)),
        )
    builder.button(
        text=_("surveys.coord.btn_all"),
        callback_data=SurveyAdminCb(action="place", survey_id=sid, value="all"),
    )
    for when in ("now", "tomorrow", "at"):
        builder.button(
            text=_(f"surveys.coord.when.{when}"),
            callback_data=SurveyAdminCb(action="when", survey_id=sid, value=when),
        )
    builder.adjust(1, *([2] * ((min(len(places), MAX_PLACES_SHOWN) + 1) // 2)), 1, 3)
    text = _("surveys.coord.launch") % {"title": html.escape(survey.title(lang)), "n": len(chosen)}
    return text, builder.as_markup()


def results_text(survey: Survey, table: ReportTable, lang: str) -> str:
    lines = [_("surveys.coord.results") % {"title": html.escape(survey.title(lang))}]
    place = question = None
    for row in table.published()[:MAX_RESULT_ROWS]:
        _title, settlement, q_text, answer, count, average = row
        if settlement != place:
            place, question = settlement, None
            lines += [
                "",
                _("surveys.coord.results_place")
                % {"place": html.escape(str(settlement)), "n": html.escape(str(count))},
            ]
            continue
        if q_text != question:
            question = q_text
            lines.append(f"<i>{html.escape(str(q_text))}</i>")
        label = html.escape(str(answer)) if answer is not None else _("surveys.coord.answers")
        extra = f" · ⌀ {average}" if average is not None else ""
        lines.append(f"  {label}: {html.escape(str(count))}{extra}")
    if not table.rows:
        lines.append(_("surveys.coord.no_results"))
    return "\n".join(lines)


# -- handlers --------------------------------------------------------------------------------------
async def show(message: Message, services: Services, user: User, worker: Worker) -> None:
    text, markup = list_screen(await services.survey_admin.surveys_for(worker), user.language or "uk")
    await message.answer(text, reply_markup=markup)


async def new(
    message: Message, command: CommandObject, services: Services, worker: Worker, state: FSMContext
) -> None:
    await services.survey_admin.managed_settlements(worker)
    if command.args and command.args.strip():
        await _define(message, command.args, services, worker, state)
        return
    await state.set_state(SurveyAdminStates.definition)
    await message.answer(_("surveys.coord.send_yaml"))


async def definition(message: Message, services: Services, worker: Worker, state: FSMContext) -> None:
    await _define(message, message.text or "", services, worker, state)


async def _define(message: Message, text: str, services: Services, worker: Worker, state: FSMContext) -> None:
    admin = services.survey_admin
    problem = admin.definition_problem(text)
    if problem is not None:
        # The step stays: the coordinator sends the corrected text.
        await message.answer(_("surveys.coord.bad_yaml") % {"reason": html.escape(problem)})
        return
    survey, questions = await admin.define(worker, text)
    await state.clear()
    await message.answer(_("surveys.coord.defined") % {"title": html.escape(survey.title_uk), "n": questions})


async def on_button(
    query: CallbackQuery,
    callback_data: SurveyAdminCb,
    services: Services,
    user: User,
    worker: Worker,
    state: FSMContext,
    callback_answer: CallbackAnswer,
) -> None:
    message = query.message
    if not isinstance(message, Message):
        raise StaleAction()
    admin, lang, action = services.survey_admin, user.language or "uk", callback_data.action
    await admin.managed_settlements(worker)
    survey = await admin.survey(callback_data.survey_id)
    if action == "open":
        text, markup = card_screen(survey, lang)
        await message.answer(text, reply_markup=markup)
    elif action == "results":
        table = await admin.results(worker, survey.id, lang)
        await message.answer(results_text(survey, table, lang))
    elif action == "close":
        await admin.close(worker, survey.id)
        callback_answer.text = _("surveys.coord.closed")
        await message.edit_reply_markup(reply_markup=None)
    elif action in ("launch", "audience", "place"):
        data = await state.get_data() if action != "launch" else {}
        if action != "launch" and data.get("survey_id") != survey.id:
            raise StaleAction()
        places = await admin.managed_settlements(worker)
        audience = str(data.get("audience", AUDIENCE_RESIDENTS))
        chosen = set(data.get("settlements", []))
        if action == "audience":
            audience = (
                callback_data.value
                if callback_data.value in (AUDIENCE_RESIDENTS, AUDIENCE_SUBSCRIBERS)
                else audience
            )
        elif action == "place":
            ids = {p.id for p in places}
            if callback_data.value == "all":
                chosen = set() if chosen == ids else ids
            elif callback_data.value.isdigit() and int(callback_data.value) in ids:
                chosen ^= {int(callback_data.value)}
            else:
                raise StaleAction()
        await state.set_state(SurveyAdminStates.launch)
        await state.set_data({"survey_id": survey.id, "audience": audience, "settlements": sorted(chosen)})
        text, markup = launch_screen(survey, audience, chosen, places, lang)
        await (
            message.answer(text, reply_markup=markup)
            if action == "launch"
            else message.edit_text(text, reply_markup=markup)
        )
    elif action == "when":
        data = await state.get_data()
        if data.get("survey_id") != survey.id:
            raise StaleAction()
        if callback_data.value == "at":
            await state.set_state(SurveyAdminStates.moment)
            await message.answer(_("surveys.coord.ask_time"))
            return
        moment = admin.tomorrow_morning() if callback_data.value == "tomorrow" else None
        await _launch(message, services, worker, state, data, moment)
    else:
        raise StaleAction()


async def typed_moment(message: Message, services: Services, worker: Worker, state: FSMContext) -> None:
    moment = services.survey_admin.parse_moment(message.text or "")
    await _launch(message, services, worker, state, await state.get_data(), moment)


async def _launch(
    message: Message,
    services: Services,
    worker: Worker,
    state: FSMContext,
    data: dict,
    moment: datetime | None,
) -> None:
    invited = await services.survey_admin.launch(
        worker,
        int(data.get("survey_id", 0)),
        audience=str(data.get("audience", AUDIENCE_RESIDENTS)),
        settlement_ids=[int(i) for i in data.get("settlements", [])],
        send_at=moment,
    )
    await state.clear()
    when = (
        moment.astimezone(services.rules.tz).strftime("%d.%m.%Y %H:%M")
        if moment
        else _("surveys.coord.when.now")
    )
    await message.answer(_("surveys.coord.launched") % {"n": invited, "when": when})


async def not_allowed(message: Message) -> None:
    await message.answer(_("surveys.error.not_allowed"))


def create_router() -> Router:
    router = Router(name=__name__)
    prune_callbacks(router, SurveyAdminCb)
    router.message.register(show, Command("surveys"), ActiveWorker())
    router.message.register(new, Command("survey_new"), ActiveWorker())
    router.message.register(not_allowed, Command("surveys", "survey_new"))
    router.message.register(definition, SurveyAdminStates.definition, NotMenuText(), ActiveWorker())
    router.message.register(typed_moment, SurveyAdminStates.moment, NotMenuText(), ActiveWorker())
    router.callback_query.register(on_button, SurveyAdminCb.filter(), ActiveWorker())
    return router
