"""What residents and workers do with a case after it was filed: read it, write to each other,
attach files, change its status, take/assign/transfer it, close it.

Rules live here (no aiogram): who may see a case, the allowed status transitions, the audit
trail (every status change is a `CaseEvent`) and the notifications to the *other* side, which
go through the outbox in the recipient's language. Nothing here commits.

Access, in one place:
- a resident sees only their own cases (someone else's case looks exactly like a missing one);
- a worker sees the cases of the teams they are a member of; a coordinator also every case of
  their teams' hromadas; an admin every case. Contact details only to the case team's members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import (
    Attachment,
    AuditEntry,
    Case,
    CaseEvent,
    CaseMessage,
    Hromada,
    Resident,
    Team,
    TeamMember,
    User,
    Worker,
)
from models.cases import (
    CANCELLED,
    CLOSED_STATUSES,
    IN_PROGRESS,
    NEW,
    REASON_REQUIRED,
    RESOLVED,
    STATUSES,
    TRANSITIONS,
    CaseStatus,
    next_statuses,
)
from models.people import ROLE_COORDINATOR
from services.clock import Clock
from services.errors import DomainError, StaleAction
from services.outbox import enqueue
from services.oversight import oversees_hromada
from services.reminders import default_zone
from services.satisfaction import ask_for_rating
from services.sla import SlaService
from services.text import clean, clean_file_id, clean_file_name, clean_mime_type, clip

MAX_TEXT = 2000
MAX_REASON = 500
# What a case keeps as files (Telegram file ids; the bytes stay on Telegram).
ATTACHMENT_KINDS = ("photo", "document", "voice", "video_note")


class CaseError(DomainError):
    """A refused case action (`case.error.<code>`)."""

    prefix = "case.error"
    code = "error"


# A phone lookup lists at most this many of the caller's cases.
PHONE_LOOKUP_LIMIT = 10


class NotFound(CaseError):
    code = "not_found"


class AccessDenied(CaseError):
    code = "access_denied"


class InvalidTransition(CaseError):
    code = "invalid_transition"


@dataclass(frozen=True)
class Access:
    """What one worker may do with one case."""

    member: bool  # a member of the case's team: may act and see contacts
    coordinator: bool  # coordinator of the case's team or of its hromada, or an admin

    @property
    def can_act(self) -> bool:
        return self.member or self.coordinator


class CaseActions:
    def __init__(self, session: AsyncSession, clock: Clock, zone: tzinfo | None = None) -> None:
        self.session = session
        self.clock = clock
        self.sla = SlaService(session, clock, zone or default_zone())

    # -- loading and access ------------------------------------------------------------------
    async def _case(self, case_id: int, *, lock: bool = False) -> Case:
        query = select(Case).where(Case.id == case_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        case = await self.session.scalar(query)
        if case is None:
            raise NotFound()
        return case

    async def _resident_of(self, user: User) -> Resident:
        resident = await self.session.scalar(select(Resident).where(Resident.user_id == user.id))
        if resident is None or resident.erased_at is not None:
            raise NotFound()
        return resident

    async def _load_for_worker(
        self, worker: Worker, case_id: int, *, lock: bool, refs: bool
    ) -> tuple[Case, Access]:
        if not worker.active:
            raise NotFound()
        row = (
            await self.session.execute(
                _worker_case_statement(lock, refs), {"case_id": case_id, "worker_id": worker.id}
            )
        ).first()
        if row is None:
            raise NotFound()
        access = Access(bool(row[1]), bool(row[2]) or worker.is_admin)
        if not access.can_act:
            raise NotFound()
        return row[0], access

    async def access(self, worker: Worker, case: Case) -> Access:
        try:
            return (await self._load_for_worker(worker, case.id, lock=False, refs=False))[1]
        except NotFound:
            return Access(False, False)

    async def worker_case(self, worker: Worker, case_id: int, *, refs: bool = True) -> Case:
        """The case if this worker may see it (with service, team, settlement, hromada, assignee
        and resident loaded, in one statement); otherwise NotFound, as for a missing case."""
        return (await self._load_for_worker(worker, case_id, lock=False, refs=refs))[0]

    async def worker_case_by_number(self, worker: Worker, number: str) -> Case:
        """The case with this number (see `case_number`) if this worker may see it; otherwise
        NotFound, the same answer for a number that does not exist, so none is guessed."""
        case_id = await self.session.scalar(select(Case.id).where(Case.number == number))
        if case_id is None:
            raise NotFound()
        return await self.worker_case(worker, case_id)

    async def worker_cases_by_phone(
        self, worker: Worker, phone: str, limit: int = PHONE_LOOKUP_LIMIT
    ) -> list[Case]:
        """A caller's cases, newest first, found by the phone they verified: only those of the
        worker's own teams (the ones whose contact the worker may see anyway), so a phone never
        reveals a case the worker could not call about. The lookup is audited without the
        phone."""
        found: list[Case] = []
        if worker.active:
            own_teams = select(TeamMember.team_id).where(TeamMember.worker_id == worker.id)
            found = list(
                (
                    await self.session.scalars(
                        select(Case)
                        .join(Resident, Resident.id == Case.resident_id)
                        .where(Resident.phone == phone, Case.team_id.in_(own_teams))
                        .options(joinedload(Case.service))
                        .order_by(Case.created_at.desc(), Case.id.desc())
                        .limit(limit)
                    )
                ).all()
            )
        self.session.add(
            AuditEntry(
                at=self.clock.now(),
                actor_user_id=worker.user_id,
                action="case_phone_lookup",
                object_type="case",
                object_id=None,
                data={"found": len(found)},
            )
        )
        return found

    async def worker_case_access(self, worker: Worker, case_id: int) -> tuple[Case, Access]:
        return await self._load_for_worker(worker, case_id, lock=False, refs=True)

    async def _for_worker(self, worker: Worker, case_id: int) -> tuple[Case, Access]:
        """The case, row-locked for a change, and what this worker may do with it."""
        return await self._load_for_worker(worker, case_id, lock=True, refs=False)

    async def can_see_contact(self, worker: Worker, case: Case) -> bool:
        return (await self.access(worker, case)).member

    async def member_open_case(self, worker: Worker, case_id: int) -> Case:
        """The case if this worker is a member of its team and it is not closed: the guard of
        every action that speaks to the resident (write, request documents)."""
        case, access = await self.worker_case_access(worker, case_id)
        if not access.member:
            raise AccessDenied("not_team_member")
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        return case

    async def open_case(self, worker: Worker, case_id: int) -> Case:
        """The case if this worker may see it and it is not closed."""
        case = await self.worker_case(worker, case_id)
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        return case

    # -- choices offered to a worker ---------------------------------------------------------
    async def status_choices(self, worker: Worker, case_id: int) -> tuple[Case, list[CaseStatus]]:
        """The statuses the case may move to now; a closed case has none (refused)."""
        case = await self.worker_case(worker, case_id, refs=False)
        options = next_statuses(case.status)
        if not options:
            raise InvalidTransition("closed")
        return case, options

    async def status_target(self, worker: Worker, case_id: int, to_status: str) -> Case:
        """The case, if moving it to `to_status` is allowed (or it is there already: a double
        tap), checked before the worker is asked for a reason."""
        case = await self.worker_case(worker, case_id, refs=False)
        if to_status != case.status:
            check_transition(case.status, to_status)
        return case

    async def apply_status(self, case_id: int, worker: Worker, to_status: str, text: str) -> Case:
        """A status change with the worker's text: the outcome of a closing, else the reason."""
        if to_status in CLOSED_STATUSES:
            return await self.close(case_id, worker, to_status, text)
        return await self.change_status(case_id, worker, to_status, text)

    async def transfer_targets(self, case: Case) -> list[Team]:
        """Teams a case may be transferred to: those of its oblast (hromada teams and the
        oblast department), except its own."""
        hromada = await self.session.get(Hromada, case.hromada_id)
        if hromada is None:
            return []
        rows = await self.session.scalars(
            select(Team)
            .where(Team.oblast == hromada.oblast, Team.id != case.team_id)
            .order_by(Team.is_oblast_fallback, Team.name_uk)
        )
        return list(rows.all())

    async def transfer_choices(self, worker: Worker, case_id: int) -> tuple[Case, list[Team]]:
        case = await self.open_case(worker, case_id)
        return case, await self.transfer_targets(case)

    async def transfer_target(self, worker: Worker, case_id: int, team_id: int) -> Case:
        """The case, if `team_id` is one of its transfer targets (else a stale button)."""
        case = await self.worker_case(worker, case_id)
        if team_id not in {t.id for t in await self.transfer_targets(case)}:
            raise StaleAction()
        return case

    async def assignable_members(self, case: Case) -> list[Worker]:
        """Active members of the case's team: whom a coordinator may give it to."""
        rows = await self.session.scalars(
            select(Worker)
            .join(TeamMember, TeamMember.worker_id == Worker.id)
            .where(TeamMember.team_id == case.team_id, Worker.active.is_(True))
            .order_by(Worker.display_name, Worker.id)
        )
        return list(rows.all())

    async def assign_choices(self, worker: Worker, case_id: int) -> tuple[Case, list[Worker]]:
        case, access = await self.worker_case_access(worker, case_id)
        if not access.coordinator:
            raise AccessDenied("not_coordinator")
        return case, await self.assignable_members(case)

    # -- resident side -----------------------------------------------------------------------
    async def resident_case(self, user: User, case_id: int) -> Case:
        resident = await self._resident_of(user)
        case = await self.session.scalar(
            select(Case).where(Case.id == case_id, Case.resident_id == resident.id)
        )
        if case is None:
            raise NotFound()
        return case

    async def resident_message(self, user: User, case_id: int, text: str) -> CaseMessage:
        case = await self.resident_case(user, case_id)
        text = _clean(text, MAX_TEXT)
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        message = CaseMessage(
            case_id=case.id, at=self.clock.now(), from_resident=True, author_user_id=user.id, text=text
        )
        self.session.add(message)
        await self.session.flush()
        await self._notify_workers(
            case,
            "case_message_to_worker",
            {"text": _shorten(text, 1000)},
            dedupe=f"case_msg:{message.id}",
        )
        return message

    async def resident_attachment(
        self,
        user: User,
        case_id: int,
        *,
        kind: str,
        file_id: str,
        file_unique_id: str,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> Attachment:
        """A file from the resident on their open case; the workers get the file itself (a
        photo as a photo, a voice message as voice) with its caption. The same file twice is
        kept once and announced once."""
        case = await self.resident_case(user, case_id)
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        attachment, new = await self._store_file(
            case, user.id, kind, file_id, file_unique_id, file_name, mime_type
        )
        if not new:
            return attachment
        caption = clip(caption, MAX_TEXT, multiline=True)
        if caption:
            self.session.add(
                CaseMessage(
                    case_id=case.id,
                    at=self.clock.now(),
                    from_resident=True,
                    author_user_id=user.id,
                    text=caption,
                )
            )
        await self._notify_workers(
            case,
            "case_attachment_to_worker",
            {"file": _file_payload(attachment), "caption": _shorten(caption, 900) if caption else None},
            dedupe=f"case_att:{attachment.id}",
        )
        return attachment

    async def _store_file(
        self,
        case: Case,
        uploader_user_id: int,
        kind: str,
        file_id: str,
        file_unique_id: str,
        file_name: str | None,
        mime_type: str | None,
    ) -> tuple[Attachment, bool]:
        """The case's attachment for this file, and whether it is new."""
        if kind not in ATTACHMENT_KINDS:
            raise CaseError("bad_attachment")
        file_id, file_unique_id = clean_file_id(file_id, 255), clean_file_id(file_unique_id, 64)
        if not file_id or not file_unique_id:
            raise CaseError("bad_attachment")
        existing = await self.session.scalar(
            select(Attachment).where(
                Attachment.case_id == case.id, Attachment.file_unique_id == file_unique_id
            )
        )
        if existing is not None:  # the same file sent twice: keep one
            return existing, False
        attachment = Attachment(
            case_id=case.id,
            kind=kind,
            file_id=file_id,
            file_unique_id=file_unique_id,
            file_name=clean_file_name(file_name),
            mime_type=clean_mime_type(mime_type),
            uploaded_by_user_id=uploader_user_id,
            at=self.clock.now(),
        )
        self.session.add(attachment)
        await self.session.flush()
        return attachment, True

    async def cancel_by_resident(self, user: User, case_id: int, reason: str) -> Case:
        resident = await self._resident_of(user)
        case = await self._case(case_id, lock=True)
        if case.resident_id != resident.id:
            raise NotFound()
        if case.status == CANCELLED:
            return case
        changed = await self._set_status(case, CANCELLED, actor_user_id=user.id, reason=reason, notify=False)
        if changed:
            await self._notify_workers(case, "case_cancelled_to_worker", {"reason": case.outcome})
        return case

    async def history(self, case_id: int) -> list[CaseEvent]:
        rows = await self.session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.at, CaseEvent.id)
        )
        return list(rows.all())

    async def messages(self, case_id: int, limit: int = 20) -> list[CaseMessage]:
        rows = await self.session.scalars(
            select(CaseMessage)
            .where(CaseMessage.case_id == case_id)
            .order_by(CaseMessage.at.desc(), CaseMessage.id.desc())
            .limit(limit)
        )
        return list(reversed(rows.all()))

    async def attachments(self, case_id: int) -> list[Attachment]:
        rows = await self.session.scalars(
            select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.at, Attachment.id)
        )
        return list(rows.all())

    # -- worker side -------------------------------------------------------------------------
    async def take(self, case_id: int, worker: Worker) -> Case:
        """The worker takes the case: assignee = them, and a new case goes in progress."""
        case, access = await self._for_worker(worker, case_id)
        if not access.member:
            raise AccessDenied("not_team_member")
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        if case.assignee_worker_id not in (None, worker.id):
            raise CaseError("taken_by_other")
        if case.assignee_worker_id is None:
            case.assignee_worker_id = worker.id
            self._event(case, "assigned", worker.user_id, data={"worker_id": worker.id, "taken": True})
        await self.sla.responded(case)
        if case.status == NEW:
            await self._set_status(case, IN_PROGRESS, actor_user_id=worker.user_id)
        await self.session.flush()
        return case

    async def assign(self, case_id: int, actor: Worker, worker_id: int) -> Case:
        """A coordinator (or admin) gives the case to an active member of the case's team."""
        case, access = await self._for_worker(actor, case_id)
        if not access.coordinator:
            raise AccessDenied("not_coordinator")
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        target = await self.session.scalar(
            select(Worker)
            .join(TeamMember, TeamMember.worker_id == Worker.id)
            .where(Worker.id == worker_id, Worker.active.is_(True), TeamMember.team_id == case.team_id)
        )
        if target is None:
            raise AccessDenied("not_team_member")
        if case.assignee_worker_id == target.id:
            return case
        previous = case.assignee_worker_id
        case.assignee_worker_id = target.id
        self._event(case, "assigned", actor.user_id, data={"worker_id": target.id, "previous": previous})
        await self.sla.responded(case)
        await self.session.flush()
        target_user = await self.session.get(User, target.user_id)
        if target_user is not None and target.id != actor.id:
            await enqueue(
                self.session,
                user=target_user,
                kind="case_assigned",
                payload={"case_id": case.id, "number": case.number},
                case_id=case.id,
                due_at=self.clock.now(),
            )
        return case

    async def change_status(
        self,
        case_id: int,
        actor_worker: Worker,
        to_status: str,
        reason: str | None = None,
        *,
        notify: bool = True,
    ) -> Case:
        """`notify=False` when the caller tells the resident itself (a visit invitation says
        more than "visit planned"); the audit event is written either way."""
        case, _ = await self._for_worker(actor_worker, case_id)
        await self.sla.responded(case)
        await self._set_status(
            case, to_status, actor_user_id=actor_worker.user_id, reason=reason, notify=notify
        )
        return case

    async def close(self, case_id: int, worker: Worker, status: str, outcome: str) -> Case:
        if status not in CLOSED_STATUSES:
            raise InvalidTransition("not_closing")
        outcome = _clean(outcome, MAX_REASON, code="outcome_required")
        case, _ = await self._for_worker(worker, case_id)
        await self.sla.responded(case)
        await self._set_status(case, status, actor_user_id=worker.user_id, reason=outcome)
        return case

    async def relay_to_resident(self, case_id: int, worker: Worker, text: str) -> CaseMessage:
        case, access = await self._for_worker(worker, case_id)
        if not access.member and not worker.is_admin:
            raise AccessDenied("not_team_member")
        text = _clean(text, MAX_TEXT)
        await self.sla.responded(case)
        message = CaseMessage(
            case_id=case.id,
            at=self.clock.now(),
            from_resident=False,
            author_user_id=worker.user_id,
            text=text,
        )
        self.session.add(message)
        await self.session.flush()
        await self._from_team(case, "case_message_to_resident", f"case_msg:{message.id}", text=text)
        return message

    async def relay_file_to_resident(
        self,
        case_id: int,
        worker: Worker,
        *,
        kind: str,
        file_id: str,
        file_unique_id: str,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> Attachment:
        """A file from the worker to the resident, under the team's name like a text message;
        kept on the case as an attachment (its caption as a message)."""
        case, access = await self._for_worker(worker, case_id)
        if not access.member and not worker.is_admin:
            raise AccessDenied("not_team_member")
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        attachment, _ = await self._store_file(
            case, worker.user_id, kind, file_id, file_unique_id, file_name, mime_type
        )
        await self.sla.responded(case)
        caption = clip(caption, MAX_TEXT, multiline=True)
        message_id = None
        if caption:
            message = CaseMessage(
                case_id=case.id,
                at=self.clock.now(),
                from_resident=False,
                author_user_id=worker.user_id,
                text=caption,
            )
            self.session.add(message)
            await self.session.flush()
            message_id = message.id
        await self._from_team(
            case,
            "case_file_to_resident",
            f"case_wfile:{attachment.id}:{message_id or 0}",
            file=_file_payload(attachment),
            caption=_shorten(caption, 900) if caption else None,
        )
        return attachment

    async def _from_team(self, case: Case, kind: str, dedupe_key: str, **values: Any) -> None:
        """Queue a notice to the case's resident, signed by the team — the team speaks, never the
        worker's own account (nothing when the resident's data is gone)."""
        user, language = await self._resident_user(case)
        if user is None:
            return
        team = await self.session.get(Team, case.team_id)
        await enqueue(
            self.session,
            user=user,
            kind=kind,
            payload={
                "case_id": case.id,
                "number": case.number,
                "team": team.name(language) if team else "",
                **values,
            },
            case_id=case.id,
            due_at=self.clock.now(),
            dedupe_key=dedupe_key,
        )

    async def transfer(self, case_id: int, worker: Worker, to_team_id: int, note: str) -> Case:
        case, _ = await self._for_worker(worker, case_id)
        if case.status in CLOSED_STATUSES:
            raise InvalidTransition("closed")
        note = _clean(note, MAX_REASON, code="note_required")
        team = await self.session.get(Team, to_team_id)
        if team is None:
            raise NotFound("team_not_found")
        if team.id == case.team_id:
            return case
        previous = case.team_id
        case.team_id = team.id
        case.assignee_worker_id = None
        case.updated_at = self.clock.now()
        self._event(
            case, "transferred", worker.user_id, reason=note, data={"from_team": previous, "to_team": team.id}
        )
        await self.session.flush()
        user, language = await self._resident_user(case)
        if user is not None:
            await enqueue(
                self.session,
                user=user,
                kind="case_transferred",
                payload={"number": case.number, "team": team.name(language)},
                case_id=case.id,
                due_at=self.clock.now(),
            )
        await self._notify_workers(case, "case_transferred_to_team", {"note": note})
        self.session.add(
            AuditEntry(
                actor_user_id=worker.user_id,
                action="case_transferred",
                object_type="case",
                object_id=str(case.id),
                data={"from_team": previous, "to_team": team.id},
                at=self.clock.now(),
            )
        )
        return case

    # -- internals ---------------------------------------------------------------------------
    def _event(
        self,
        case: Case,
        kind: str,
        actor_user_id: int | None,
        *,
        from_status: str | None = None,
        to_status: str | None = None,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> CaseEvent:
        event = CaseEvent(
            case_id=case.id,
            at=self.clock.now(),
            actor_user_id=actor_user_id,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            data=data or {},
        )
        self.session.add(event)
        return event

    async def _set_status(
        self,
        case: Case,
        to_status: str,
        *,
        actor_user_id: int | None,
        reason: str | None = None,
        notify: bool = True,
    ) -> bool:
        """Change the (locked) case's status; False when it already had it (a double tap)."""
        if to_status not in STATUSES:
            raise InvalidTransition("unknown_status")
        if case.status == to_status:
            return False
        check_transition(case.status, to_status)
        reason = clip(reason, MAX_REASON, multiline=True)
        if to_status in REASON_REQUIRED and not reason:
            raise InvalidTransition("reason_required")
        now = self.clock.now()
        from_status = case.status
        case.status = to_status
        case.updated_at = now
        if to_status in CLOSED_STATUSES:
            case.closed_at = now
            case.outcome = reason
        await self.sla.status_changed(case, from_status, to_status)
        self._event(
            case, "status", actor_user_id, from_status=from_status, to_status=to_status, reason=reason
        )
        await self.session.flush()
        if notify:
            await self._notify_resident_status(case, reason)
        if to_status == RESOLVED:
            await ask_for_rating(self.session, case, self.clock)
        return True

    async def _resident_user(self, case: Case) -> tuple[User | None, str]:
        row = (
            await self.session.execute(
                select(User, Resident.erased_at)
                .join(Resident, Resident.user_id == User.id)
                .where(Resident.id == case.resident_id)
            )
        ).first()
        if row is None or row[1] is not None:
            return None, "uk"
        user = row[0]
        return user, user.language or "uk"

    async def _notify_resident_status(self, case: Case, reason: str | None) -> None:
        user, language = await self._resident_user(case)
        if user is None:
            return
        team = await self.session.get(Team, case.team_id)
        await enqueue(
            self.session,
            user=user,
            kind="case_status_changed",
            payload={
                "number": case.number,
                "status": case.status,
                "team": team.name(language) if team else "",
                "reason": reason,
            },
            case_id=case.id,
            due_at=self.clock.now(),
        )

    async def _notify_workers(
        self,
        case: Case,
        kind: str,
        payload: dict[str, Any],
        *,
        dedupe: str | None = None,
    ) -> None:
        """To the (active) assignee; else the case team's on-duty members; else all its members —
        a resident's message never goes nowhere while the team has anyone."""
        active = select(User).join(Worker, Worker.user_id == User.id).where(Worker.active.is_(True))
        members = active.join(TeamMember, TeamMember.worker_id == Worker.id).where(
            TeamMember.team_id == case.team_id
        )
        users: Sequence[User] = []
        if case.assignee_worker_id is not None:
            users = (await self.session.scalars(active.where(Worker.id == case.assignee_worker_id))).all()
        if not users:
            users = (
                await self.session.scalars(members.where(TeamMember.on_duty.is_(True)).order_by(User.id))
            ).all()
        if not users:
            users = (await self.session.scalars(members.order_by(User.id))).all()
        body = {"case_id": case.id, "number": case.number, **payload}
        for user in users:
            await enqueue(
                self.session,
                user=user,
                kind=kind,
                payload=body,
                case_id=case.id,
                due_at=self.clock.now(),
                dedupe_key=f"{dedupe}:{user.id}" if dedupe else None,
            )


@lru_cache(maxsize=4)
def _worker_case_statement(lock: bool, refs: bool) -> Any:
    """The case and two booleans about the worker (bound as :worker_id) in one statement: a
    member of its team; a coordinator of its team or of its hromada. Built once, reused."""
    worker_id: BindParameter[int] = bindparam("worker_id")
    member = (
        select(TeamMember.id)
        .where(TeamMember.worker_id == worker_id, TeamMember.team_id == Case.team_id)
        .exists()
    )
    coordinator = (
        select(TeamMember.id)
        .join(Team, Team.id == TeamMember.team_id)
        .where(
            TeamMember.worker_id == worker_id,
            TeamMember.role == ROLE_COORDINATOR,
            or_(Team.id == Case.team_id, and_(Team.hromada_id == Case.hromada_id, oversees_hromada())),
        )
        .exists()
    )
    query = select(Case, member, coordinator).where(Case.id == bindparam("case_id"))
    if lock:
        query = query.with_for_update(of=Case)
    if refs:
        query = query.options(
            joinedload(Case.service),
            joinedload(Case.team),
            joinedload(Case.settlement),
            joinedload(Case.hromada),
            joinedload(Case.assignee),
            joinedload(Case.resident).joinedload(Resident.user),
        )
    return query.execution_options(populate_existing=True)


def check_transition(from_status: str, to_status: str) -> None:
    """Refuse a status change the transition table does not allow."""
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise InvalidTransition("closed" if from_status in CLOSED_STATUSES else "invalid_transition")


def required_text(to_status: str) -> str | None:
    """What the worker must type for this change: a reason (told to the resident), an outcome
    (closing), or nothing."""
    if to_status in REASON_REQUIRED:
        return "reason"
    if to_status in CLOSED_STATUSES:
        return "outcome"
    return None


def _clean(text: str | None, limit: int, *, code: str = "empty_text") -> str:
    value = clean(text, limit, multiline=True, error=CaseError, code="text_too_long")
    if not value:
        raise CaseError(code)
    return value


def _file_payload(attachment: Attachment) -> dict[str, Any]:
    """How a notice carries a file: its kind and Telegram file id (sent again by id)."""
    return {"type": attachment.kind, "file_id": attachment.file_id}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
