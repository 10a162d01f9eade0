"""The request's write phase (app/database.py): when it opens, what ends it, and what it refuses."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from app.database import begin_write, end_write_phase, in_write_phase, long_read, release_unused_write, wants_write_lock
from app.extensions import db
from app.models import FormSubmission


@pytest.fixture(autouse=True)
def _phase_closed_after(app):
    yield
    db.session.rollback()
    end_write_phase(db.session)


def _row(key: str) -> FormSubmission:
    return FormSubmission(key=key, user_id=None, endpoint="test")


def _count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(FormSubmission)) or 0


def _another_writer_must_wait() -> bool:
    """SQLite: whether a second connection asking for the write lock, without waiting, is refused."""
    other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        other.close()


def test_begin_write_opens_the_next_transaction_with_the_write_lock_and_its_commit_ends_it(app):
    sqlite = db.engine.dialect.name == "sqlite"
    _count()  # a read transaction is open
    assert not wants_write_lock()
    assert not (sqlite and _another_writer_must_wait())
    begin_write(db.session)
    assert in_write_phase() and wants_write_lock()
    _count()  # the first read takes the lock
    assert not sqlite or _another_writer_must_wait()
    db.session.add(_row("one"))
    db.session.commit()
    assert not in_write_phase() and not wants_write_lock()
    assert _count() == 1


def test_a_rollback_ends_the_write_phase_and_a_savepoint_does_not(app):
    begin_write(db.session)
    with db.session.begin_nested() as savepoint:
        db.session.add(_row("inner"))
        db.session.flush()
        savepoint.rollback()
    assert in_write_phase(), "a savepoint's end is not the write transaction's end"
    db.session.rollback()
    assert not in_write_phase()


def test_begin_write_refuses_a_session_holding_unsaved_changes(app):
    db.session.add(_row("pending"))
    with pytest.raises(RuntimeError, match="pending changes"):
        begin_write(db.session)
    assert not in_write_phase()


def test_an_unused_write_is_released_before_drawing_a_page(app):
    begin_write(db.session)
    assert _count() == 0  # read inside the write transaction, nothing written
    assert release_unused_write(db.session)
    assert not in_write_phase() and not db.session().in_transaction()


@pytest.mark.parametrize("how", ["flushed", "pending", "statement"])
def test_a_write_transaction_that_has_written_keeps_its_lock_until_the_route_commits(app, how):
    begin_write(db.session)
    if how == "flushed":
        db.session.add(_row("flushed"))
        db.session.flush()
    elif how == "pending":
        db.session.add(_row("pending"))
    else:
        db.session.execute(sa.delete(FormSubmission).where(FormSubmission.key == "nothing-to-delete"))
    assert not release_unused_write(db.session)
    assert in_write_phase()
    db.session.commit()
    assert not in_write_phase()


def test_a_long_read_inside_the_write_phase_reads_outside_it_and_gives_it_back(app):
    begin_write(db.session)
    with long_read(db.session):
        assert not wants_write_lock()
        _count()
    assert in_write_phase() and wants_write_lock()
