"""What a worker does with an application by hand: find it, read its history with sources,
set its status. Access: `ApplicationService.worker_may_manage`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Application, ApplicationStatusChange, Hromada, Worker
from services.applications import ApplicationService, StatusVocabulary
from services.clock import Clock
from services.errors import StaleAction


@dataclass(frozen=True)
class DeskChange:
    status_code: str
    changed_at: datetime
    source: str


@dataclass
class DeskCard:
    application: Application
    vocabulary: StatusVocabulary
    history: list[DeskChange]
    hromada: Hromada | None


class ApplicationDesk:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.applications = ApplicationService(session, clock)

    async def find(self, worker: Worker, number: str) -> Application | None:
        """The application with this number, if the worker may manage it (else None, as for a
        missing one)."""
        app = await self.applications.by_number(number)
        if app is None or not await self.applications.worker_may_manage(worker, app):
            return None
        return app

    async def managed(
        self, worker: Worker, application_id: int, status: str
    ) -> tuple[Application, StatusVocabulary]:
        """The application and the vocabulary for a status button; a missing application, an
        unknown status or an application the worker may not manage is a stale button."""
        app = await self.session.get(Application, application_id)
        vocabulary = await StatusVocabulary.load(self.session)
        if app is None or status not in vocabulary.by_code:
            raise StaleAction()
        if not await self.applications.worker_may_manage(worker, app):
            raise StaleAction()
        return app, vocabulary

    async def card(self, app: Application) -> DeskCard:
        vocabulary = await StatusVocabulary.load(self.session)
        rows = await self.session.execute(
            select(
                ApplicationStatusChange.to_status,
                ApplicationStatusChange.changed_at,
                ApplicationStatusChange.source,
            )
            .where(ApplicationStatusChange.application_id == app.id)
            .order_by(ApplicationStatusChange.changed_at, ApplicationStatusChange.id)
        )
        history = [DeskChange(code, at, source) for code, at, source in rows.all()]
        hromada = await self.session.get(Hromada, app.hromada_id) if app.hromada_id else None
        return DeskCard(app, vocabulary, history, hromada)
