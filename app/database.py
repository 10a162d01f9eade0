"""Database behaviour Lanyard relies on: SQLite pragmas, write transactions, UTC datetimes.

SQLite lets two deferred transactions read the same row and both write, silently losing one update
and forking the audit chain. Code that reads-then-writes therefore opens its transaction with
``BEGIN IMMEDIATE``, taking the write lock before its first read. On PostgreSQL the same code paths
use row locks and an advisory lock (``lock_for_append``).

SQLite has one write lock for the whole database, so a request holds it for the write only:

- authentication (the session or API token lookup), the CSRF check, parsing the form and the policy
  gate run in a plain deferred read transaction (``BEGIN``);
- ``begin_write(session)`` then ends that read transaction and opens the request's *write phase*: the
  next statement (the first read of the view's read-decide-write, or the form key's claim) opens
  ``BEGIN IMMEDIATE``. ``app.web`` calls it for every request that may write (any non-GET method)
  from a ``before_request`` hook registered after the authentication, CSRF and policy hooks and
  before the form key is claimed, so a new writing route needs nothing of its own;
- the write phase ends with that transaction: a commit, or a rollback (a refusal settled by
  ``app.forms_support.refused``). Whatever the request reads afterwards, rendering the answer
  included, runs in a deferred read transaction again. A request that writes a second time calls
  ``begin_write`` again (the form key's first result does);
- a page drawn while the write phase is open but before anything was written (a form that failed
  validation) ends it first (``release_unused_write``, from ``before_render_template``), so the
  template renders outside the lock; a transaction that has written keeps it until the view commits.

Outside a request (CLI, jobs, workers, tests calling services) ``with write_intent():`` opens every
transaction in the block with ``BEGIN IMMEDIATE``, commits or not.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, DateTime, Result, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

_write_intent: ContextVar[bool] = ContextVar("lanyard_write_intent", default=False)
# The request's write phase (begin_write): unlike write_intent() it ends with the transaction it opened.
_write_phase: ContextVar[bool] = ContextVar("lanyard_write_phase", default=False)
_PHASE_KEY = "lanyard_write_phase"
_WROTE_KEY = "lanyard_wrote"


@contextmanager
def write_intent() -> Iterator[None]:
    """Open SQLite transactions started inside this block with BEGIN IMMEDIATE."""
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


def set_write_intent(value: bool) -> object:
    return _write_intent.set(value)


def reset_write_intent(token: object) -> None:
    _write_intent.reset(token)  # type: ignore[arg-type]


def wants_write_lock() -> bool:
    """Whether a transaction starting now opens with BEGIN IMMEDIATE (on SQLite)."""
    return _write_intent.get() or _write_phase.get()


def _pending(session: Session) -> bool:
    return bool(session.new or session.dirty or session.deleted)


def begin_write(session: Session) -> None:
    """End the read transaction and open the write phase: the next statement takes the write lock.

    Call it before the first read of a read-decide-write. The session must hold no unsaved changes
    (they would be lost with the read transaction): that is a programming error, raised. Objects
    loaded so far (``current_user``) are expired by the rollback and reload inside the write
    transaction, so every decision is taken on what the write lock protects.
    """
    if _pending(session):
        raise RuntimeError("begin_write needs a session without pending changes")
    session.rollback()
    session.info[_PHASE_KEY] = True
    session.info.pop(_WROTE_KEY, None)
    _write_phase.set(True)


def in_write_phase() -> bool:
    return _write_phase.get()


def end_write_phase(session: Session | None = None) -> None:
    """Forget the write phase (the request is over, or nothing was read in it yet)."""
    _write_phase.set(False)
    if session is not None:
        session.info.pop(_PHASE_KEY, None)
        session.info.pop(_WROTE_KEY, None)


def release_unused_write(session: Session) -> bool:
    """End an open write phase that has written nothing, so what follows (a page) reads outside the lock.

    Nothing is lost: the transaction holds no pending change and has sent no INSERT, UPDATE or
    DELETE. A transaction that has written keeps its lock until the route commits or rolls back.
    Returns whether the phase was ended.
    """
    if not _write_phase.get() or not session.info.get(_PHASE_KEY):
        return False
    if _pending(session) or session.info.get(_WROTE_KEY):
        return False
    session.rollback()  # ends the phase (after_transaction_end below), or nothing had begun yet
    end_write_phase(session)
    return True


@event.listens_for(Session, "after_transaction_end")
def _write_transaction_ended(session: Session, transaction) -> None:
    """The write phase lasts one transaction: its commit or rollback ends it (a savepoint's does not)."""
    if transaction.parent is None and session.info.pop(_PHASE_KEY, None):
        session.info.pop(_WROTE_KEY, None)
        _write_phase.set(False)


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _flush_context) -> None:
    if session.info.get(_PHASE_KEY):
        session.info[_WROTE_KEY] = True


_READ_ONLY_SQL = re.compile(r"\s*(SELECT|PRAGMA|EXPLAIN)\b", re.IGNORECASE)


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state) -> None:
    """An UPDATE, INSERT or DELETE (or SQL text that is not a plain read) marks the write phase as written."""
    session = state.session
    if not session.info.get(_PHASE_KEY) or session.info.get(_WROTE_KEY):
        return
    dml = state.is_insert or state.is_update or state.is_delete
    if dml or (not state.is_select and not _READ_ONLY_SQL.match(str(state.statement))):
        session.info[_WROTE_KEY] = True


@contextmanager
def long_read(session: Session) -> Iterator[None]:
    """A long read (walking a million audit events) in its own read transaction, outside the write lock.

    On SQLite a reader in WAL mode never blocks writers, but a BEGIN IMMEDIATE transaction would hold
    every writer back for the whole walk. The session must hold no unsaved or uncommitted writes: the
    transactions before and after the read are ended (rolled back) so the read starts on its own.
    """
    if _pending(session):
        raise RuntimeError("long_read needs a session without pending changes")
    phase = _write_phase.get()
    session.rollback()
    token = _write_intent.set(False)
    phase_token = _write_phase.set(False)
    try:
        yield
    finally:
        session.rollback()
        _write_intent.reset(token)
        _write_phase.reset(phase_token)
        if phase:
            begin_write(session)  # a request that was about to write still writes under the lock


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, _record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy's "begin" event emit BEGIN itself (see _begin_sqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@event.listens_for(Engine, "do_connect")
def _connect_timeout(dialect, _record, _cargs, cparams) -> None:
    """A PostgreSQL server that does not answer at all fails the request in seconds (a 503), rather than
    holding it for the operating system's TCP timeout and past gunicorn's worker timeout."""
    if dialect.name == "postgresql":
        cparams.setdefault("connect_timeout", 5)


@event.listens_for(Engine, "begin")
def _begin_sqlite(connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE" if wants_write_lock() else "BEGIN")


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (its cursor's rowcount; 0 when the driver cannot say)."""
    return cast(CursorResult[Any], result).rowcount or 0


def lock_for_append(session: Session, key: int) -> None:
    """Serialise writers on PostgreSQL with a transaction-scoped advisory lock.

    On SQLite the surrounding BEGIN IMMEDIATE already holds the only write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always handed back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use app.clock.utcnow()")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def ping(session: Session) -> None:
    """Ask the database the simplest question; a database error propagates (the health check's 503)."""
    session.execute(text("SELECT 1"))
