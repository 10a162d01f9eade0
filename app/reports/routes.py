"""Reports for governors and the head: permissions by month and area, loans and losses, policy acceptance.

Counts only, never names: governors read them with the head, the office and the admins. The CSV exports
hold the same counts, so they are not reads of personal data and write no audit event.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request, stream_with_context

from app.access import roles_required
from app.clock import utcnow
from app.extensions import db
from app.forms_support import refused
from app.models import Role
from app.navigation import register_nav
from app.reports import (
    charts,
    demo,  # noqa: F401  (registers the demo seeder)
)
from app.reports.forms import PeriodForm
from app.services import reports

bp = Blueprint("reports", __name__)
READERS = (Role.APPROVER, Role.OFFICE, Role.ADMIN, Role.GOVERNOR)
register_nav("Reports", "reports.index", READERS, order=92)


def _period(form: PeriodForm) -> reports.Period | None:
    """The period asked for, or None with the form's fields telling what is wrong."""
    period = None
    with refused(form, flash_as=None) as refusal:
        period = reports.parse_period(form.from_month.data or "", form.to_month.data or "")
    return None if refusal else period


def _csv(lines, filename: str) -> Response:
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/reports")
@roles_required(*READERS)
def index():
    form = PeriodForm(request.args)
    period = _period(form) if form.validate() else None
    if period is None:
        return render_template("reports/index.html", form=form, period=None), 422
    form.from_month.data, form.to_month.data = period.from_value, period.to_value
    permission_report = reports.permission_report(db.session, period)
    loan_report = reports.loan_report(db.session, period)
    policy_report = reports.policy_report(db.session)
    return render_template(
        "reports/index.html",
        form=form,
        period=period,
        permissions=permission_report,
        permission_charts=charts.permission_charts(permission_report),
        loans=loan_report,
        loan_charts=charts.loan_charts(loan_report),
        policy=policy_report,
        policy_charts=charts.policy_charts(policy_report),
        printed_at=utcnow(),
    )


@bp.get("/reports/permissions.csv")
@roles_required(*READERS)
def permissions_csv():
    form = PeriodForm(request.args)
    period = _period(form) if form.validate() else None
    if period is None:
        return render_template("reports/index.html", form=form, period=None), 422
    report = reports.permission_report(db.session, period)
    return _csv(reports.permission_csv(report), f"permissions-report-{period.slug}.csv")


@bp.get("/reports/loans.csv")
@roles_required(*READERS)
def loans_csv():
    form = PeriodForm(request.args)
    period = _period(form) if form.validate() else None
    if period is None:
        return render_template("reports/index.html", form=form, period=None), 422
    report = reports.loan_report(db.session, period)
    return _csv(reports.loan_csv(report), f"loans-report-{period.slug}.csv")


@bp.get("/reports/policy.csv")
@roles_required(*READERS)
def policy_csv():
    report = reports.policy_report(db.session)
    label = report.policy.label if report.policy else "none"
    safe = "".join(c if c.isalnum() else "-" for c in label).strip("-")[:40] or "version"
    return _csv(reports.policy_csv(report), f"policy-acceptance-{safe}-{utcnow():%Y-%m-%d}.csv")
