"""Status-table import reports as plain text, for the bot's progress message and for the
`import-statuses` command line (no user-typed content: counts, lines, reason codes)."""

from __future__ import annotations

from collections.abc import Callable

from services.status_import import ImportRefused, ImportReport

REPORT_REJECTIONS = 20


def render_report(
    report: ImportReport, gettext: Callable[[str], str], *, max_rejections: int = REPORT_REJECTIONS
) -> str:
    lines = [gettext("app.import.report") % report.counts()]
    if report.older:
        lines.append(gettext("app.import.older") % {"older": report.older})
    if report.rejections:
        lines.append("")
        lines.append(gettext("app.import.rejected_title"))
        for rejection in report.rejections[:max_rejections]:
            reason = gettext(f"app.import.reason.{rejection.reason}")
            if "%(column)s" in reason:
                reason = reason % {"column": gettext(f"app.import.column.{rejection.column}")}
            lines.append(gettext("app.import.rejected_line") % {"line": rejection.line, "reason": reason})
        hidden = report.rejected - min(len(report.rejections), max_rejections)
        if hidden > 0:
            lines.append(gettext("app.import.rejected_more") % {"n": hidden})
    if report.stopped is not None:
        lines.append("")
        lines.append(
            gettext("app.import.stopped")
            % {
                "line": report.stopped.line or "?",
                "reason": refusal_reason(report.stopped, gettext),
            }
        )
    return "\n".join(lines)


def refusal_reason(refused: ImportRefused, gettext: Callable[[str], str]) -> str:
    """Why the file (or its rest) was refused; names the limit when a budget ran out."""
    detail = refused.detail
    if refused.code in ("missing_columns", "duplicate_column"):
        detail = ", ".join(gettext(f"app.import.column.{c.strip()}") for c in detail.split(","))
    reason = gettext(f"app.import.refused.{refused.code}")
    if "%(detail)s" in reason:
        reason = reason % {"detail": detail}
    return reason


def render_refusal(refused: ImportRefused, gettext: Callable[[str], str]) -> str:
    return gettext("app.import.refused") % {"reason": refusal_reason(refused, gettext)}
