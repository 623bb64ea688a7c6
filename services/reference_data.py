"""Reference data from a YAML file: validated whole, then applied idempotently.

A malformed file is refused whole with the line and the reason, and nothing is written.
Rows are matched by `code`; a changed file updates rows, the same file twice changes nothing.
Routing rules and checklists are replaced by exactly what the file says; hromadas, services
and teams missing from the file are kept (cases refer to them).

Hromadas and settlements may carry their official KATOTTG code (`katottg:`); a row with that
code already in the database (loaded from the codifier, services/places.py) is the same row.
Teams and routing rules may name a hromada or settlement by its KATOTTG code instead of ours:
such a code is looked up in the database when the file is applied.

A team's `saved_replies` are samples: a missing one is created, one already there is left as the
team's coordinators keep it (changed or deleted), so seeding never undoes their work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    ApplicationStatus,
    ApplicationStatusAlias,
    Base,
    DocumentRequirement,
    Hromada,
    PartnerAgency,
    RoutingRule,
    SavedReply,
    Service,
    Settlement,
    Team,
)
from services.errors import DomainError
from services.places import KATOTTG_PATTERN, hromada_search_key, is_katottg, search_key
from services.saved_replies import check_text, check_title
from services.sla_reference import CalendarSpec, SlaSpec, WeekSpec, apply_sla_reference, checked_week
from services.survey_spec import SurveySpec, apply_survey
from services.survey_spec import line_of as _line_of

ServiceGroup = Literal["social_assistance", "care", "children", "idp", "employment", "humanitarian"]
SERVICE_GROUPS: tuple[str, ...] = get_args(ServiceGroup)
CODE_PATTERN = r"^[a-z0-9_\-]+$"


class ReferenceDataError(Exception):
    """The file cannot be loaded; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Names(_Strict):
    uk: str = Field(min_length=1, max_length=300)
    en: str = Field(min_length=1, max_length=300)


class DocumentSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN, max_length=40)
    name: Names


class ServiceSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN, max_length=40)
    group: ServiceGroup
    name: Names
    description: Names | None = None
    sensitive: bool = False
    renewal_days: int | None = Field(default=None, ge=1, le=3650)
    documents: list[DocumentSpec] = []

    @model_validator(mode="after")
    def _unique_documents(self) -> ServiceSpec:
        _no_duplicates([d.code for d in self.documents], "document code")
        return self


class SettlementSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN, max_length=40)
    name: Names
    katottg: str | None = Field(default=None, pattern=KATOTTG_PATTERN.pattern)
    starosta_district: str | None = Field(default=None, max_length=120)


class HromadaSpec(_Strict):
    code: str = Field(pattern=r"^[A-Z]{2,8}$")
    name: Names
    oblast: str = Field(pattern=CODE_PATTERN, max_length=40)
    katottg: str | None = Field(default=None, pattern=KATOTTG_PATTERN.pattern)
    accepts_requests: bool = True
    settlements: list[SettlementSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_settlements(self) -> HromadaSpec:
        _no_duplicates([s.code for s in self.settlements], "settlement code")
        return self


class ReplyVersion(_Strict):
    title: str
    text: str

    @model_validator(mode="after")
    def _valid(self) -> ReplyVersion:
        try:
            self.title, self.text = check_title(self.title), check_text(self.text)
        except DomainError as error:
            raise ValueError(f"saved reply: {error.code} {error.params or ''}".strip()) from None
        return self


class ReplySpec(_Strict):
    """A sample saved reply of a team, in one or both languages."""

    code: str = Field(pattern=CODE_PATTERN, max_length=40)
    uk: ReplyVersion | None = None
    en: ReplyVersion | None = None

    @model_validator(mode="after")
    def _some_language(self) -> ReplySpec:
        if self.uk is None and self.en is None:
            raise ValueError(f"saved reply {self.code}: needs `uk` or `en`")
        return self


class TeamSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN, max_length=40)
    name: Names
    hromada: str | None = None
    oblast: str | None = Field(default=None, pattern=CODE_PATTERN)
    fallback: bool = False
    group_chat_id: int | None = None
    office_address: Names | None = None
    office_hours: Names | None = None
    saved_replies: list[ReplySpec] = []
    # The team's own office hours (else the calendar's week).
    hours: WeekSpec | None = None

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: Any) -> Any:
        return None if value is None else checked_week(value)

    @model_validator(mode="after")
    def _owner(self) -> TeamSpec:
        if self.fallback and not self.oblast:
            raise ValueError("an oblast fallback team needs `oblast`")
        if not self.fallback and not self.hromada:
            raise ValueError("a team needs `hromada` (or `fallback: true` with `oblast`)")
        _no_duplicates([r.code for r in self.saved_replies], "saved reply code")
        return self


class RuleSpec(_Strict):
    kind: Literal["own", "delegation", "fallback"]
    team: str
    hromada: str | None = None
    oblast: str | None = None
    services: list[str] | Literal["*"] = "*"
    settlements: list[str] | None = None

    @model_validator(mode="after")
    def _shape(self) -> RuleSpec:
        if self.kind == "fallback":
            if not self.oblast or self.hromada:
                raise ValueError("a fallback rule names `oblast` and no `hromada`")
        elif not self.hromada:
            raise ValueError(f"an `{self.kind}` rule needs `hromada`")
        return self


class PartnerSpec(_Strict):
    """A partner agency cases may be referred to: a team in the bot, or external with a contact."""

    code: str = Field(pattern=CODE_PATTERN, max_length=40)
    name: Names
    kind: Literal["in_bot", "external"]
    team: str | None = None
    contact: Names | None = None
    oblast: str = Field(pattern=CODE_PATTERN, max_length=40)
    hromadas: list[str] = []  # empty: the whole oblast
    services: list[str] = []  # empty: any service
    remind_after_hours: int | None = Field(default=None, ge=1, le=2000)
    escalate_after_hours: int | None = Field(default=None, ge=1, le=4000)

    @model_validator(mode="after")
    def _shape(self) -> PartnerSpec:
        if self.kind == "in_bot" and not self.team:
            raise ValueError("an in_bot partner names its `team`")
        if self.kind == "external" and (self.team or self.contact is None):
            raise ValueError("an external partner has a `contact` and no `team`")
        return self


class StatusSpec(_Strict):
    code: str = Field(pattern=CODE_PATTERN, max_length=40)
    label: Names
    next_step: Names | None = None
    final: bool = False
    aliases: list[str] = []

    @field_validator("aliases", mode="before")
    @classmethod
    def _as_strings(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value


class ReferenceFile(_Strict):
    services: list[ServiceSpec] = Field(min_length=1)
    hromadas: list[HromadaSpec] = Field(min_length=1)
    teams: list[TeamSpec] = Field(min_length=1)
    routing: list[RuleSpec] = []
    application_statuses: list[StatusSpec] = []
    partners: list[PartnerSpec] = []
    surveys: list[SurveySpec] = []
    calendar: CalendarSpec | None = None
    sla: list[SlaSpec] = []

    @model_validator(mode="after")
    def _references(self) -> ReferenceFile:
        _no_duplicates([s.code for s in self.services], "service code")
        _no_duplicates([h.code for h in self.hromadas], "hromada code")
        _no_duplicates([h.katottg for h in self.hromadas if h.katottg], "hromada katottg")
        _no_duplicates(
            [s.katottg for h in self.hromadas for s in h.settlements if s.katottg], "settlement katottg"
        )
        _no_duplicates([t.code for t in self.teams], "team code")
        _no_duplicates([f"{p.service}:{p.priority}" for p in self.sla], "sla policy (service, priority)")
        for policy in self.sla:
            if policy.service not in {s.code for s in self.services}:
                raise ValueError(f"sla: unknown service {policy.service!r}")
        _no_duplicates([s.code for s in self.application_statuses], "status code")
        _no_duplicates([s.code for s in self.surveys], "survey code")
        _no_duplicates([a.casefold() for s in self.application_statuses for a in s.aliases], "status alias")
        hromadas = {h.code: h for h in self.hromadas}
        services = {s.code for s in self.services}
        teams = {t.code for t in self.teams}
        _no_duplicates([p.code for p in self.partners], "partner code")
        for partner in self.partners:
            if partner.team and partner.team not in teams:
                raise ValueError(f"partner {partner.code}: unknown team {partner.team!r}")
            for code in partner.hromadas:
                if code not in hromadas:
                    raise ValueError(f"partner {partner.code}: unknown hromada {code!r}")
            for code in partner.services:
                if code not in services:
                    raise ValueError(f"partner {partner.code}: unknown service {code!r}")
        for team in self.teams:
            if team.hromada and team.hromada not in hromadas and not is_katottg(team.hromada):
                raise ValueError(f"team {team.code}: unknown hromada {team.hromada!r}")
        for rule in self.routing:
            if rule.team not in teams:
                raise ValueError(f"routing rule: unknown team {rule.team!r}")
            if rule.hromada and rule.hromada not in hromadas and not is_katottg(rule.hromada):
                raise ValueError(f"routing rule: unknown hromada {rule.hromada!r}")
            if rule.services != "*":
                for code in rule.services:
                    if code not in services:
                        raise ValueError(f"routing rule: unknown service {code!r}")
            if rule.settlements:
                if not rule.hromada:
                    raise ValueError("routing rule: `settlements` need `hromada`")
                spec = hromadas.get(rule.hromada)
                known = {s.code for s in spec.settlements} if spec else set()
                for code in rule.settlements:
                    # A KATOTTG code, or any settlement of a hromada named by KATOTTG code, is
                    # checked against the database when the file is applied.
                    if code not in known and not is_katottg(code) and spec is not None:
                        raise ValueError(f"routing rule: hromada {rule.hromada} has no settlement {code!r}")
        return self


def _no_duplicates(codes: list[str], what: str) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ValueError(f"duplicate {what} {code!r}")
        seen.add(code)


# -- parsing with line numbers --------------------------------------------------------------


_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_reference(text: str, source: str = "<reference>") -> ReferenceFile:
    try:
        # libyaml's loader when present: the reference file is seeded at every start (and
        # before every test); the node tree with line numbers is built only to explain an error.
        raw = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "unknown line"
        raise ReferenceDataError(
            f"{source}, {where}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(raw, dict):
        raise ReferenceDataError(
            f"{source}, line 1: the file must be a mapping with services, hromadas, teams"
        )
    try:
        return ReferenceFile.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        root = yaml.compose(text, Loader=_SAFE_LOADER)
        loc = tuple(
            p for p in error["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal[")))
        )
        line = _line_of(root, loc)
        path = ".".join(str(p) for p in loc) or "file"
        reason = error["msg"].removeprefix("Value error, ")
        raise ReferenceDataError(f"{source}, line {line}: {path}: {reason}") from None


# -- applying --------------------------------------------------------------------------------


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, bucket: dict[str, int], what: str, n: int = 1) -> None:
        bucket[what] = bucket.get(what, 0) + n

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values()) or any(self.removed.values())

    def summary(self) -> str:
        def fmt(bucket: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(bucket.items()) if v) or "nothing"

        return f"created: {fmt(self.created)}; updated: {fmt(self.updated)}; removed: {fmt(self.removed)}"


def _assign(row: Any, values: dict[str, Any], report: LoadReport, what: str) -> None:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        report.count(report.updated, what)


_Row = TypeVar("_Row", bound=Base)


async def _upsert(
    session: AsyncSession,
    model: type[_Row],
    where: dict[str, Any],
    values: dict[str, Any],
    report: LoadReport,
    what: str,
) -> _Row:
    row = await session.scalar(select(model).filter_by(**where))
    if row is None:
        row = model(**{**where, **values})
        session.add(row)
        await session.flush()
        report.count(report.created, what)
    else:
        _assign(row, values, report, what)
    return row


async def apply_reference(session: AsyncSession, spec: ReferenceFile) -> LoadReport:
    """Write the file's content in the caller's transaction (the caller commits or rolls back)."""
    report = LoadReport()
    service_ids: dict[str, int] = {}
    for position, s in enumerate(spec.services):
        description = s.description or Names(uk="-", en="-")
        service = await _upsert(
            session,
            Service,
            {"code": s.code},
            {
                "group_code": s.group,
                "name_uk": s.name.uk,
                "name_en": s.name.en,
                "description_uk": "" if s.description is None else description.uk,
                "description_en": "" if s.description is None else description.en,
                "sensitive": s.sensitive,
                "renewal_days": s.renewal_days,
                "position": position,
            },
            report,
            "services",
        )
        service_ids[s.code] = service.id
        wanted = {d.code for d in s.documents}
        for doc_position, d in enumerate(s.documents):
            await _upsert(
                session,
                DocumentRequirement,
                {"service_id": service.id, "code": d.code},
                {"name_uk": d.name.uk, "name_en": d.name.en, "position": doc_position},
                report,
                "documents",
            )
        # A DELETE's result is a CursorResult (it has rowcount); Session.execute is typed for SELECTs.
        stale = cast(
            "CursorResult[Any]",
            await session.execute(
                delete(DocumentRequirement).where(
                    DocumentRequirement.service_id == service.id,
                    DocumentRequirement.code.not_in(wanted or {""}),
                )
            ),
        )
        if stale.rowcount:
            report.count(report.removed, "documents", stale.rowcount)

    hromada_ids: dict[str, int] = {}
    settlement_ids: dict[tuple[str, str], int] = {}
    oblast_of: dict[str, str] = {}
    for h in spec.hromadas:
        hromada_where: dict[str, Any] = {"code": h.code}
        if h.katottg:
            # The codifier may have written this hromada already (under a generated code).
            by_code = await session.scalar(select(Hromada.id).where(Hromada.katottg == h.katottg))
            if by_code is not None:
                hromada_where = {"id": by_code}
        hromada = await _upsert(
            session,
            Hromada,
            hromada_where,
            {
                "code": h.code,
                "name_uk": h.name.uk,
                "name_en": h.name.en,
                "oblast": h.oblast,
                "accepts_requests": h.accepts_requests,
                "katottg": h.katottg,
                "search_key": hromada_search_key(h.name.uk, h.name.en),
            },
            report,
            "hromadas",
        )
        hromada_ids[h.code] = hromada.id
        oblast_of[h.code] = h.oblast
        if h.katottg:
            hromada_ids[h.katottg] = hromada.id
            oblast_of[h.katottg] = h.oblast
        for st in h.settlements:
            settlement_where: dict[str, Any] = {"hromada_id": hromada.id, "code": st.code}
            if st.katottg:
                found = await session.scalar(select(Settlement.id).where(Settlement.katottg == st.katottg))
                if found is not None:
                    settlement_where = {"id": found}
            settlement = await _upsert(
                session,
                Settlement,
                settlement_where,
                {
                    "hromada_id": hromada.id,
                    "code": st.code,
                    "name_uk": st.name.uk,
                    "name_en": st.name.en,
                    "starosta_district": st.starosta_district,
                    "katottg": st.katottg,
                    "search_key": search_key(st.name.uk),
                },
                report,
                "settlements",
            )
            settlement_ids[(h.code, st.code)] = settlement.id
            if st.katottg:
                settlement_ids[(h.code, st.katottg)] = settlement.id
                if h.katottg:
                    settlement_ids[(h.katottg, st.katottg)] = settlement.id
                    settlement_ids[(h.katottg, st.code)] = settlement.id

    # Teams and rules may name hromadas (and settlements) by KATOTTG code that only the
    # database knows (loaded from the codifier).
    refs = {t.hromada for t in spec.teams if t.hromada} | {r.hromada for r in spec.routing if r.hromada}
    for ref in sorted(refs - hromada_ids.keys()):
        row = await session.scalar(select(Hromada).where(Hromada.katottg == ref))
        if row is None:
            raise ReferenceDataError(
                f"no hromada with KATOTTG code {ref} (load its oblast from the codifier)"
            )
        hromada_ids[ref], oblast_of[ref] = row.id, row.oblast
    for r in spec.routing:
        for code in r.settlements or []:
            if r.hromada and (r.hromada, code) not in settlement_ids:
                found = await session.scalar(
                    select(Settlement.id).where(
                        Settlement.katottg == code, Settlement.hromada_id == hromada_ids[r.hromada]
                    )
                )
                if found is None:
                    raise ReferenceDataError(f"routing rule: hromada {r.hromada} has no settlement {code!r}")
                settlement_ids[(r.hromada, code)] = found

    team_ids: dict[str, int] = {}
    for t in spec.teams:
        address = t.office_address
        team = await _upsert(
            session,
            Team,
            {"code": t.code},
            {
                "name_uk": t.name.uk,
                "name_en": t.name.en,
                "hromada_id": hromada_ids[t.hromada] if t.hromada else None,
                "oblast": t.oblast or oblast_of[t.hromada or ""],
                "is_oblast_fallback": t.fallback,
                "group_chat_id": t.group_chat_id,
                "office_address_uk": address.uk if address else "",
                "office_address_en": address.en if address else "",
                "office_hours_uk": t.office_hours.uk if t.office_hours else "",
                "office_hours_en": t.office_hours.en if t.office_hours else "",
            },
            report,
            "teams",
        )
        team_ids[t.code] = team.id
        await _seed_replies(session, team.id, t.saved_replies, report)

    # Routing rules: exactly the file's set (one row per rule × service × settlement).
    wanted_rules: set[tuple[Any, ...]] = set()
    for r in spec.routing:
        oblast = r.oblast if r.kind == "fallback" else oblast_of[r.hromada or ""]
        hromada_id = hromada_ids[r.hromada] if r.hromada else None
        services: list[int | None] = [None] if r.services == "*" else [service_ids[c] for c in r.services]
        settlements: list[int | None] = (
            [settlement_ids[(r.hromada or "", c)] for c in r.settlements] if r.settlements else [None]
        )
        for service_id in services:
            for settlement_id in settlements:
                wanted_rules.add((r.kind, oblast, hromada_id, service_id, settlement_id, team_ids[r.team]))
    existing = {
        (x.kind, x.oblast, x.hromada_id, x.service_id, x.settlement_id, x.team_id): x
        for x in (await session.scalars(select(RoutingRule))).all()
    }
    for key in wanted_rules - existing.keys():
        kind, oblast, hromada_id, service_id, settlement_id, team_id = key
        session.add(
            RoutingRule(
                kind=kind,
                oblast=oblast,
                hromada_id=hromada_id,
                service_id=service_id,
                settlement_id=settlement_id,
                team_id=team_id,
                active=True,
            )
        )
        report.count(report.created, "routing_rules")
    for key, rule in existing.items():
        if key not in wanted_rules:
            await session.delete(rule)
            report.count(report.removed, "routing_rules")
        elif not rule.active:
            rule.active = True
            report.count(report.updated, "routing_rules")

    for status in spec.application_statuses:
        next_step = status.next_step
        await _upsert(
            session,
            ApplicationStatus,
            {"code": status.code},
            {
                "label_uk": status.label.uk,
                "label_en": status.label.en,
                "next_step_uk": next_step.uk if next_step else "",
                "next_step_en": next_step.en if next_step else "",
                "final": status.final,
            },
            report,
            "application_statuses",
        )
        for alias in {status.code, *status.aliases}:
            await _upsert(
                session,
                ApplicationStatusAlias,
                {"alias": alias.strip().casefold()},
                {"status_code": status.code},
                report,
                "status_aliases",
            )
    for p in spec.partners:
        contact = p.contact
        await _upsert(
            session,
            PartnerAgency,
            {"code": p.code},
            {
                "name_uk": p.name.uk,
                "name_en": p.name.en,
                "kind": p.kind,
                "team_id": team_ids[p.team] if p.team else None,
                "contact_uk": contact.uk if contact else "",
                "contact_en": contact.en if contact else "",
                "oblast": p.oblast,
                "hromadas": list(p.hromadas),
                "services": list(p.services),
                "remind_after_hours": p.remind_after_hours,
                "escalate_after_hours": p.escalate_after_hours,
                "active": True,
            },
            report,
            "partners",
        )
    for survey_spec in spec.surveys:
        # A survey already launched keeps its questions (answers refer to them).
        _survey, changed = await apply_survey(session, survey_spec)
        if changed:
            report.count(report.updated, "surveys")
    sla_changes = await apply_sla_reference(
        session,
        spec.calendar,
        {t.code: t.hours for t in spec.teams if t.hours},
        spec.sla,
        service_ids,
        team_ids,
    )
    for what, n in sla_changes.items():
        if n:
            report.count(report.updated, what, n)
    await session.flush()
    return report


async def _seed_replies(
    session: AsyncSession, team_id: int, replies: list[ReplySpec], report: LoadReport
) -> None:
    """Create the sample replies a team lacks; rows already there (even deleted) stay as they are."""
    rows = await session.execute(
        select(SavedReply.code, SavedReply.locale).where(SavedReply.team_id == team_id)
    )
    existing = {(code, locale) for code, locale in rows.all()}
    for position, reply in enumerate(replies, start=1):
        for locale, version in (("uk", reply.uk), ("en", reply.en)):
            if version is None or (reply.code, locale) in existing:
                continue
            session.add(
                SavedReply(
                    team_id=team_id,
                    code=reply.code,
                    locale=locale,
                    title=version.title,
                    text=version.text,
                    position=position,
                    active=True,
                )
            )
            report.count(report.created, "saved_replies")


async def load_reference_file(session: AsyncSession, path: Path) -> LoadReport:
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    spec = parse_reference(text, source=str(path))
    return await apply_reference(session, spec)
