"""Retention checkpoints are part of the chain (DESIGN.md section 6): a forged one cuts nothing and fails verify.

The attacker here has SQL access to the database: they can insert rows, run deletes, drop or disable
the guard triggers, and append well-formed events (the hashing is no secret). They cannot change the
heads already published outside the database, nor the clock of whoever verifies.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from app.database import write_intent
from app.extensions import db
from app.models import AuditCheckpoint, AuditEvent, AuditLink, Role
from app.services import audit_digest
from app.services.audit import CHECKPOINT_ACTION, record_checkpoint, verify_chain
from app.services.audit_log import published_heads
from app.services.retention import run_retention
from app.services.settings import set_setting
from tests.factories import make_device, make_user, sign_in


def _seqs() -> list[int]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)))


def _hash_of(seq: int) -> str:
    return db.session.scalar(sa.select(AuditEvent.hash).where(AuditEvent.seq == seq))


def _forge_checkpoint_row(up_to_seq: int, event_seq: int | None = None) -> None:
    """Insert a checkpoint row by hand, as someone with database access could."""
    db.session.execute(
        sa.text(
            "INSERT INTO audit_checkpoints (up_to_seq, hash, created_at, events_removed, event_seq) "
            "VALUES (:up_to_seq, :hash, '2026-11-25 09:00:00+00:00', :up_to_seq, :event_seq)"
        ),
        {"up_to_seq": up_to_seq, "hash": _hash_of(up_to_seq), "event_seq": event_seq},
    )
    db.session.commit()


def _refused(sql: str) -> bool:
    """Run a raw statement; True when the database refused it as a change to the append-only log."""
    try:
        db.session.execute(sa.text(sql))
        db.session.commit()
    except DatabaseError as error:
        db.session.rollback()
        assert "append-only" in str(error)
        return True
    return False


def _without_the_guards(*statements: str) -> None:
    """Switch the delete guards off (the attacker owns the database), run the statements, switch them on."""
    sqlite = db.engine.dialect.name == "sqlite"
    for table in ("audit_events", "audit_links"):
        db.session.execute(
            sa.text(f"DROP TRIGGER {table}_no_delete" if sqlite else f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change")
        )
    for sql in statements:
        db.session.execute(sa.text(sql))
    if not sqlite:
        for table in ("audit_events", "audit_links"):
            db.session.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_change"))
    db.session.commit()


def _school_with_events() -> None:
    owner = make_user(Role.ADMIN)
    for _ in range(3):
        make_device(owner)


def _cli_verify(app):
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def _audit_page_says(client, reader) -> str:
    sign_in(client, reader)
    page = client.get("/audit").get_data(as_text=True)
    if 'class="chain-ok"' in page:
        return "verified"
    assert 'class="chain-broken"' in page, "the audit page shows the chain's status"
    return "broken"


def _publish(app, now):
    result = audit_digest.publish_daily_head(db.session, audit_digest.heads_path(app.instance_path), now, force=True)
    assert result is not None and result.published is not None, result and result.report.problem
    return result.published


def _retention(now):
    with write_intent():
        report = run_retention(db.session, now)
        db.session.commit()
    return report


@pytest.mark.parametrize("vouching_event", ["none", "the newest event", "a future event"])
def test_a_forged_checkpoint_at_the_newest_event_lets_nothing_be_deleted(app, vouching_event):
    _school_with_events()
    seqs = _seqs()
    newest = seqs[-1]
    event_seq = {"none": None, "the newest event": newest, "a future event": newest + 1}[vouching_event]
    _forge_checkpoint_row(newest, event_seq)

    assert _refused("DELETE FROM audit_links")
    assert _refused("DELETE FROM audit_events")
    assert _refused(f"DELETE FROM audit_events WHERE seq = {seqs[0]}")
    assert _seqs() == seqs

    report = verify_chain(db.session)
    assert not report.ok
    assert report.broken_at_seq == newest
    assert f"checkpoint at event {newest} is not vouched for" in report.problem


def test_a_forged_checkpoint_with_the_guard_dropped_and_every_event_deleted_fails_verify(app, client):
    _school_with_events()
    reader = make_user(Role.GOVERNOR)
    newest = _seqs()[-1]
    _forge_checkpoint_row(newest)
    _without_the_guards("DELETE FROM audit_links", "DELETE FROM audit_events")
    assert _seqs() == []

    result = _cli_verify(app)
    assert result.exit_code == 1
    assert f"checkpoint at event {newest} is not vouched for" in result.output
    assert "no checkpoint event" in result.output
    assert _audit_page_says(client, reader) == "broken"


def test_a_forged_checkpoint_at_a_middle_event_lets_nothing_below_it_be_deleted(app, client):
    _school_with_events()
    reader = make_user(Role.GOVERNOR)
    seqs = _seqs()
    middle = seqs[len(seqs) // 2]
    _forge_checkpoint_row(middle)

    assert _refused(f"DELETE FROM audit_links WHERE seq <= {middle}")
    assert _refused(f"DELETE FROM audit_events WHERE seq <= {middle}")
    assert _refused(f"DELETE FROM audit_events WHERE seq = {middle}")
    assert _seqs() == seqs

    _without_the_guards(f"DELETE FROM audit_links WHERE seq <= {middle}", f"DELETE FROM audit_events WHERE seq <= {middle}")
    result = _cli_verify(app)
    assert result.exit_code == 1
    assert f"checkpoint at event {middle} is not vouched for" in result.output
    assert _audit_page_says(client, reader) == "broken"


def test_a_forged_checkpoint_cannot_borrow_a_real_checkpoint_event(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    with write_intent():
        set_setting(db.session, admin, "retention.audit_event_years", 1)
        db.session.commit()
    frozen_clock.advance(days=400)
    make_device(make_user())
    assert _retention(frozen_clock.now).audit_events > 0
    real = db.session.scalar(sa.select(AuditCheckpoint))
    assert verify_chain(db.session).ok
    make_device(admin)
    later = _seqs()[-2]
    _forge_checkpoint_row(later, real.event_seq)

    assert _refused(f"DELETE FROM audit_events WHERE seq <= {later}")
    assert _refused(f"DELETE FROM audit_events WHERE seq = {real.up_to_seq + 1}")
    report = verify_chain(db.session)
    assert not report.ok and f"checkpoint at event {later} is not vouched for" in report.problem


def test_a_hand_written_checkpoint_event_outside_the_chain_fails_verify(app):
    """The guard reads the vouching event's details, not its hash: verify then finds the event forged."""
    _school_with_events()
    seqs = _seqs()
    newest = seqs[-1]
    forged = newest + 1
    details = json.dumps(
        {
            "before": "2020-01-01T00:00:00+00:00",
            "events_removed": len(seqs),
            "hash": " ".join(_hash_of(newest)[i : i + 8] for i in range(0, 64, 8)),
            "up_to_seq": newest,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    db.session.execute(
        sa.text(
            "INSERT INTO audit_events (seq, occurred_at, actor_id, action, subject_type, subject_id, details, ip, user_agent, prev_hash, hash) "
            "VALUES (:seq, '2026-11-25 09:00:00+00:00', NULL, :action, 'audit', :subject, :details, '', '', :prev, :hash)"
        ),
        {
            "seq": forged,
            "action": CHECKPOINT_ACTION,
            "subject": str(newest),
            "details": details,
            "prev": _hash_of(newest),
            "hash": "f" * 64,
        },
    )
    db.session.commit()
    _forge_checkpoint_row(newest, forged)
    assert not _refused(f"DELETE FROM audit_links WHERE seq <= {newest}")
    assert not _refused(f"DELETE FROM audit_events WHERE seq <= {newest}")

    report = verify_chain(db.session)
    assert not report.ok
    assert report.broken_at_seq == forged and "altered" in report.problem


def _chained_forgery(cut: int, before) -> None:
    """A well-formed checkpoint appended to the chain (the hashing is no secret), then the cut behind it."""
    with write_intent():
        record_checkpoint(db.session, up_to_seq=cut, replaced_hash=_hash_of(cut), before=before, events_removed=cut, now=before)
        db.session.commit()
    assert not _refused(f"DELETE FROM audit_links WHERE seq <= {cut}")
    assert not _refused(f"DELETE FROM audit_events WHERE seq <= {cut}")


@pytest.mark.parametrize("cut_at", ["the published head", "the newest event"])
@pytest.mark.parametrize("claimed_limit_days_ago", [0, 366])
def test_a_chained_forged_checkpoint_is_caught_by_the_published_heads(app, client, frozen_clock, cut_at, claimed_limit_days_ago):
    _school_with_events()
    reader = make_user(Role.GOVERNOR)
    head = _publish(app, frozen_clock.now)
    frozen_clock.advance(days=3)
    make_device(make_user())
    cut = head["seq"] if cut_at == "the published head" else _seqs()[-1]
    _chained_forgery(cut, frozen_clock.now - timedelta(days=claimed_limit_days_ago))

    report = verify_chain(db.session, published_heads(audit_digest.heads_path(app.instance_path)))
    assert not report.ok
    assert "retention ever allows" in report.problem or "too recently" in report.problem
    result = _cli_verify(app)
    assert result.exit_code == 1 and "BROKEN" in result.output
    assert _audit_page_says(client, reader) == "broken"


def test_a_chained_forged_checkpoint_dated_in_the_future_is_caught(app, frozen_clock):
    _school_with_events()
    head = _publish(app, frozen_clock.now)
    started = frozen_clock.now
    frozen_clock.advance(days=400)  # the forger dates their checkpoint a year ahead...
    _chained_forgery(head["seq"], started + timedelta(days=2))
    frozen_clock.set(started + timedelta(days=3))  # ...but verify reads the real clock

    report = verify_chain(db.session, published_heads(audit_digest.heads_path(app.instance_path)))
    assert not report.ok and "dated in the future" in report.problem


def test_real_retention_runs_verify_with_heads_published_before_and_after_each_cut(app, client, frozen_clock):
    admin = make_user(Role.ADMIN)
    reader = make_user(Role.GOVERNOR)
    with write_intent():
        set_setting(db.session, admin, "retention.audit_event_years", 1)
        db.session.commit()
    make_device(admin)
    _publish(app, frozen_clock.now)
    frozen_clock.advance(days=10)
    make_device(admin)
    _publish(app, frozen_clock.now)

    frozen_clock.advance(days=390)
    make_device(make_user())
    _publish(app, frozen_clock.now)
    first = _retention(frozen_clock.now)
    assert first.audit_events > 0
    _publish(app, frozen_clock.now)
    result = _cli_verify(app)
    assert result.exit_code == 0, result.output
    assert "retention checkpoint" in result.output
    assert _audit_page_says(client, reader) == "verified"

    frozen_clock.advance(days=400)
    make_device(make_user())
    second = _retention(frozen_clock.now)
    assert second.audit_events > 0
    checkpoints = db.session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.up_to_seq)).all()
    assert len(checkpoints) == 2
    assert checkpoints[1].up_to_seq > checkpoints[0].event_seq, "the second cut took the first checkpoint's event with it"
    _publish(app, frozen_clock.now)
    heads = published_heads(audit_digest.heads_path(app.instance_path))
    assert len(heads) == 5 and sum(head["seq"] <= checkpoints[1].up_to_seq for head in heads) == 4
    result = _cli_verify(app)
    assert result.exit_code == 0, result.output
    assert _audit_page_says(client, reader) == "verified"
    assert _retention(frozen_clock.now).audit_events == 0, "a second run at once cuts nothing more"


def test_the_checkpoint_event_records_the_cut_and_the_hash_it_replaces(app, frozen_clock):
    admin = make_user(Role.ADMIN)
    with write_intent():
        set_setting(db.session, admin, "retention.audit_event_years", 2)
        db.session.commit()
    frozen_clock.advance(days=800)
    make_device(admin)
    _retention(frozen_clock.now)
    checkpoint = db.session.scalar(sa.select(AuditCheckpoint))
    event = db.session.get(AuditEvent, checkpoint.event_seq)
    assert event.action == CHECKPOINT_ACTION and event.seq > checkpoint.up_to_seq
    details = json.loads(event.details)
    assert details["up_to_seq"] == checkpoint.up_to_seq
    assert details["hash"].replace(" ", "") == checkpoint.hash
    assert details["events_removed"] == checkpoint.events_removed
    assert db.session.scalar(sa.select(sa.func.min(AuditEvent.seq))) == checkpoint.up_to_seq + 1
    assert db.session.scalar(sa.select(AuditEvent.prev_hash).where(AuditEvent.seq == checkpoint.up_to_seq + 1)) == checkpoint.hash
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditLink).where(AuditLink.seq <= checkpoint.up_to_seq)) == 0


def test_a_hash_with_a_long_run_of_digits_is_recorded_whole(app, frozen_clock):
    """canonical_details redacts any 14-digit run as a possible IMEI; a hex hash can hold one."""
    _school_with_events()
    newest = _seqs()[-1]
    digits = "0123456789" * 6 + "abcd"
    with write_intent():
        checkpoint = record_checkpoint(
            db.session, up_to_seq=newest, replaced_hash=digits, before=frozen_clock.now, events_removed=0, now=frozen_clock.now
        )
        db.session.commit()
    details = json.loads(db.session.get(AuditEvent, checkpoint.event_seq).details)
    assert details["hash"].replace(" ", "") == digits


def test_a_head_published_after_the_cut_and_then_deleted_fails_verify(app, client, frozen_clock):
    admin = make_user(Role.ADMIN)
    reader = make_user(Role.GOVERNOR)
    with write_intent():
        set_setting(db.session, admin, "retention.audit_event_years", 1)
        db.session.commit()
    make_device(admin)
    frozen_clock.advance(days=400)
    make_device(admin)
    _retention(frozen_clock.now)
    checkpoint = db.session.scalar(sa.select(AuditCheckpoint))
    head = _publish(app, frozen_clock.now)
    assert head["seq"] > checkpoint.up_to_seq
    assert _cli_verify(app).exit_code == 0

    assert _refused(f"DELETE FROM audit_events WHERE seq >= {head['seq']}")
    _without_the_guards(
        f"DELETE FROM audit_links WHERE seq >= {head['seq']}", f"DELETE FROM audit_events WHERE seq >= {head['seq']}"
    )
    result = _cli_verify(app)
    assert result.exit_code == 1
    assert f"events up to {head['seq']} were published but are gone" in result.output
    assert _audit_page_says(client, reader) == "broken"


def test_a_checkpoint_made_before_checkpoints_were_chained_is_reported_and_guards_nothing(app):
    """Migration 0011 leaves old checkpoints unvouched (a forged one looks the same) and guards the rest."""
    from flask_migrate import downgrade, upgrade

    _school_with_events()
    seqs = _seqs()
    middle = seqs[len(seqs) // 2]
    db.session.remove()
    downgrade(revision="0009_audit_speed")
    db.session.execute(
        sa.text(
            "INSERT INTO audit_checkpoints (up_to_seq, hash, created_at, events_removed) VALUES (:seq, :hash, '2026-11-25 09:00:00+00:00', :seq)"
        ),
        {"seq": middle, "hash": _hash_of(middle)},
    )
    db.session.execute(sa.text(f"DELETE FROM audit_links WHERE seq <= {middle}"))
    db.session.execute(sa.text(f"DELETE FROM audit_events WHERE seq <= {middle}"))  # the old guard allowed it
    db.session.commit()
    db.session.remove()
    upgrade(revision="head")

    assert _seqs() == [seq for seq in seqs if seq > middle]
    assert _refused(f"DELETE FROM audit_events WHERE seq = {middle + 1}")
    report = verify_chain(db.session)
    assert not report.ok and report.broken_at_seq == middle
    assert "no checkpoint event" in report.problem
