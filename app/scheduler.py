"""The embedded scheduler: a daemon thread per process runs the timed jobs every 30 seconds.

Every job is listed in ``app/jobs.py``, which registers it with ``register_timed_job(name, job)``; a job is
``job(session, now)`` and must be idempotent. Work too long for one transaction (the daily audit digest walks the whole chain)
registers with ``register_background_job(name, job)`` instead: ``job(app)`` runs after each tick, outside
the tick's transaction, and decides for itself whether it is due. The thread starts on a process's first request (so ``flask db upgrade`` and other
commands never start it, and each gunicorn worker starts its own after the fork). Several workers
are safe: every tick runs in one write transaction that first takes a database lock (PostgreSQL:
``pg_try_advisory_xact_lock``, skipping the tick when another process holds it; SQLite: the
``BEGIN IMMEDIATE`` write lock), and the jobs lock the rows they change. In production the thread
can be switched off (``LANYARD_SCHEDULER=0``) and ``flask scheduler`` run as its own process instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import write_intent
from app.extensions import db

log = logging.getLogger(__name__)

SCHEDULER_LOCK = 7_001_002
TimedJob = Callable[[Session, datetime], object]
BackgroundJob = Callable[[Flask], object]
_jobs: dict[str, TimedJob] = {}
_background_jobs: dict[str, BackgroundJob] = {}
_started_in_pid: int | None = None
_start_lock = threading.Lock()


def register_timed_job(name: str, job: TimedJob) -> None:
    _jobs[name] = job


def register_background_job(name: str, job: BackgroundJob) -> None:
    _background_jobs[name] = job


def run_background_jobs(app: Flask) -> dict[str, object]:
    """Run each background job in turn; one that fails is logged and the others still run."""
    results: dict[str, object] = {}
    for name, job in _background_jobs.items():
        try:
            results[name] = job(app)
        except Exception:
            log.exception("background job %s failed", name)
            db.session.rollback()
    return results


def _take_tick_lock(session: Session) -> bool:
    if session.get_bind().dialect.name == "postgresql":
        return bool(session.scalar(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SCHEDULER_LOCK}))
    return True


def run_timed_jobs(session: Session, now: datetime | None = None, names: list[str] | None = None) -> dict[str, object] | None:
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


def run_tick(app: Flask) -> None:
    """One tick: the timed jobs in their transaction, then the background jobs."""
    with app.app_context():
        try:
            run_timed_jobs(db.session)
        except Exception:  # keep the scheduler alive; the next tick tries again
            log.exception("timed jobs failed")
            db.session.rollback()
        try:
            run_background_jobs(app)
        finally:
            db.session.remove()


def run_forever(app: Flask, stop: threading.Event) -> None:
    """Tick now and then every LANYARD_SCHEDULER_SECONDS until ``stop`` is set (`flask scheduler`)."""
    interval = app.config["LANYARD_SCHEDULER_SECONDS"]
    run_tick(app)
    while not stop.wait(interval):
        run_tick(app)


def _loop(app: Flask, stop: threading.Event) -> None:
    while not stop.wait(app.config["LANYARD_SCHEDULER_SECONDS"]):
        run_tick(app)


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
        global _started_in_pid  # noqa: PLW0603 (one scheduler thread per process, guarded by _start_lock)
        if _started_in_pid == os.getpid():
            return
        with _start_lock:
            if _started_in_pid == os.getpid():
                return
            _started_in_pid = os.getpid()
            app.extensions["lanyard_scheduler"] = start_scheduler(app)

    app.before_request(start_scheduler_once)
