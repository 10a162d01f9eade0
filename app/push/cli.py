"""`flask push-worker`: the push sender as its own process (production), safe to run several of."""

from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("push-worker")
@click.option("--once", is_flag=True, help="Send everything due now, then exit.")
@with_appcontext
def push_worker(once: bool) -> None:
    """Drain the Web Push outbox until stopped (SIGTERM or Ctrl-C)."""
    from concurrent.futures import ThreadPoolExecutor

    from app.extensions import db
    from app.services.push_sender import PushWorker, SenderSettings, drain_until_idle

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        settings = SenderSettings.from_app(app)
        with ThreadPoolExecutor(settings.send_threads) as pool:
            report = drain_until_idle(db.session, settings, pool)
        click.echo(f"Sent {report.sent}, retrying {report.retried}, gone {report.gone}, dropped {report.dead}.")
        return
    worker = PushWorker(app)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    click.echo(f"Push worker sending as {worker.settings.contact}; polling every {worker.settings.poll_seconds:g}s.")
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()
