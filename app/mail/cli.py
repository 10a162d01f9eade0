"""`flask mail-worker`: the mail sender as its own process (production), safe to run several of."""

from __future__ import annotations

import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from app.outbox import serve_until_stopped


@click.command("mail-worker")
@click.option("--once", is_flag=True, help="Send everything due now, then exit.")
@click.option(
    "--poll",
    type=float,
    default=None,
    help="Seconds between looks at the outbox. Default: 1 on SQLite; on PostgreSQL commits wake the worker "
    "(LISTEN/NOTIFY), so it looks every 5 s only to catch retries.",
)
@with_appcontext
def mail_worker(once: bool, poll: float | None) -> None:
    """Send the email outbox until stopped (SIGTERM or Ctrl-C)."""
    from app.extensions import db
    from app.mail.worker import MailSettings, MailWorker, drain_until_idle

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = MailSettings.from_app(app)
    if settings.mode == "off":
        raise click.ClickException("No mail server is configured: set LANYARD_SMTP_HOST (see the README).")
    if once:
        report = drain_until_idle(db.session(), settings)
        click.echo(f"Sent {report.sent}, retrying {report.retried}, dropped {report.dead}.")
        return
    postgres = db.engine.dialect.name == "postgresql"
    worker_poll = poll if poll is not None else (5.0 if postgres else 1.0)
    worker = MailWorker(app, threading.Event(), listen=postgres, poll_seconds=worker_poll, own_process=True)
    where = f"{settings.host}:{settings.port}" if settings.mode == "smtp" else "the /dev/mail page"
    serve_until_stopped(worker, f"Mail worker sending to {where} as {settings.sender}; looking every {worker_poll:g}s.")
