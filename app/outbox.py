"""What the outbox senders share (Web Push in ``app/push/worker.py``, email in ``app/mail/worker.py``).

Both drain a table of queued messages after commit: they claim due rows under a lease, send outside any
transaction, record each result, retry with exponential backoff and drop after the attempt limit. The
loop around that is the same for both and lives here: it wakes on a commit that queued messages (an
after-commit hook in this process, PostgreSQL LISTEN/NOTIFY from another), on the next due retry or every
poll; and neither a lost database nor one bad message ends it. A failure is logged, the session and the
LISTEN connection are dropped, and the loop waits with capped, jittered exponential backoff before it
connects (and listens) again and sends what accumulated meanwhile.

These are workers, not domain services: they commit their own short transactions.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.clock import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)


def wake_on_commit(queued_flag: str) -> threading.Event:
    """An event set after any commit whose session queued a message (``session.info[queued_flag]``), so this
    process's sender wakes at once; a rollback forgets the flag, since nothing was queued after all."""
    wake = threading.Event()

    @event.listens_for(Session, "after_commit")
    def _wake_sender_after_commit(session: Session) -> None:
        if session.info.pop(queued_flag, False):
            wake.set()

    @event.listens_for(Session, "after_soft_rollback")
    def _forget_queued_after_rollback(session: Session, _previous_transaction: object) -> None:
        session.info.pop(queued_flag, None)

    return wake


class ReconnectSettings(Protocol):
    reconnect_base_seconds: float
    reconnect_cap_seconds: float


def exponential_backoff(base_seconds: float, attempts: int, cap: timedelta = MAX_BACKOFF) -> timedelta:
    """Base, 2x base, 4x base, ... capped (an hour by default)."""
    return min(timedelta(seconds=base_seconds * (2 ** max(0, min(attempts, 30) - 1))), cap)


def reconnect_delay(settings: ReconnectSettings, failures: int) -> float:
    """Seconds to wait after ``failures`` database failures in a row: doubling, capped, with jitter
    (so several workers that lost the same database do not all come back in the same instant)."""
    ceiling = min(settings.reconnect_cap_seconds, settings.reconnect_base_seconds * (2 ** max(0, min(failures, 32) - 1)))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


def seconds_until(session: Session, soonest_query: sa.Select[Any]) -> float | None:
    """Seconds until ``soonest_query``'s time (the next pending message's), 0 if past, None if there is none.

    The read transaction is ended at once, so an idle look holds nothing.
    """
    soonest = session.scalar(soonest_query)
    session.rollback()
    if soonest is None:
        return None
    if soonest.tzinfo is None:  # min() on SQLite bypasses the column type
        soonest = datetime.fromisoformat(str(soonest)).replace(tzinfo=utcnow().tzinfo)
    return max(0.0, (soonest - utcnow()).total_seconds())


class PostgresListener:
    """LISTEN on an outbox's channel, so a separate worker process hears of new messages at commit."""

    def __init__(self, engine: sa.Engine, channel: str, name: str) -> None:
        import psycopg

        self.name = name
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
        self.connection.execute(f"LISTEN {channel}")

    def wait(self, timeout: float) -> None:
        for _notice in self.connection.notifies(timeout=timeout, stop_after=1):
            break

    def close(self) -> None:
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001 (a connection the server already ended may fail to close)
            log.debug("%s: closing the LISTEN connection failed", self.name, exc_info=True)


class OutboxWorker(ABC):
    """The sender loop's frame: stopping, restarting, backing off after a failure and recovering.

    A subclass sets ``name`` (for the log), ``channel`` (for LISTEN) and writes ``run()`` with its own
    sending; inside its loop it calls ``listen_if_wanted``, ``recovered`` after a good round and
    ``failed`` in its ``except``.
    """

    name = "outbox sender"
    channel = ""

    def __init__(
        self,
        app: Flask,
        settings: Any,
        wake: threading.Event,
        *,
        listen: bool = False,
        poll_seconds: float | None = None,
        own_process: bool = False,
    ) -> None:
        self.app = app
        self.settings = settings
        self.poll_seconds = settings.poll_seconds if poll_seconds is None else poll_seconds
        self.wake = wake
        self.listen = listen
        # A `flask ...-worker` process owns its engine and may throw the whole pool away after a failure;
        # a thread inside a web process leaves the shared pool to pre-ping and invalidation.
        self.own_process = own_process
        self.stop_event = threading.Event()
        self.database_failures = 0  # in a row; 0 while the database answers
        self.reconnects = 0  # times the loop came back after losing the database

    def stop(self) -> None:
        self.stop_event.set()
        self.wake.set()

    @abstractmethod
    def run(self) -> None:
        """The sender's loop, until ``stop()``."""

    def run_forever(self) -> None:
        """Run until stopped, starting the loop again should anything ever escape it."""
        restarts = 0
        while not self.stop_event.is_set():
            try:
                self.run()
            except Exception:  # noqa: BLE001 (the sender must outlive any one failure)
                restarts += 1
                log_for(self).exception("%s: the send loop stopped unexpectedly; starting it again", self.name)
                self.stop_event.wait(reconnect_delay(self.settings, restarts))

    def wants_listener(self) -> bool:
        from app.extensions import db

        return self.listen and db.engine.dialect.name == "postgresql"

    def listen_if_wanted(self, listener: PostgresListener | None) -> PostgresListener | None:
        """The LISTEN connection, opened (before looking, so nothing committed in between goes unheard) if wanted."""
        from app.extensions import db

        if listener is None and self.wants_listener():
            return PostgresListener(db.engine, self.channel, self.name)
        return listener

    def forget_connections(self, listener: PostgresListener | None) -> None:
        """Drop the session's (possibly dead) connection and the LISTEN connection after a failure."""
        from app.extensions import db

        if listener is not None:
            listener.close()
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 (the connection may be gone already)
            log_for(self).debug("%s: rollback after a failure failed", self.name, exc_info=True)
        try:
            db.session.remove()
            if self.own_process:
                db.engine.dispose()
        except Exception:  # noqa: BLE001
            log_for(self).debug("%s: discarding connections failed", self.name, exc_info=True)

    def failed(self, error: Exception, listener: PostgresListener | None) -> None:
        """Log a failure of the loop, drop the connections and wait (backing off) before the next round."""
        self.database_failures += 1
        delay = reconnect_delay(self.settings, self.database_failures)
        database = isinstance(error, (sa.exc.SQLAlchemyError, OSError)) or type(error).__module__.startswith("psycopg")
        log_for(self).exception(
            "%s: %s (failure %d in a row); connecting again in %.1fs",
            self.name,
            "lost the database" if database else "unexpected error",
            self.database_failures,
            delay,
        )
        self.forget_connections(listener)
        self.stop_event.wait(delay)

    def recovered(self) -> None:
        if self.database_failures:
            self.reconnects += 1
            log_for(self).warning(
                "%s: the database answers again after %d failures; sending resumes", self.name, self.database_failures
            )
            self.database_failures = 0


def log_for(worker: OutboxWorker) -> logging.Logger:
    """The logger of the worker's own module (``app.push.worker``, ``app.mail.worker``), as before the split."""
    return logging.getLogger(type(worker).__module__)


class EmbeddedWorkers:
    """At most one sender thread per process (a forked gunicorn worker starts its own)."""

    def __init__(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self.running: dict[int, tuple[threading.Thread, OutboxWorker]] = {}
        self.lock = threading.Lock()

    def start(self, make: Callable[[], OutboxWorker]) -> OutboxWorker:
        with self.lock:
            running = self.running.get(os.getpid())
            if running is not None and running[0].is_alive():
                return running[1]
            worker = make()
            thread = threading.Thread(target=worker.run_forever, name=self.thread_name, daemon=True)
            thread.start()
            self.running[os.getpid()] = (thread, worker)
            return worker

    def stop(self, timeout: float = 5.0) -> None:
        with self.lock:
            running = self.running.pop(os.getpid(), None)
        if running is not None:
            running[1].stop()
            running[0].join(timeout)


def serve_until_stopped(worker: OutboxWorker, banner: str) -> None:
    """A `flask ...-worker` process: say what it does, then send until SIGTERM or Ctrl-C.

    A lost database or a bad message is logged and waited out inside the loop, never the end of the process.
    """
    import signal

    import click

    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    click.echo(banner)
    try:
        worker.run_forever()
    except KeyboardInterrupt:
        worker.stop()
