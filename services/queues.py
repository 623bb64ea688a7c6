"""Queue pages for workers and coordinators, and the case card's data in few round trips.

Order everywhere: most urgent first, breaching its SLA first within a priority, then longest
waiting (`priority DESC, sla_breached DESC, created_at, id`).
A page for several statuses is one statement: per status an index range scan with LIMIT on
`ix_cases_team_queue` / `ix_cases_assignee_queue` (team|assignee, status, priority DESC,
sla_breached DESC, created_at), merged and cut to the page — so a page costs the same however
long the queue is.
Offset pagination (pages are short and people rarely go past a few pages); each branch only
reads `offset + size` index entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, bindparam, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Attachment,
    Case,
    CaseEvent,
    CaseMessage,
    Hromada,
    Service,
    Team,
    TeamMember,
    Worker,
)
from models.cases import OPEN_STATUSES, STATUSES
from models.people import ROLE_COORDINATOR
from services.clock import Clock
from services.errors import StaleAction
from services.oversight import oversees_hromada
from services.reminders import default_zone
from services.sla import SlaView, sla_views

PAGE_SIZE = 10
# An open case with no event and no message for this many days is "stale" (coordinators' list).
STALE_DAYS = 7
MAX_PAGE = 1000
# What a case card shows: the newest events and messages (the rest goes out as a file).
CARD_EVENTS = 10
CARD_MESSAGES = 5
# A case's whole history as a file: still bounded, a case is not a chat log.
HISTORY_MAX = 2000
# Status filters offered in the worker's menu: "open" = every open status, or one status.
FILTERS = ("open", *STATUSES)


def statuses_for(filter_code: str) -> tuple[str, ...]:
    if filter_code == "open":
        return OPEN_STATUSES
    if filter_code in STATUSES:
        return (filter_code,)
    raise ValueError(f"unknown filter {filter_code!r}")


@dataclass(frozen=True)
class QueueRow:
    id: int
    number: str
    status: str
    priority: int
    service_name_uk: str
    service_name_en: str
    created_at: Any
    # SLA columns (services/sla.py) and the words they make, filled in by the page.
    team_id: int | None = None
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None
    first_responded_at: datetime | None = None
    sla_paused_at: datetime | None = None
    closed_at: datetime | None = None
    sla: SlaView | None = None

    def service_name(self, locale: str) -> str:
        return self.service_name_en if locale == "en" else self.service_name_uk


@dataclass
class Page:
    rows: list[QueueRow]
    page: int
    has_next: bool


@dataclass(frozen=True)
class CardEvent:
    id: int
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    reason: str | None
    actor_user_id: int | None


@dataclass(frozen=True)
class CardMessage:
    id: int
    at: datetime
    from_resident: bool
    text: str


@dataclass
class CaseCard:
    case: Case
    events: list[CardEvent]
    messages: list[CardMessage]
    attachments_count: int
    sla: SlaView | None = None


class QueueService:
    def __init__(self, session: AsyncSession, clock: Clock | None = None, zone: tzinfo | None = None) -> None:
        self.session = session
        self.clock = clock or Clock()
        self.zone = zone or default_zone()

    async def _with_sla(self, rows: list[QueueRow]) -> list[QueueRow]:
        views = await sla_views(
            self.session, [(r.id, r.team_id or 0, r) for r in rows if r.team_id], self.clock, self.zone
        )
        return [replace(r, sla=views.get(r.id)) for r in rows]

    # -- pages -------------------------------------------------------------------------------
    async def _page(self, key: str, value: int, statuses: Sequence[str], page: int, size: int) -> Page:
        page = max(0, min(page, MAX_PAGE))
        params: dict[str, Any] = {
            "key": value,
            "take": (page + 1) * size + 1,  # one more than needed tells whether a next page exists
            "offset": page * size,
            "size": size + 1,
        }
        params.update({f"status{i}": status for i, status in enumerate(statuses)})
        rows = (await self.session.execute(_page_statement(key, len(statuses)), params)).all()
        items = [QueueRow(*row) for row in rows]
        return Page(await self._with_sla(items[:size]), page, len(items) > size)

    async def my_queue(
        self, worker: Worker, filter_code: str = "open", page: int = 0, size: int = PAGE_SIZE
    ) -> Page:
        return await self._page("assignee_worker_id", worker.id, statuses_for(filter_code), page, size)

    async def team_queue(
        self, team_id: int, filter_code: str = "open", page: int = 0, size: int = PAGE_SIZE
    ) -> Page:
        return await self._page("team_id", team_id, statuses_for(filter_code), page, size)

    async def worker_teams(self, worker: Worker) -> list[Team]:
        rows = await self.session.scalars(
            select(Team)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(TeamMember.worker_id == worker.id)
            .order_by(Team.id)
        )
        return list(rows.all())

    async def queue_team(self, worker: Worker, team_id: int = 0) -> tuple[Team | None, list[Team]]:
        """The team whose queue to show (`team_id`, or the worker's first team) and all the
        worker's teams; (None, []) for a worker without a team. A team not theirs: stale."""
        teams = await self.worker_teams(worker)
        if not teams:
            return None, []
        if not team_id:
            return teams[0], teams
        team = next((t for t in teams if t.id == team_id), None)
        if team is None:
            raise StaleAction()
        return team, teams

    async def is_member(self, worker: Worker, team_id: int) -> bool:
        found = await self.session.scalar(
            select(TeamMember.id).where(TeamMember.worker_id == worker.id, TeamMember.team_id == team_id)
        )
        return found is not None

    # -- coordinators ------------------------------------------------------------------------
    async def coordinated_hromadas(self, worker: Worker) -> list[int]:
        """Hromadas whose cases this worker oversees: their coordinated teams' hromadas (all, for
        an admin)."""
        if not worker.active:
            return []
        if worker.is_admin:
            return list((await self.session.scalars(select(Hromada.id).order_by(Hromada.id))).all())
        rows = await self.session.scalars(
            select(Team.hromada_id)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(
                TeamMember.worker_id == worker.id,
                TeamMember.role == ROLE_COORDINATOR,
                oversees_hromada(),
            )
            .distinct()
        )
        return sorted(h for h in rows.all() if h is not None)

    async def _coordinator_page(
        self, worker: Worker, condition: ColumnElement[bool], page: int, size: int
    ) -> Page:
        hromadas = await self.coordinated_hromadas(worker)
        page = max(0, min(page, MAX_PAGE))
        if not hromadas:
            return Page([], page, False)
        rows = (
            await self.session.execute(
                select(
                    Case.id,
                    Case.number,
                    Case.status,
                    Case.priority,
                    Service.name_uk,
                    Service.name_en,
                    Case.created_at,
                    *_SLA_COLUMNS,
                )
                .join(Service, Service.id == Case.service_id)
                .where(Case.hromada_id.in_(hromadas), condition)
                .order_by(Case.created_at, Case.id)
                .offset(page * size)
                .limit(size + 1)
            )
        ).all()
        items = [QueueRow(*row) for row in rows]
        return Page(await self._with_sla(items[:size]), page, len(items) > size)

    async def hromada_cases(
        self, worker: Worker, filter_code: str = "open", page: int = 0, size: int = PAGE_SIZE
    ) -> Page:
        return await self._coordinator_page(worker, Case.status.in_(statuses_for(filter_code)), page, size)

    async def unassigned(self, worker: Worker, page: int = 0, size: int = PAGE_SIZE) -> Page:
        return await self._coordinator_page(
            worker, and_(Case.status.in_(OPEN_STATUSES), Case.assignee_worker_id.is_(None)), page, size
        )

    async def stale(
        self, worker: Worker, days: int = STALE_DAYS, page: int = 0, size: int = PAGE_SIZE
    ) -> Page:
        """Open cases with no event (status change, message, ...) for `days` days."""
        since = self.clock.now() - timedelta(days=days)
        recent = select(literal(1)).where(CaseEvent.case_id == Case.id, CaseEvent.at >= since)
        recent_msg = select(literal(1)).where(CaseMessage.case_id == Case.id, CaseMessage.at >= since)
        return await self._coordinator_page(
            worker,
            and_(
                Case.status.in_(OPEN_STATUSES),
                Case.created_at < since,
                ~recent.exists(),
                ~recent_msg.exists(),
            ),
            page,
            size,
        )

    # -- case card ---------------------------------------------------------------------------
    async def card(self, case: Case, *, events: int = CARD_EVENTS, messages: int = CARD_MESSAGES) -> CaseCard:
        """The newest `events` events and `messages` messages (each oldest first) and the number
        of attachments — one statement (UNION ALL of three index range scans)."""
        statement = _card_statement(events, messages)
        card = CaseCard(case, [], [], 0)
        for row in (await self.session.execute(statement, {"case_id": case.id})).all():
            if row.src == "e":
                card.events.append(
                    CardEvent(
                        row.id, _aware(row.at), row.kind, row.from_status, row.to_status, row.body, row.actor
                    )
                )
            elif row.src == "m":
                card.messages.append(CardMessage(row.id, _aware(row.at), bool(row.from_resident), row.body))
            else:
                card.attachments_count = int(row.id or 0)
        card.sla = (
            await sla_views(self.session, [(case.id, case.team_id, case)], self.clock, self.zone)
        ).get(case.id)
        card.events.sort(key=lambda e: (e.at, e.id))
        card.messages.sort(key=lambda m: (m.at, m.id))
        return card


def _aware(value: Any) -> datetime:
    """A UNION loses the column type's UTC handling on SQLite: restore it."""
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_SLA_COLUMNS = (
    Case.team_id,
    Case.first_response_due_at,
    Case.resolution_due_at,
    Case.first_responded_at,
    Case.sla_paused_at,
    Case.closed_at,
)


# Statements are built once and reused with bound values: building a SQLAlchemy statement of
# this size costs more Python time than running it.


@lru_cache(maxsize=32)
def _page_statement(key: str, statuses: int) -> Any:
    """One queue page: per status an index range scan (key, status, priority DESC, created_at)
    with LIMIT, merged, cut to the page, then the page's rows with their service names."""
    column = getattr(Case, key)
    branches = [
        select(Case.id, Case.priority, Case.sla_breached, Case.created_at)
        .where(column == bindparam("key"), Case.status == bindparam(f"status{i}"))
        .order_by(Case.priority.desc(), Case.sla_breached.desc(), Case.created_at, Case.id)
        .limit(bindparam("take"))
        .subquery()
        for i in range(statuses)
    ]
    merged = (select(branches[0]) if statuses == 1 else union_all(*(select(b) for b in branches))).subquery()
    ids = (
        select(merged.c.id)
        .order_by(merged.c.priority.desc(), merged.c.sla_breached.desc(), merged.c.created_at, merged.c.id)
        .offset(bindparam("offset"))
        .limit(bindparam("size"))
    )
    return (
        select(
            Case.id,
            Case.number,
            Case.status,
            Case.priority,
            Service.name_uk,
            Service.name_en,
            Case.created_at,
            *_SLA_COLUMNS,
        )
        .join(Service, Service.id == Case.service_id)
        .where(Case.id.in_(ids))
        .order_by(Case.priority.desc(), Case.sla_breached.desc(), Case.created_at, Case.id)
    )


@lru_cache(maxsize=8)
def _card_statement(events: int, messages: int) -> Any:
    null_text = null().cast(Text)
    event_rows = (
        select(
            literal("e").label("src"),
            CaseEvent.id.label("id"),
            CaseEvent.at.label("at"),
            CaseEvent.kind.label("kind"),
            CaseEvent.from_status.label("from_status"),
            CaseEvent.to_status.label("to_status"),
            CaseEvent.reason.label("body"),
            literal(False).label("from_resident"),
            CaseEvent.actor_user_id.label("actor"),
        )
        .where(CaseEvent.case_id == bindparam("case_id"))
        .order_by(CaseEvent.at.desc())
        .limit(events)
        .subquery()
    )
    message_rows = (
        select(
            literal("m").label("src"),
            CaseMessage.id.label("id"),
            CaseMessage.at.label("at"),
            null_text.label("kind"),
            null_text.label("from_status"),
            null_text.label("to_status"),
            CaseMessage.text.label("body"),
            CaseMessage.from_resident.label("from_resident"),
            CaseMessage.author_user_id.label("actor"),
        )
        .where(CaseMessage.case_id == bindparam("case_id"))
        .order_by(CaseMessage.at.desc())
        .limit(messages)
        .subquery()
    )
    attachment_count = select(
        literal("a").label("src"),
        func.count(Attachment.id).label("id"),
        null().cast(CaseEvent.at.type).label("at"),
        null_text.label("kind"),
        null_text.label("from_status"),
        null_text.label("to_status"),
        null_text.label("body"),
        literal(False).label("from_resident"),
        null().cast(CaseEvent.actor_user_id.type).label("actor"),
    ).where(Attachment.case_id == bindparam("case_id"))
    return union_all(select(event_rows), select(message_rows), attachment_count)
