"""The reports' figures drawn as charts (``app.services.svg_charts``), each summed up in its title and description."""

from __future__ import annotations

from app.services.reports import Bucket, LoanReport, PermissionReport, PolicyReport
from app.services.svg_charts import Chart, Series, column_chart, row_chart


def _months(buckets: list[Bucket]) -> dict:
    """Short month names on the axis, with the year under the first month and under each January."""
    return {
        "categories": [b.first_day.strftime("%b") for b in buckets],
        "sublabels": [str(b.first_day.year) if i == 0 or b.first_day.month == 1 else "" for i, b in enumerate(buckets)],
    }


def _plural(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def permission_charts(report: PermissionReport) -> dict[str, Chart]:
    months = _months([bucket for bucket, _ in report.by_month])
    monthly = [figures for _, figures in report.by_month]
    total = report.total
    outcomes = f"{total.approved} approved, {total.denied} denied, {total.withdrawn_or_expired} withdrawn or expired"
    busiest = max(report.by_month, key=lambda item: item[1].requests, default=None)
    by_month = column_chart(
        "chart-permissions-month",
        f"Permission requests by month, {report.period.label}",
        f"{_plural(total.requests, 'request')}: {outcomes}, {total.pending} waiting; "
        f"{_plural(total.overrides, 'emergency override')}."
        + (f" Busiest month: {busiest[0].long_label} ({busiest[1].requests})." if busiest and total.requests else ""),
        months["categories"],
        [
            Series("Approved", [f.approved for f in monthly]),
            Series("Denied", [f.denied for f in monthly]),
            Series("Withdrawn or expired", [f.withdrawn_or_expired for f in monthly]),
            Series("Emergency override", [f.overrides for f in monthly]),
        ],
        stacked=True,
        sublabels=months["sublabels"],
        y_label="Requests",
    )
    areas = report.by_area
    by_area = row_chart(
        "chart-permissions-area",
        f"Permission requests by area, {report.period.label}",
        "; ".join(f"{name}: {_plural(f.requests, 'request')}, {f.approved} approved, {f.denied} denied" for name, f in areas)
        or "No areas.",
        [name for name, _ in areas],
        [
            Series("Approved", [f.approved for _, f in areas]),
            Series("Denied", [f.denied for _, f in areas]),
            Series("Withdrawn or expired", [f.withdrawn_or_expired for _, f in areas]),
            Series("Emergency override", [f.overrides for _, f in areas]),
        ],
        value_label="Requests",
    )
    return {"by_month": by_month, "by_area": by_area}


def loan_charts(report: LoanReport) -> dict[str, Chart]:
    monthly = [figures for _, figures in report.by_month]
    total = report.total
    months = _months([bucket for bucket, _ in report.by_month])
    loans = column_chart(
        "chart-loans-month",
        f"Loans by month, {report.period.label}",
        f"{_plural(total.made, 'loan')} made, {total.returned} returned, {total.returned_late} of them late; "
        f"{report.overdue_now} overdue now.",
        months["categories"],
        [Series("Loans made", [f.made for f in monthly]), Series("Returned late", [f.returned_late for f in monthly])],
        sublabels=months["sublabels"],
        y_label="Number",
    )
    losses = column_chart(
        "chart-losses-month",
        f"Losses by month, {report.period.label}",
        f"{_plural(total.missing_at_stocktake, 'asset')} missing at stock-takes; "
        f"{_plural(total.personal_reported, 'personal device')} reported lost or stolen.",
        months["categories"],
        [
            Series("Missing at stock-take", [f.missing_at_stocktake for f in monthly]),
            Series("Personal devices lost or stolen", [f.personal_reported for f in monthly]),
        ],
        stacked=True,
        sublabels=months["sublabels"],
        y_label="Number",
    )
    return {"loans": loans, "losses": losses}


def policy_charts(report: PolicyReport) -> dict[str, Chart]:
    charts: dict[str, Chart] = {
        "phones": row_chart(
            "chart-phones",
            "Phones registered",
            f"Of {_plural(report.phones_registered + report.declared_none + report.neither, 'active person', 'active people')}: "
            f"{report.phones_registered} registered a phone, {report.declared_none} declared they bring none, "
            f"{report.neither} did neither.",
            ["Phone registered", "Declared none", "Neither"],
            [Series("People", [report.phones_registered, report.declared_none, report.neither])],
            stacked=False,
            value_label="People",
        )
    }
    if report.policy is None:
        return charts
    charts["by_type"] = row_chart(
        "chart-policy-type",
        f"Policy acceptance by staff type, version {report.policy.label}",
        f"{report.accepted} of {report.people} active people accepted; "
        + "; ".join(f"{t.label}: {t.accepted} of {t.people}" for t in report.by_type),
        [t.label for t in report.by_type],
        [
            Series("Accepted", [t.accepted for t in report.by_type]),
            Series("Not accepted", [t.not_accepted for t in report.by_type]),
        ],
        value_label="People",
    )
    charts["weeks"] = column_chart(
        "chart-policy-weeks",
        f"Acceptances of version {report.policy.label} by week",
        f"{report.accepted} accepted in all, over {_plural(len(report.weeks), 'week')}"
        + (f"; most in the {max(report.weeks, key=lambda w: w[1])[0].long_label}." if report.accepted else "."),
        [week.label for week, _ in report.weeks],
        [Series("Acceptances", [count for _, count in report.weeks])],
        x_label="Week beginning",
        y_label="Acceptances",
    )
    return charts
