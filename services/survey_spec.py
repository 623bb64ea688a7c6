"""A survey's definition as YAML: validated whole, then written idempotently by its code.

The same shape comes from the reference file (`surveys:`, seeded by services/reference_data.py)
and from a coordinator who sends a survey's YAML in the chat. A malformed definition is refused
whole with the line and the reason; nothing is written.

    code: needs_2026
    title: {uk: ..., en: ...}
    intro: {uk: ..., en: ...}          # optional
    anonymous: true                     # default
    questions:
      - code: missing
        kind: multi                     # single | multi | scale (1–5) | text
        text: {uk: ..., en: ...}
        options:
          - {code: pharmacy, uk: Аптека, en: Pharmacy}
      - code: mo_useful
        kind: scale
        text: {uk: ..., en: ...}
        if: {question: missing, answers: [pharmacy]}   # asked only after one of these answers
      - code: comment
        kind: text
        required: false                 # may be skipped
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Survey, SurveyQuestion
from models.surveys import SURVEY_DRAFT

SURVEY_CODE_PATTERN = r"^[a-z0-9_\-]{1,40}$"
# Option codes travel in button data (64 bytes in all), so they stay short.
OPTION_CODE_PATTERN = r"^[a-z0-9_]{1,20}$"
MAX_QUESTIONS = 30
MAX_OPTIONS = 12
SCALE_MIN, SCALE_MAX = 1, 5


class SurveySpecError(Exception):
    """The definition cannot be used; the message names the line and the reason (no personal data)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Texts(_Strict):
    uk: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


class Title(_Strict):
    uk: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=200)


class Intro(_Strict):
    uk: str = Field(default="", max_length=1000)
    en: str = Field(default="", max_length=1000)


class OptionSpec(_Strict):
    code: str = Field(pattern=OPTION_CODE_PATTERN)
    # A button's label: short enough to read on a phone.
    uk: str = Field(min_length=1, max_length=60)
    en: str = Field(min_length=1, max_length=60)


class ConditionSpec(_Strict):
    question: str = Field(pattern=OPTION_CODE_PATTERN)
    answers: list[str] = Field(min_length=1)


class QuestionSpec(_Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    code: str = Field(pattern=OPTION_CODE_PATTERN)
    kind: Literal["single", "multi", "scale", "text"]
    text: Texts
    options: list[OptionSpec] = []
    required: bool = True
    condition: ConditionSpec | None = Field(default=None, alias="if")

    @model_validator(mode="after")
    def _options_fit_kind(self) -> QuestionSpec:
        if self.kind in ("single", "multi"):
            if not 2 <= len(self.options) <= MAX_OPTIONS:
                raise ValueError(f"a {self.kind} question needs 2 to {MAX_OPTIONS} options")
            _no_duplicates([o.code for o in self.options], "option code")
        elif self.options:
            raise ValueError(f"a {self.kind} question has no options")
        return self


class SurveySpec(_Strict):
    code: str = Field(pattern=SURVEY_CODE_PATTERN)
    title: Title
    intro: Intro = Intro()
    anonymous: bool = True
    questions: list[QuestionSpec] = Field(min_length=1, max_length=MAX_QUESTIONS)

    @model_validator(mode="after")
    def _conditions_point_back(self) -> SurveySpec:
        _no_duplicates([q.code for q in self.questions], "question code")
        earlier: dict[str, QuestionSpec] = {}
        for question in self.questions:
            condition = question.condition
            if condition is not None:
                source = earlier.get(condition.question)
                if source is None:
                    raise ValueError(
                        f"question {question.code}: `if` must name an earlier question, not "
                        f"{condition.question!r}"
                    )
                if source.kind not in ("single", "multi"):
                    raise ValueError(f"question {question.code}: `if` needs a single or multi question")
                known = {o.code for o in source.options}
                for answer in condition.answers:
                    if answer not in known:
                        raise ValueError(
                            f"question {question.code}: {condition.question} has no option {answer!r}"
                        )
            earlier[question.code] = question
        return self


def _no_duplicates(codes: list[str], what: str) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ValueError(f"duplicate {what} {code!r}")
        seen.add(code)


def parse_survey(text: str, source: str = "survey") -> SurveySpec:
    """One survey from YAML text, or SurveySpecError naming the line and the reason."""

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "unknown line"
        raise SurveySpecError(f"{source}, {where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise SurveySpecError(f"{source}, line 1: a survey is a mapping with code, title, questions")
    try:
        return SurveySpec.model_validate(raw)
    except ValidationError as exc:
        raise SurveySpecError(validation_message(exc, root, source)) from None


def validation_message(exc: ValidationError, root: yaml.Node | None, source: str) -> str:
    error = exc.errors()[0]
    loc = tuple(
        p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal[")))
    )
    line = line_of(root, loc)
    path = ".".join(str(p) for p in loc) or "survey"
    reason = error["msg"].removeprefix("Value error, ")
    return f"{source}, line {line}: {path}: {reason}"


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a line number."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None:
                break
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _question_rows(spec: SurveySpec) -> list[dict[str, Any]]:
    return [
        {
            "code": q.code,
            "position": position,
            "kind": q.kind,
            "text_uk": q.text.uk,
            "text_en": q.text.en,
            "options": [{"code": o.code, "uk": o.uk, "en": o.en} for o in q.options],
            "required": q.required,
            "condition_question": q.condition.question if q.condition else None,
            "condition_options": list(q.condition.answers) if q.condition else [],
        }
        for position, q in enumerate(spec.questions, start=1)
    ]


def _survey_values(spec: SurveySpec) -> dict[str, Any]:
    return {
        "title_uk": spec.title.uk,
        "title_en": spec.title.en,
        "intro_uk": spec.intro.uk,
        "intro_en": spec.intro.en,
        "anonymous": spec.anonymous,
    }


async def apply_survey(
    session: AsyncSession, spec: SurveySpec, *, created_by_user_id: int | None = None
) -> tuple[Survey, bool]:
    """Write the survey (matched by code); returns (survey, changed). Questions of a survey that
    is no longer a draft are never rewritten: answers refer to them. The caller checks who may
    overwrite whose survey."""
    survey = await session.scalar(select(Survey).where(Survey.code == spec.code))
    changed = False
    if survey is None:
        survey = Survey(code=spec.code, created_by_user_id=created_by_user_id, **_survey_values(spec))
        session.add(survey)
        await session.flush()
        changed = True
    elif survey.state == SURVEY_DRAFT:
        for key, value in _survey_values(spec).items():
            if getattr(survey, key) != value:
                setattr(survey, key, value)
                changed = True
    else:
        return survey, False
    wanted = _question_rows(spec)
    existing = (
        await session.scalars(
            select(SurveyQuestion)
            .where(SurveyQuestion.survey_id == survey.id)
            .order_by(SurveyQuestion.position)
        )
    ).all()
    current = [{key: getattr(q, key) for key in wanted[0]} for q in existing]
    if current != wanted:
        await session.execute(delete(SurveyQuestion).where(SurveyQuestion.survey_id == survey.id))
        session.add_all(SurveyQuestion(survey_id=survey.id, **row) for row in wanted)
        await session.flush()
        changed = True
    return survey, changed
