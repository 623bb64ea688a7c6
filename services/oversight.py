"""Which teams oversee their hromada. A coordinator of a hromada's own team oversees every case of
that hromada (queues, routing, reports). A partner agency's team that happens to sit in a hromada
(an employment centre branch) does not: it sees its own cases and the parts referred to it, never
the rest of the hromada's cases (child protection among them)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, select

from models import PartnerAgency, Team


def oversees_hromada() -> ColumnElement[bool]:
    """True for a Team row in the query whose coordinators oversee `Team.hromada_id`."""
    partner = exists(select(PartnerAgency.id).where(PartnerAgency.team_id == Team.id))
    return and_(Team.hromada_id.is_not(None), ~partner)
