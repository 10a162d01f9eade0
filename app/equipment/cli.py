"""`flask equipment reminders`: run daily (e.g. cron at 08:00); running it twice sends nothing twice."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.database import write_intent
from app.extensions import db
from app.services.loans import send_loan_reminders

equipment_cli = AppGroup("equipment", help="School equipment on loan.")


@equipment_cli.command("reminders")
def reminders() -> None:
    """Remind borrowers of loans due today or overdue, and send the office the daily overdue summary."""
    with write_intent():
        report = send_loan_reminders(db.session)
        db.session.commit()
    click.echo(
        f"{report.school_date:%d/%m/%Y}: reminded {report.borrowers_reminded} borrower(s); "
        f"{report.overdue_count} overdue; office summary {'sent' if report.summary_sent else 'not needed or already sent today'}."
    )
