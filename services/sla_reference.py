"""The SLA part of the reference YAML: the working calendar and the policies per service.

```yaml
calendar:
  public_holidays: false          # martial law: public holidays are working days
  week: {mon-fri: ["08:00-12:00", "13:00-17:00"]}
  exceptions:
    - {date: 2026-12-31, hours: ["08:00-13:00"]}
    - {date: 2027-01-02, hours: closed}
sla:
  - {service: subsidy, first_response_hours: 8, resolution_hours: 80}
  - {service: subsidy, priority: 2, first_response_hours: 4, resolution_hours: 40}
```
and a team's own office hours as `hours:` on the team. Validated with the rest of the file
(services/reference_data.py); written idempotently: the file's set of policies and calendars is
what the database holds afterwards.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import SlaPolicy, WorkCalendar
from services.calendar import (
    DEFAULT_CALENDAR_CODE,
    STANDARD_WEEK,
    CalendarError,
    parse_periods,
    parse_week,
    week_to_json,
)

# A week of office hours as the YAML writes it ({mon-fri: [...], sat: closed}).
WeekSpec = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def checked_week(value: Any) -> Any:
    try:
        parse_week(value)
    except CalendarError as exc:
        raise ValueError(str(exc)) from None
    return value


class ExceptionSpec(_Strict):
    date: date
    hours: Any = "closed"

    @field_validator("hours")
    @classmethod
    def _periods(cls, value: Any) -> Any:
        try:
            parse_periods(value)
        except CalendarError as exc:
            raise ValueError(str(exc)) from None
        return value


class CalendarSpec(_Strict):
    public_holidays: bool = True
    week: WeekSpec | None = None
    exceptions: list[ExceptionSpec] = []

    @field_validator("week")
    @classmethod
    def _week(cls, value: Any) -> Any:
        return None if value is None else checked_week(value)


class SlaSpec(_Strict):
    service: str
    # The policy applies to cases of at least this priority (0: every case of the service).
    priority: int = Field(default=0, ge=0, le=100)
    first_response_hours: float = Field(gt=0, le=2000)
    resolution_hours: float = Field(gt=0, le=20000)


def _periods_json(raw: Any) -> list[str]:
    return [f"{s:%H:%M}-{e:%H:%M}" for s, e in parse_periods(raw)]


async def apply_sla_reference(
    session: AsyncSession,
    calendar: CalendarSpec | None,
    team_hours: dict[str, WeekSpec],
    policies: list[SlaSpec],
    service_ids: dict[str, int],
    team_ids: dict[str, int],
) -> dict[str, int]:
    """Write calendars and policies; returns how many rows changed per kind."""
    changed: dict[str, int] = {"calendars": 0, "sla_policies": 0}
    spec = calendar or CalendarSpec()
    wanted: dict[str, dict[str, Any]] = {
        DEFAULT_CALENDAR_CODE: {
            "team_id": None,
            "week": week_to_json(parse_week(spec.week) if spec.week else STANDARD_WEEK),
            "public_holidays": spec.public_holidays,
            "exceptions": {e.date.isoformat(): _periods_json(e.hours) for e in spec.exceptions},
        }
    }
    for code, hours in team_hours.items():
        wanted[code] = {
            "team_id": team_ids[code],
            "week": week_to_json(parse_week(hours)),
            "public_holidays": spec.public_holidays,
            "exceptions": {},
        }
    existing = {row.code: row for row in (await session.scalars(select(WorkCalendar))).all()}
    for code, stale in existing.items():
        if code not in wanted:
            await session.delete(stale)
            changed["calendars"] += 1
    await session.flush()
    for code, values in wanted.items():
        calendar_row = existing.get(code)
        if calendar_row is None:
            session.add(WorkCalendar(code=code, **values))
            changed["calendars"] += 1
        elif any(getattr(calendar_row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(calendar_row, k, v)
            changed["calendars"] += 1

    wanted_policies = {
        (service_ids[p.service], p.priority): (
            round(p.first_response_hours * 60),
            round(p.resolution_hours * 60),
        )
        for p in policies
    }
    rows = {(r.service_id, r.min_priority): r for r in (await session.scalars(select(SlaPolicy))).all()}
    for key, old_policy in rows.items():
        if key not in wanted_policies:
            await session.delete(old_policy)
            changed["sla_policies"] += 1
    for (service_id, priority), (first, resolution) in wanted_policies.items():
        policy = rows.get((service_id, priority))
        if policy is None:
            session.add(
                SlaPolicy(
                    service_id=service_id,
                    min_priority=priority,
                    first_response_minutes=first,
                    resolution_minutes=resolution,
                )
            )
            changed["sla_policies"] += 1
        elif (policy.first_response_minutes, policy.resolution_minutes) != (first, resolution):
            policy.first_response_minutes, policy.resolution_minutes = first, resolution
            changed["sla_policies"] += 1
    await session.flush()
    return changed
