"""The embedded scheduler: a daemon thread per process runs the timed jobs every 30 seconds.

Features register jobs with ``register_timed_job(name, job)``; a job is ``job(session, now)`` and must
be idempotent. The thread starts on a process's first request (so ``flask db upgrade`` and other
commands never start it, and each gunicorn worker starts its own after the fork). Several workers
are safe: every tick runs in one write transaction that first takes a database lock (PostgreSQL:
``pg_try_advisory_xact_lock``, skipping the tick when another process holds it; SQLite: the
``BEGIN IMMEDIATE`` write lock), and the jobs lock the rows they change. In production the thread
can be switched off (``LANYARD_SCHEDULER=0``) and ``flask permissions run-jobs`` run from cron.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from flask import Flask

from app.clock import utcnow
from app.database import write_intent
from app.extensions import db

log = logging.getLogger(__name__)

SCHEDULER_LOCK = 7_001_002
TimedJob = Callable[[object, datetime], object]
_jobs: dict[str, TimedJob] = {}
_started_in_pid: int | None = None
_start_lock = threading.Lock()


def register_timed_job(name: str, job: TimedJob) -> None:
    _jobs[name] = job


def _take_tick_lock(session) -> bool:
    if session.get_bind().dialect.name == "postgresql":
        return bool(session.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SCHEDULER_LOCK}))
    return True


def run_timed_jobs(session, now: datetime | None = None, names: list[str] | None = None) -> dict[str, object] | None:
    """Run the registered jobs in one transaction and commit; None if another process holds the tick."""
    now = now or utcnow()
    with write_intent():
        if not _take_tick_lock(session):
            session.rollback()
            return None
        try:
            results = {name: job(session, now) for name, job in _jobs.items() if names is None or name in names}
            session.commit()
        except Exception:
            session.rollback()
            raise
    return results


def _loop(app: Flask, stop: threading.Event) -> None:
    interval = app.config["LANYARD_SCHEDULER_SECONDS"]
    while not stop.wait(interval):
        with app.app_context():
            try:
                run_timed_jobs(db.session)
            except Exception:  # keep the thread alive; the next tick tries again
                log.exception("timed jobs failed")
            finally:
                db.session.remove()


def start_scheduler(app: Flask) -> threading.Event:
    """Start a scheduler thread for ``app``. Returns the event that stops it."""
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(app, stop), name="lanyard-scheduler", daemon=True)
    thread.start()
    return stop


def init_scheduler(app: Flask) -> None:
    """Start the thread on this process's first request when LANYARD_SCHEDULER is on (never under tests)."""
    if not app.config.get("LANYARD_SCHEDULER") or app.testing:
        return

    def start_scheduler_once() -> None:
        global _started_in_pid
        if _started_in_pid == os.getpid():
            return
        with _start_lock:
            if _started_in_pid == os.getpid():
                return
            _started_in_pid = os.getpid()
            app.extensions["lanyard_scheduler"] = start_scheduler(app)

    app.before_request(start_scheduler_once)
