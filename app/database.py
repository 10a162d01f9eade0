"""Database behaviour Lanyard relies on: SQLite pragmas, write transactions, UTC datetimes.

SQLite lets two deferred transactions read the same row and both write, silently losing one update
and forking the audit chain. Every request that may write (any non-GET method) and every job that
reads-then-writes therefore opens its transaction with ``BEGIN IMMEDIATE``, taking the write lock
before its first read. On PostgreSQL the same code paths use row locks and an advisory lock.
"""

from __future__ import annotations

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
    return _write_intent.get()


@contextmanager
def long_read(session: Session) -> Iterator[None]:
    """A long read (walking a million audit events) in its own read transaction, outside the write lock.

    On SQLite a reader in WAL mode never blocks writers, but a BEGIN IMMEDIATE transaction would hold
    every writer back for the whole walk. The session must hold no unsaved or uncommitted writes: the
    transactions before and after the read are ended (rolled back) so the read starts on its own.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("long_read needs a session without pending changes")
    session.rollback()
    token = _write_intent.set(False)
    try:
        yield
    finally:
        session.rollback()
        _write_intent.reset(token)


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
