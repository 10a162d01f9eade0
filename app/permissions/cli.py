"""`flask permissions run-jobs`: the permission timed jobs once, for cron (the scheduler also runs them)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.extensions import db
from app.scheduler import run_timed_jobs
from app.services.permissions import JobReport

permissions_cli = AppGroup("permissions", help="Classroom device permissions.")


@permissions_cli.command("run-jobs")
def run_jobs_command() -> None:
    """Expire permissions that are over, escalate requests waiting too long and unreviewed emergency overrides (idempotent; for cron)."""
    results = run_timed_jobs(db.session, names=["permissions"])
    if results is None:
        click.echo("Another process is running the timed jobs; nothing done.")
        return
    report = results["permissions"]
    assert isinstance(report, JobReport)
    click.echo(f"Expired {report.expired}, escalated {report.escalated}, emergency reviews overdue {report.reviews_overdue}.")
