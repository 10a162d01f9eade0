"""The audit chain (DESIGN.md section 6): append-only in the database, hash-chained, serialised appends."""

from __future__ import annotations

import itertools
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, PersonalDevice
from app.services import devices
from app.services.audit import GENESIS_HASH, record_audit_event, verify_chain
from tests.factories import make_device, make_imei, make_user


def _events():
    return db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq)).all()


def test_every_event_links_to_the_one_before(app):
    user = make_user()
    make_device(user)
    events = _events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    assert verify_chain(db.session).ok


def test_update_is_refused_by_the_database(app):
    make_user()
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(sa.text("UPDATE audit_events SET action = 'tampered'"))
        db.session.flush()
    db.session.rollback()
    assert "tampered" not in {e.action for e in _events()}


def test_delete_is_refused_by_the_database(app):
    make_user()
    count = len(_events())
    with pytest.raises(DatabaseError, match="append-only"):
        db.session.execute(sa.text("DELETE FROM audit_events"))
        db.session.flush()
    db.session.rollback()
    assert len(_events()) == count


def _tamper_behind_the_triggers_back(sql: str) -> None:
    """What someone with raw database access could do: switch the guard off, edit, switch it on."""
    if db.engine.dialect.name == "sqlite":
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
        db.session.execute(sa.text(sql))
    else:
        db.session.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change"))
        db.session.execute(sa.text(sql))
        db.session.execute(sa.text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change"))
    db.session.commit()


def test_verify_finds_a_row_altered_behind_the_triggers_back(app):
    user = make_user()
    make_device(user)
    make_device(user)
    assert verify_chain(db.session).ok
    _tamper_behind_the_triggers_back('UPDATE audit_events SET details = \'{"kind":"camera"}\' WHERE seq = 2')
    report = verify_chain(db.session)
    assert not report.ok
    assert report.broken_at_seq == 2
    assert report.verified_count == 1
    assert "altered" in report.problem


def test_verify_finds_a_deleted_row_in_the_middle(app):
    user = make_user()
    make_device(user)
    make_device(user)
    _tamper_behind_the_triggers_back("DELETE FROM audit_events WHERE seq = 2")
    report = verify_chain(db.session)
    assert report.broken_at_seq == 2
    assert "missing" in report.problem


def test_verify_finds_the_newest_events_deleted_against_the_published_head(app):
    user = make_user()
    make_device(user)
    head = verify_chain(db.session)
    make_device(user)
    _tamper_behind_the_triggers_back(f"DELETE FROM audit_events WHERE seq >= {head.last_seq}")
    assert verify_chain(db.session).ok, "a chain alone cannot see its newest events deleted"
    report = verify_chain(db.session, published_head=(head.last_seq, head.last_hash))
    assert not report.ok
    assert "published" in report.problem


def test_details_never_hold_a_full_imei(app):
    user = make_user()
    imei = make_imei()
    with write_intent():
        event = record_audit_event(db.session, user, "note.typed", "thing", 1, {"text": f"my IMEI is {imei}"})
        db.session.commit()
    assert imei not in event.details and "[redacted]" in event.details
    assert verify_chain(db.session).ok


def test_registering_a_device_audits_only_the_last_four_digits(app):
    user = make_user()
    imei = make_imei()
    make_device(user, imei1=imei)
    event = _events()[-1]
    assert event.action == "device.registered"
    assert imei not in event.details
    assert imei[-4:] in event.details


def test_appending_outside_a_write_transaction_is_refused_on_sqlite(app):
    """SQLite needs BEGIN IMMEDIATE to serialise appends; PostgreSQL takes its advisory lock itself."""
    if db.engine.dialect.name == "sqlite":
        with pytest.raises(RuntimeError, match="BEGIN IMMEDIATE"):
            record_audit_event(db.session, None, "test.event")
        db.session.rollback()
    else:
        event = record_audit_event(db.session, None, "test.event")
        db.session.commit()
        assert event.seq == 1
        assert verify_chain(db.session).ok


def test_fifty_threads_registering_at_once_lose_nothing_and_keep_one_chain(app):
    owners = [make_user().id for _ in range(5)]
    imeis = [make_imei() for _ in range(50)]
    start = threading.Barrier(50)
    failures: list[BaseException] = []

    def register(n: int) -> None:
        with app.app_context():
            try:
                start.wait(timeout=30)
                with write_intent():
                    owner = db.session.get(devices.User, owners[n % 5])
                    devices.register_device(
                        db.session,
                        owner,
                        devices.DeviceDetails(kind="smartphone", make="Make", model=f"Model {n}", imei1=imeis[n]),
                    )
                    db.session.commit()
            except BaseException as error:  # noqa: BLE001  (collected and reported below)
                failures.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[:3]
    db.session.rollback()  # end this thread's read snapshot before counting
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) == 50
    registered = db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "device.registered")
    )
    assert registered == 50
    report = verify_chain(db.session)
    assert report.ok, report.problem
    assert report.verified_count == len(_events())


def test_the_hash_is_sha256_of_the_previous_hash_and_the_sorted_compact_json(app, frozen_clock):
    """The documented canonical form, checked against json.dumps itself, with text that needs escaping."""
    import hashlib
    import json

    from app.services.audit import Origin, origin_of_changes

    frozen_clock.advance(minutes=1)  # a whole second: microseconds are still written as .000000
    actor = make_user()
    with write_intent(), origin_of_changes(Origin(ip="2001:db8::1", user_agent='Safari "iOS" \\ café \t\x01 日本 🎉')):
        event = record_audit_event(db.session, actor, "note.añadida", 'thing "x"', 'id\n"7"', {"z": "ü", "a": [1, None]})
        db.session.commit()
    reference = json.dumps(
        {
            "action": "note.añadida",
            "actor_id": actor.id,
            "details": {"z": "ü", "a": [1, None]},
            "ip": "2001:db8::1",
            "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
            "seq": event.seq,
            "subject_id": 'id\n"7"',
            "subject_type": 'thing "x"',
            "user_agent": 'Safari "iOS" \\ café \t\x01 日本 🎉',
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert reference.count(".000000+00:00") == 1
    assert event.hash == hashlib.sha256((event.prev_hash + reference).encode()).hexdigest()
    assert verify_chain(db.session).ok


def test_verify_reads_in_batches_and_the_session_goes_on_after_a_break(app, monkeypatch):
    from app.services import audit

    monkeypatch.setattr(audit, "VERIFY_BATCH", 2)
    user = make_user()
    with write_intent():
        for n in range(8):
            record_audit_event(db.session, user, "thing.noted", "thing", n)
        db.session.commit()
    count = len(_events())
    assert count > 6
    report = verify_chain(db.session)
    assert report.ok and report.verified_count == count and report.last_seq == count
    _tamper_behind_the_triggers_back("UPDATE audit_events SET subject_id = 'x' WHERE seq = 5")
    report = verify_chain(db.session)
    assert (report.broken_at_seq, report.verified_count, report.last_seq) == (5, 4, 4)
    with write_intent():
        record_audit_event(db.session, None, "audit.verified", "audit", "")
        db.session.commit()
    assert len(_events()) == count + 1
