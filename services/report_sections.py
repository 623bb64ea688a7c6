"""The sections other features add to every report (after the requests' own sections), in the
order a coordinator reads them: deadlines kept on the working calendar, how residents rated the
help, then what the surveys found."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.report_tables import Period, ReportScope, ReportTable
from services.reports import SectionProvider
from services.satisfaction import satisfaction_table
from services.sla_report import sla_table
from services.surveys import survey_results_table


async def sla_section(
    session: AsyncSession, scope: ReportScope, period: Period, zone: tzinfo
) -> Sequence[ReportTable]:
    return [await sla_table(session, scope, period, zone)]


async def satisfaction_section(
    session: AsyncSession, scope: ReportScope, period: Period, zone: tzinfo
) -> Sequence[ReportTable]:
    return [await satisfaction_table(session, scope, period, zone)]


async def survey_section(
    session: AsyncSession, scope: ReportScope, period: Period, zone: tzinfo
) -> Sequence[ReportTable]:
    return [await survey_results_table(session, scope, period, zone=zone)]


FEATURE_SECTIONS: tuple[SectionProvider, ...] = (sla_section, satisfaction_section, survey_section)
