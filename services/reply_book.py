"""A team's book of saved replies: coordinators keep it, workers fill a template for a case.

No aiogram. Managing is for coordinators of the team (or an admin), checked on every call with
the row's own team — a forged id of another team's template is refused like a missing one. Every
change is audited (`audit_log`: ids, code and locale only). Using a template is for members of
the case's team on an open case (`CaseActions.member_open_case`, the guard of writing to the
resident); the filled text is then sent by the caller through `CaseActions.relay_to_resident`,
the one path of a team's message to a resident. Nothing here commits.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEntry, Case, DocumentRequest, SavedReply, Team, Worker
from services.case_actions import CaseActions
from services.clock import Clock
from services.errors import StaleAction
from services.saved_replies import (
    Filled,
    ReplyError,
    ReplyValues,
    check_locale,
    check_text,
    check_title,
    fill,
    pick_version,
    resident_locale,
)
from services.workers import NotCoordinator, WorkerService

# A team keeps a short list: a worker picks from buttons.
MAX_TEMPLATES = 30


@dataclass
class Template:
    """One template of a team: its versions by locale (one row each)."""

    code: str
    versions: dict[str, SavedReply] = field(default_factory=dict)

    @property
    def first(self) -> SavedReply:
        return min(self.versions.values(), key=lambda row: row.id)

    def title(self, locale: str) -> str:
        picked = pick_version(self.versions, locale)
        return picked[1].title if picked else ""


class ReplyBook:
    def __init__(self, session: AsyncSession, clock: Clock, tz: tzinfo) -> None:
        self.session = session
        self.clock = clock
        self.tz = tz

    # -- reading -------------------------------------------------------------------------------
    async def templates(self, team_id: int) -> list[Template]:
        """The team's active templates in their order, each with its language versions."""
        rows = await self.session.scalars(
            select(SavedReply)
            .where(SavedReply.team_id == team_id, SavedReply.active.is_(True))
            .order_by(SavedReply.position, SavedReply.id)
        )
        book: dict[str, Template] = {}
        for row in rows.all():
            book.setdefault(row.code, Template(row.code)).versions[row.locale] = row
        return list(book.values())

    async def _template_of_row(self, reply_id: int) -> tuple[SavedReply, Template]:
        row = await self.session.get(SavedReply, reply_id)
        if row is None or not row.active:
            raise StaleAction()
        template = next((t for t in await self.templates(row.team_id) if t.code == row.code), None)
        if template is None:
            raise StaleAction()
        return row, template

    # -- coordinators --------------------------------------------------------------------------
    async def teams(self, worker: Worker) -> list[Team]:
        """The teams whose templates this worker keeps; NotCoordinator when none."""
        teams = await WorkerService(self.session).manageable_teams(worker)
        if not teams:
            raise NotCoordinator()
        return teams

    async def managed_team(self, worker: Worker, team_id: int) -> Team:
        team = await self.session.get(Team, team_id)
        if team is None or not await WorkerService(self.session).can_manage_team(worker, team.id):
            raise NotCoordinator()
        return team

    async def managed_template(self, worker: Worker, reply_id: int) -> tuple[Team, Template]:
        row, template = await self._template_of_row(reply_id)
        return await self.managed_team(worker, row.team_id), template

    async def add(
        self,
        worker: Worker,
        team_id: int,
        locale: str,
        title: str,
        text: str,
        *,
        code: str | None = None,
    ) -> SavedReply:
        """A new template, or (with `code`) the other language's version of one."""
        await self.managed_team(worker, team_id)
        locale = check_locale(locale)
        title, text = check_title(title), check_text(text)
        templates = await self.templates(team_id)
        if code is None:
            if len(templates) >= MAX_TEMPLATES:
                raise ReplyError("too_many", limit=MAX_TEMPLATES)
            code = "t" + secrets.token_hex(5)
            position = 1 + max((t.first.position for t in templates), default=0)
        else:
            existing = next((t for t in templates if t.code == code), None)
            if existing is None:
                raise StaleAction()
            if locale in existing.versions:
                raise ReplyError("exists")
            position = existing.first.position
        now = self.clock.now()
        row = SavedReply(
            team_id=team_id,
            code=code,
            locale=locale,
            title=title,
            text=text,
            position=position,
            created_by_worker_id=worker.id,
            created_at=now,
            updated_at=now,
            active=True,
        )
        self.session.add(row)
        await self.session.flush()
        self._audit(worker, "saved_reply_added", row)
        return row

    async def edit_text(self, worker: Worker, reply_id: int, text: str) -> SavedReply:
        row, _ = await self._template_of_row(reply_id)
        await self.managed_team(worker, row.team_id)
        row.text = check_text(text)
        row.updated_at = self.clock.now()
        self._audit(worker, "saved_reply_edited", row)
        await self.session.flush()
        return row

    async def rename(self, worker: Worker, reply_id: int, title: str) -> SavedReply:
        """A new title for one language's version (what workers see on the button)."""
        row, _ = await self._template_of_row(reply_id)
        await self.managed_team(worker, row.team_id)
        row.title = check_title(title)
        row.updated_at = self.clock.now()
        self._audit(worker, "saved_reply_renamed", row)
        await self.session.flush()
        return row

    async def move_up(self, worker: Worker, reply_id: int) -> list[Template]:
        """The template one place earlier in the team's list (the most used ones go on top);
        the first stays first. Positions are renumbered 1..n in the current order, so equal
        positions left by older versions never make a move do nothing. Returns the new order."""
        team, template = await self.managed_template(worker, reply_id)
        templates = await self.templates(team.id)
        index = next(i for i, t in enumerate(templates) if t.code == template.code)
        if index > 0:
            templates[index - 1], templates[index] = templates[index], templates[index - 1]
            now = self.clock.now()
            for position, item in enumerate(templates, 1):
                for row in item.versions.values():
                    if row.position != position:
                        row.position = position
                        row.updated_at = now
            self._audit(worker, "saved_reply_moved", template.first)
            await self.session.flush()
        return templates

    async def delete(self, worker: Worker, reply_id: int) -> Template:
        """Switch the template off in every language (the rows stay for the audit log)."""
        _team, template = await self.managed_template(worker, reply_id)
        now = self.clock.now()
        for row in template.versions.values():
            row.active = False
            row.updated_at = now
            self._audit(worker, "saved_reply_deleted", row)
        await self.session.flush()
        return template

    def _audit(self, worker: Worker, action: str, row: SavedReply) -> None:
        self.session.add(
            AuditEntry(
                actor_user_id=worker.user_id,
                action=action,
                object_type="saved_reply",
                object_id=str(row.id),
                data={"team_id": row.team_id, "code": row.code, "locale": row.locale},
                at=self.clock.now(),
            )
        )

    # -- workers -------------------------------------------------------------------------------
    async def for_case(self, worker: Worker, case_id: int) -> tuple[Case, list[Template]]:
        """The case (a member of its team, open) and its team's templates."""
        case = await CaseActions(self.session, self.clock).member_open_case(worker, case_id)
        return case, await self.templates(case.team_id)

    async def filled(
        self,
        worker: Worker,
        case_id: int,
        reply_id: int,
        greeting: Callable[[str], str],
        *,
        deadline_date: str | None = None,
    ) -> tuple[Case, Filled]:
        """The template filled for this case in the resident's language. `greeting(locale)`
        is what `{first_name}` becomes (no name is kept). `{deadline}` is `deadline_date` when
        given, else the latest deadline of the case's open document requests."""
        case, templates = await self.for_case(worker, case_id)
        row = await self.session.get(SavedReply, reply_id)
        template = next((t for t in templates if row is not None and t.code == row.code), None)
        if row is None or row.team_id != case.team_id or template is None:
            raise StaleAction()  # another team's template, a deleted one, or a forged id
        resident = case.resident
        user = resident.user if resident.erased_at is None else None
        picked = pick_version(template.versions, resident_locale(user.language if user else None))
        if picked is None:
            raise StaleAction()
        locale, version = picked
        values = ReplyValues(
            case_number=case.number,
            service=case.service.name(locale),
            team=case.team.name(locale),
            office_address=case.team.office_address(locale),
            office_hours=case.team.office_hours(locale),
            deadline=deadline_date or await self._open_deadline(case.id),
        )
        return case, fill(version.text, values, locale=locale, greeting=greeting(locale))

    async def _open_deadline(self, case_id: int) -> str | None:
        deadline = await self.session.scalar(
            select(func.max(DocumentRequest.deadline)).where(
                DocumentRequest.case_id == case_id, DocumentRequest.status == "open"
            )
        )
        return deadline.astimezone(self.tz).strftime("%d.%m.%Y") if deadline else None
