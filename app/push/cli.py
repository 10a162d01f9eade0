"""`flask push-worker`: the push sender as its own process (production), safe to run several of."""

from __future__ import annotations

import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from app.outbox import serve_until_stopped


@click.command("push-worker")
@click.option("--once", is_flag=True, help="Send everything due now, then exit.")
@click.option(
    "--poll",
    type=float,
    default=None,
    help="Seconds between looks at the outbox. Default: 0.02 on SQLite (a cheap indexed read); on PostgreSQL commits wake the "
    "worker (LISTEN/NOTIFY), so it looks every 2 s only to catch retries.",
)
@with_appcontext
def push_worker(once: bool, poll: float | None) -> None:
    """Drain the Web Push outbox until stopped (SIGTERM or Ctrl-C)."""
    from concurrent.futures import ThreadPoolExecutor

    from app.extensions import db
    from app.push.worker import PushWorker, SenderSettings, drain_until_idle

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        settings = SenderSettings.from_app(app)
        with ThreadPoolExecutor(settings.send_threads) as pool:
            report = drain_until_idle(db.session(), settings, pool)
        click.echo(f"Sent {report.sent}, retrying {report.retried}, gone {report.gone}, dropped {report.dead}.")
        return
    postgres = db.engine.dialect.name == "postgresql"
    worker_poll = poll if poll is not None else (2.0 if postgres else 0.02)
    worker = PushWorker(app, threading.Event(), listen=postgres, poll_seconds=worker_poll, own_process=True)
    woken = "woken by LISTEN/NOTIFY, " if postgres else ""
    serve_until_stopped(worker, f"Push worker sending as {worker.settings.contact}; {woken}looking every {worker_poll:g}s.")
