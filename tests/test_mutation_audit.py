"""The audit chain pinned exactly: the canonical form that is hashed, each link, the IMEI backstop, the
links kept for filtering, and every answer verify gives (altered, missing, published heads, checkpoints).

Written for mutation testing (issue 19): each assertion is one that a changed comparison, slice, message or
field in the appending and verifying functions of app/services/audit.py would break. The pure functions are
called without an application; the rest are direct calls on SQLite.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditCheckpoint, AuditEvent, AuditLink
from app.services import audit
from app.services.audit import GENESIS_HASH, Origin, origin_of_changes, record_audit_event, verify_chain
from tests.factories import make_user

# SQLite only: the tampering drops SQLite's guard triggers, and the edge cases are the same logic on both
# databases (tests/test_audit.py and tests/test_audit_checkpoints.py verify whole chains on PostgreSQL too).
pytestmark = pytest.mark.sqlite_only

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # the frozen clock
HASH_A = "a" * 64
HASH_B = "b" * 64

# Canonical form ---------------------------------------------------------------------------------------


def test_canonical_details_are_sorted_compact_unescaped_and_redact_long_digit_runs():
    assert audit.canonical_details(None) == "{}"
    assert audit.canonical_details({}) == "{}"
    assert audit.canonical_details({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert audit.canonical_details({"when": NOW}) == '{"when":"2026-11-25 09:00:00+00:00"}'
    assert audit.canonical_details({"n": "1234567890123"}) == '{"n":"1234567890123"}'  # 13 digits stay
    assert audit.canonical_details({"n": "x12345678901234y 123456789012345678"}) == '{"n":"x[redacted]y [redacted]"}'


@pytest.fixture
def server_in_tokyo(monkeypatch):
    """The server's own time zone nine hours from UTC: what the chain records must not depend on it."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_sqlite_times_are_read_as_utc_whatever_the_servers_time_zone(server_in_tokyo):
    assert audit._sqlite_timestamp("2026-11-25 09:00:00") == "2026-11-25T09:00:00.000000+00:00"
    assert audit._sqlite_timestamp("2026-11-25 09:00:00.00001") == "2026-11-25T09:00:00.000010+00:00"
    local = datetime(2026, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert audit._timestamp(local) == "2026-06-01T09:30:00.000000+00:00"


def test_timestamps_are_utc_iso_with_microseconds():
    assert audit._timestamp("as stored") == "as stored"
    local = datetime(2026, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    assert audit._timestamp(local) == "2026-06-01T09:30:00.000000+00:00"
    assert audit._sqlite_timestamp("2026-11-25 09:00:00.000001") == "2026-11-25T09:00:00.000001+00:00"
    assert audit._sqlite_timestamp("2026-11-25 09:00:00") == "2026-11-25T09:00:00.000000+00:00"
    assert audit._sqlite_timestamp("2026-11-25T09:00:00.000001") == "2026-11-25T09:00:00.000001+00:00"
    assert audit._sqlite_timestamp("2026-11-25 09:00:00.00001") == "2026-11-25T09:00:00.000010+00:00"


def test_strings_are_encoded_as_json_dumps_does():
    class Name(str):  # a str subclass (an enum's value, markup) takes json.dumps itself
        pass

    for value in ("plain", 'quote " and \\ and \n', "café 日本", 7, None, True, Name("café"), ["日本"]):
        assert audit._string(value) == json.dumps(value, ensure_ascii=False)
    assert audit._string(Name("café")) == '"café"'  # never \\u escapes: the text as written is hashed


def _reference(**fields) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_the_canonical_event_is_the_sorted_compact_json_of_its_fields():
    expected = _reference(
        action="note.añadida",
        actor_id=None,
        details={"a": 1},
        ip="2001:db8::1",
        occurred_at="2026-11-25T09:00:00.000000+00:00",
        seq=12,
        subject_id='id "7"',
        subject_type="thing",
        user_agent='UA "x"',
    )
    arguments = (
        12,
        "2026-11-25T09:00:00.000000+00:00",
        None,
        "note.añadida",
        "thing",
        'id "7"',
        '{"a":1}',
        "2001:db8::1",
        'UA "x"',
    )
    assert audit._canonical(*arguments) == expected
    assert audit._canonical(*arguments, encoded=audit._Encoded()) == expected
    with_actor = audit._canonical(3, "t", "41", "a", "s", "9", "{}", "", "")
    assert '"actor_id":41,' in with_actor and '"seq":3,' in with_actor and '"subject_id":"9"' in with_actor


def test_an_event_hash_is_sha256_of_the_previous_hash_and_the_canonical_json():
    fields = dict(
        seq=2,
        occurred_at=NOW,
        actor_id=5,
        action="device.registered",
        subject_type="personal_device",
        subject_id="9",
        details='{"last4":"1234"}',
        ip="10.0.0.1",
        user_agent="Firefox",
    )
    reference = _reference(**{**fields, "occurred_at": "2026-11-25T09:00:00.000000+00:00", "details": {"last4": "1234"}})
    assert audit.event_hash(HASH_A, **fields) == hashlib.sha256((HASH_A + reference).encode()).hexdigest()
    assert audit.event_hash(HASH_B, **fields) != audit.event_hash(HASH_A, **fields)


def test_a_hash_is_grouped_in_eights():
    assert audit.grouped_hash("0123456789abcdef01") == "01234567 89abcdef 01"
    assert audit.grouped_hash(None) == "" and audit.grouped_hash("") == ""


# Published heads and checkpoints, without a database ------------------------------------------------------


def test_published_heads_to_check():
    assert audit._heads_to_check(None) == []
    assert audit._heads_to_check((0, HASH_A)) == []
    assert audit._heads_to_check(("7", 42)) == [(7, "42", {})]
    entries = [{"seq": 0, "hash": HASH_A}, {"hash": HASH_A}, {"seq": "3"}, {"seq": 5, "hash": HASH_B, "x": 1}]
    assert audit._heads_to_check(entries) == [(3, "", entries[2]), (5, HASH_B, entries[3])]


def test_an_instant_is_read_with_utc_assumed():
    assert audit._instant({"at": "2026-11-25T09:00:00+01:00"}, "at") == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert audit._instant({"at": "2026-11-25T09:00:00"}, "at") == NOW
    assert audit._instant({"at": "2026-11-25T09:00:00"}, "at").tzinfo is UTC
    assert audit._instant({}, "at") is None
    assert audit._instant({"at": "soon"}, "at") is None
    assert audit._instant({"at": None}, "at") is None


def test_a_checkpoint_event_records_its_row_only_when_seq_and_hash_match():
    row = SimpleNamespace(up_to_seq=4, hash=HASH_A)
    good = json.dumps({"up_to_seq": 4, "hash": audit.grouped_hash(HASH_A), "before": "x"})
    assert audit._recorded_checkpoint(row, audit.CHECKPOINT_ACTION, good) == json.loads(good)
    assert audit._recorded_checkpoint(row, "retention.erased", good) is None
    assert audit._recorded_checkpoint(row, audit.CHECKPOINT_ACTION, json.dumps({"up_to_seq": 5, "hash": HASH_A})) is None
    assert audit._recorded_checkpoint(row, audit.CHECKPOINT_ACTION, json.dumps({"up_to_seq": 4, "hash": HASH_B})) is None
    assert audit._recorded_checkpoint(row, audit.CHECKPOINT_ACTION, json.dumps({"up_to_seq": 4})) is None
    assert audit._recorded_checkpoint(row, audit.CHECKPOINT_ACTION, "not json") is None
    assert audit._recorded_checkpoint(row, audit.CHECKPOINT_ACTION, "[]") is None


def test_where_a_gap_breaks_the_chain():
    assert audit._gap(5, 3, 3, None) == (5, "the chain does not start at event 3")
    assert audit._gap(9, 7, 1, 6) == (7, "event 7 is missing")


def test_the_watch_list_holds_heads_after_the_cut_and_vouchers_still_in_the_chain():
    rows = [
        SimpleNamespace(up_to_seq=10, event_seq=12),
        SimpleNamespace(up_to_seq=4, event_seq=5),
        SimpleNamespace(up_to_seq=3, event_seq=None),
        SimpleNamespace(up_to_seq=10, event_seq=10),
    ]
    heads = [(10, HASH_A, {}), (11, HASH_A, {}), (11, HASH_B, {}), (14, HASH_B, {})]
    in_chain, vouchers = audit._watch_list(rows, heads, 10)
    assert in_chain == {11: {HASH_A, HASH_B}, 14: {HASH_B}}
    assert vouchers == {12: rows[0]}


CHECKPOINT = SimpleNamespace(up_to_seq=10, hash=HASH_A, event_seq=20)


def _voucher(before_days: float, occurred: datetime = NOW) -> audit._Voucher:
    return audit._Voucher(occurred_at=occurred, before=occurred - timedelta(days=before_days))


def test_a_checkpoint_that_cut_no_published_head_is_not_questioned(frozen_clock):
    assert audit._checkpoint_problem(CHECKPOINT, audit._Voucher(), []) is None
    assert audit._checkpoint_problem(CHECKPOINT, audit._Voucher(), [(11, HASH_B, {})]) is None


def test_a_checkpoint_must_keep_the_published_head_at_its_cut(frozen_clock):
    assert audit._checkpoint_problem(CHECKPOINT, _voucher(400), [(10, HASH_B, {})]) == (10, "the published head does not match")
    assert audit._checkpoint_problem(CHECKPOINT, _voucher(400), [(10, HASH_A, {})]) is None
    # A head below the cut may have any hash: its event was cut.
    assert audit._checkpoint_problem(CHECKPOINT, _voucher(400), [(9, HASH_B, {})]) is None


def test_a_checkpoint_that_cut_heads_must_say_when_and_what_it_cut(frozen_clock):
    heads = [(9, HASH_B, {})]
    message = "the checkpoint at event 10 is not vouched for: its event does not say what it cut"
    assert audit._checkpoint_problem(CHECKPOINT, audit._Voucher(occurred_at=NOW), heads) == (10, message)
    assert audit._checkpoint_problem(CHECKPOINT, audit._Voucher(before=NOW), heads) == (10, message)
    future = NOW + timedelta(days=1, seconds=1)
    assert audit._checkpoint_problem(CHECKPOINT, _voucher(400, future), heads) == (
        10,
        "the checkpoint at event 10 is dated in the future (2026-11-26)",
    )
    assert audit._checkpoint_problem(CHECKPOINT, _voucher(400, NOW + timedelta(days=1)), heads) is None


def test_a_checkpoint_may_cut_nothing_newer_than_the_shortest_retention(frozen_clock):
    heads = [(9, HASH_B, {})]
    assert audit._checkpoint_problem(CHECKPOINT, _voucher(364.9), heads) == (
        10,
        "the checkpoint at event 10 cut events newer than retention ever allows",
    )
    assert audit._checkpoint_problem(CHECKPOINT, _voucher(365), heads) is None


def test_a_head_published_after_the_checkpoints_limit_cannot_have_been_cut(frozen_clock):
    voucher = _voucher(400)  # before = 2025-10-21 09:00
    before = voucher.before
    recent = {"occurred_at": before.isoformat()}
    assert audit._checkpoint_problem(CHECKPOINT, voucher, [(10, HASH_A, recent)]) == (
        10,
        "event 10 was published as the head on 2025-10-21, too recently for the checkpoint at event 10 to have cut it",
    )
    older = {"occurred_at": (before - timedelta(seconds=1)).isoformat()}
    assert audit._checkpoint_problem(CHECKPOINT, voucher, [(10, HASH_A, older)]) is None
    # Below the cut, the time it was published (less a day's slack) counts too, whichever is newer.
    published = {"occurred_at": older["occurred_at"], "published_at": (before + timedelta(days=1)).isoformat()}
    assert audit._checkpoint_problem(CHECKPOINT, voucher, [(9, HASH_B, published)])[0] == 9
    slack = {"published_at": (before + timedelta(days=1) - timedelta(seconds=1)).isoformat()}
    assert audit._checkpoint_problem(CHECKPOINT, voucher, [(9, HASH_B, slack)]) is None
    # At the cut itself the publication time is not used (the event is the head's own).
    assert audit._checkpoint_problem(CHECKPOINT, voucher, [(10, HASH_A, published)]) is None
    assert audit._checkpoint_problem(CHECKPOINT, voucher, [(9, HASH_B, {})]) is None


def test_what_the_finished_walk_shows(frozen_clock):
    assert audit._end_problem(None, audit._Voucher(), [], {}, 5) is None
    assert audit._end_problem(None, audit._Voucher(), [], {4: {HASH_A}, 5: {HASH_A}}, 5) is None
    assert audit._end_problem(None, audit._Voucher(), [], {6: {HASH_A}, 8: {HASH_A}, 5: {HASH_A}}, 5) == (
        8,
        "events up to 8 were published but are gone",
    )
    assert audit._end_problem(None, audit._Voucher(), [], {3: {HASH_A}}, None) == (
        3,
        "events up to 3 were published but are gone",
    )
    gone = "the checkpoint at event 10 is not vouched for: its event 20 is not in the chain"
    assert audit._end_problem(CHECKPOINT, audit._Voucher(), [], {}, None) == (10, gone)
    assert audit._end_problem(CHECKPOINT, audit._Voucher(), [], {}, 19) == (10, gone)
    assert audit._end_problem(CHECKPOINT, audit._Voucher(), [], {}, 20) is None
    assert audit._end_problem(CHECKPOINT, _voucher(400), [(10, HASH_B, {})], {}, 25) == (10, "the published head does not match")


# Appending -----------------------------------------------------------------------------------------------


def _append(actor, action="note.added", subject_type="thing", subject_id="1", details=None, **kwargs):
    with write_intent():
        event = record_audit_event(db.session, actor, action, subject_type, subject_id, details, **kwargs)
        db.session.commit()
    return event


def _links(seq: int) -> set[tuple[str, str]]:
    return {(link.kind, link.ref) for link in db.session.scalars(sa.select(AuditLink).where(AuditLink.seq == seq))}


def test_each_event_continues_the_chain_with_its_origin_and_links(app, frozen_clock):
    first = _append(None, "system.started", "", "")
    assert (first.seq, first.prev_hash, first.actor_id, first.subject_id) == (1, GENESIS_HASH, None, "")
    assert _links(1) == set()
    person = make_user(name="Mrs Ames")
    head = db.session.scalar(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    with origin_of_changes(Origin(ip="1" * 70, user_agent="u" * 300)):
        event = _append(
            person,
            "note.added",
            "thing",
            7,
            {"text": "hello"},
            related={"area": 3, "personal_device": None, "asset": "", "a_kind_longer_than_twenty": "r" * 50},
        )
    assert (event.seq, event.prev_hash) == (head.seq + 1, head.hash)
    assert (event.actor_id, event.action, event.subject_type, event.subject_id) == (person.id, "note.added", "thing", "7")
    assert (event.ip, event.user_agent, event.details) == ("1" * 64, "u" * 255, '{"text":"hello"}')
    assert event.occurred_at == NOW
    assert event.hash == audit.event_hash(
        event.prev_hash,
        seq=event.seq,
        occurred_at=NOW,
        actor_id=person.id,
        action="note.added",
        subject_type="thing",
        subject_id="7",
        details='{"text":"hello"}',
        ip="1" * 64,
        user_agent="u" * 255,
    )
    assert _links(event.seq) == {("user", str(person.id)), ("thing", "7"), ("area", "3"), ("a_kind_longer_than_t", "r" * 40)}
    none_subject = _append(person, "note.added", "thing", None)
    assert none_subject.subject_id == "" and _links(none_subject.seq) == {("user", str(person.id))}
    untyped = _append(person, "note.added", "", "5")
    assert _links(untyped.seq) == {("user", str(person.id))}
    assert verify_chain(db.session).ok


def test_appending_needs_a_write_transaction_on_sqlite(app):
    db.session.rollback()
    with pytest.raises(RuntimeError, match=r"^audit events must be appended inside a write transaction \(BEGIN IMMEDIATE\)$"):
        record_audit_event(db.session, None, "note.added")
    db.session.rollback()


def test_a_checkpoint_is_chained_before_its_row(app, frozen_clock, server_in_tokyo):
    _append(None)
    _append(None)
    with write_intent():
        checkpoint = audit.record_checkpoint(
            db.session,
            up_to_seq=2,
            replaced_hash="0123456789" * 6 + "abcd",
            before=datetime(2025, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))),
            events_removed=2,
            now=NOW,
        )
        db.session.commit()
    event = db.session.get(AuditEvent, checkpoint.event_seq)
    assert (event.seq, event.action, event.subject_type, event.subject_id, event.actor_id) == (
        3,
        "audit.checkpoint",
        "audit",
        "2",
        None,
    )
    assert json.loads(event.details) == {
        "before": "2025-01-01T00:00:00.000000+00:00",
        "events_removed": 2,
        "hash": "01234567 89012345 67890123 45678901 23456789 01234567 89012345 6789abcd",
        "up_to_seq": 2,
    }
    row = db.session.scalar(sa.select(AuditCheckpoint))
    assert (row.up_to_seq, row.hash, row.created_at, row.events_removed, row.event_seq) == (
        2,
        "0123456789" * 6 + "abcd",
        NOW,
        2,
        3,
    )


# Verifying -----------------------------------------------------------------------------------------------


def _tamper(*statements: str) -> None:
    """What someone with raw database access could do on SQLite: drop the guards and change the rows."""
    db.session.rollback()
    for trigger in ("audit_events_no_update", "audit_events_no_delete", "audit_links_no_delete"):
        db.session.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}"))
    for sql in statements:
        db.session.execute(sa.text(sql))
    db.session.commit()


def _five(frozen_clock) -> list[SimpleNamespace]:
    """Five events a second apart, as plain values (the rows may be changed or deleted later)."""
    events = []
    for n in range(5):
        frozen_clock.advance(seconds=1)
        event = _append(None, subject_id=str(n))
        events.append(SimpleNamespace(seq=event.seq, hash=event.hash))
    return events


def test_a_clean_chain_reports_its_head(app, frozen_clock):
    empty = verify_chain(db.session)
    assert (empty.ok, empty.verified_count, empty.last_seq, empty.last_hash, empty.last_occurred_at) == (
        True,
        0,
        None,
        GENESIS_HASH,
        None,
    )
    events = _five(frozen_clock)
    report = verify_chain(db.session, published_head=(3, events[2].hash))
    assert report == audit.ChainReport(5, 5, events[4].hash, NOW + timedelta(seconds=5), None, "", None)
    assert report.ok


def test_an_altered_event_or_link_is_found(app, frozen_clock):
    events = _five(frozen_clock)
    _tamper("UPDATE audit_events SET subject_id = 'x' WHERE seq = 3")
    report = verify_chain(db.session)
    assert (report.ok, report.broken_at_seq, report.problem, report.verified_count, report.last_seq) == (
        False,
        3,
        "event 3 has been altered",
        2,
        2,
    )
    assert report.last_hash == events[1].hash
    _tamper(f"UPDATE audit_events SET subject_id = '2', prev_hash = '{HASH_A}' WHERE seq = 3")
    assert verify_chain(db.session).problem == "event 3 has been altered"
    _tamper(f"UPDATE audit_events SET prev_hash = '{events[1].hash}', hash = '{HASH_B}' WHERE seq = 3")
    assert verify_chain(db.session).problem == "event 3 has been altered"
    _tamper(f"UPDATE audit_events SET hash = '{events[2].hash}' WHERE seq = 3")
    assert verify_chain(db.session).ok


def test_a_missing_event_or_start_is_found(app, frozen_clock):
    _five(frozen_clock)
    _tamper("DELETE FROM audit_events WHERE seq = 4")
    report = verify_chain(db.session)
    assert (report.broken_at_seq, report.problem, report.verified_count) == (4, "event 4 is missing", 3)
    _tamper("DELETE FROM audit_events WHERE seq = 1")
    report = verify_chain(db.session)
    assert (report.broken_at_seq, report.problem, report.verified_count, report.last_seq) == (
        2,
        "the chain does not start at event 1",
        0,
        None,
    )


def test_published_heads_must_match_and_still_be_there(app, frozen_clock):
    events = _five(frozen_clock)
    report = verify_chain(db.session, published_head=(3, HASH_A))
    assert report == audit.ChainReport(
        2, 3, events[2].hash, NOW + timedelta(seconds=3), 3, "the published head does not match", None
    )
    heads = [{"seq": 2, "hash": events[1].hash}, {"seq": 4, "hash": events[3].hash}]
    assert verify_chain(db.session, published_head=heads).ok
    _tamper("DELETE FROM audit_links WHERE seq >= 4", "DELETE FROM audit_events WHERE seq >= 4")
    report = verify_chain(db.session, published_head=heads)
    assert (report.broken_at_seq, report.problem, report.verified_count, report.last_seq) == (
        4,
        "events up to 4 were published but are gone",
        3,
        3,
    )


def _cut(frozen_clock, up_to: int = 2) -> AuditCheckpoint:
    """A real retention cut: chain the checkpoint, then delete the events up to it (with the guards dropped)."""
    head = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.seq == up_to))
    with write_intent():
        checkpoint = audit.record_checkpoint(
            db.session, up_to_seq=up_to, replaced_hash=head.hash, before=NOW - timedelta(days=400), events_removed=up_to, now=NOW
        )
        db.session.commit()
    _tamper(f"DELETE FROM audit_links WHERE seq <= {up_to}", f"DELETE FROM audit_events WHERE seq <= {up_to}")
    return checkpoint


def test_the_chain_continues_from_a_vouched_checkpoint(app, frozen_clock):
    events = _five(frozen_clock)
    checkpoint = _cut(frozen_clock)
    report = verify_chain(db.session)
    assert (report.ok, report.verified_count, report.last_seq, report.cut_up_to) == (True, 4, 6, 2)
    # A head published at the cut must match the checkpoint's hash; below it, the checkpoint rules apply.
    assert verify_chain(db.session, published_head=(2, events[1].hash)).ok
    assert verify_chain(db.session, published_head=(2, HASH_A)).problem == "the published head does not match"
    assert verify_chain(db.session, published_head=[{"seq": 1, "hash": HASH_A, "occurred_at": NOW.isoformat()}]).problem == (
        "event 1 was published as the head on 2026-11-25, too recently for the checkpoint at event 2 to have cut it"
    )
    report = verify_chain(db.session, published_head=(4, HASH_A))
    assert (report.broken_at_seq, report.problem, report.verified_count, report.cut_up_to) == (
        4,
        "the published head does not match",
        1,
        2,
    )
    assert checkpoint.event_seq == 6


@pytest.mark.parametrize(
    ("event_seq", "problem"),
    [
        (
            None,
            "the checkpoint at event 2 is not vouched for by the chain (no checkpoint event: forged, or made before checkpoints were chained)",
        ),
        (2, "the checkpoint at event 2 is not vouched for by the chain"),
        (99, "the checkpoint at event 2 is not vouched for: its event 99 is not in the chain"),
        (4, "the checkpoint at event 2 is not vouched for: event 4 does not record it"),
    ],
)
def test_a_checkpoint_the_chain_does_not_vouch_for_is_reported(app, frozen_clock, event_seq, problem):
    events = _five(frozen_clock)
    db.session.add(AuditCheckpoint(up_to_seq=2, hash=events[1].hash, created_at=NOW, events_removed=2, event_seq=event_seq))
    db.session.commit()
    report = verify_chain(db.session)
    assert (report.ok, report.broken_at_seq, report.problem, report.cut_up_to, report.verified_count) == (False, 2, problem, 2, 0)


def test_an_older_checkpoint_whose_event_does_not_record_it_is_reported(app, frozen_clock):
    events = _five(frozen_clock)
    db.session.add(AuditCheckpoint(up_to_seq=1, hash=events[0].hash, created_at=NOW, events_removed=1, event_seq=4))
    db.session.commit()
    _cut(frozen_clock, 2)
    report = verify_chain(db.session)
    assert (report.broken_at_seq, report.problem) == (
        1,
        "the checkpoint at event 1 is not vouched for: event 4 does not record it",
    )


def test_after_two_cuts_the_chain_continues_from_the_newest_checkpoint(app, frozen_clock):
    _five(frozen_clock)
    _cut(frozen_clock, 2)  # its checkpoint event is 6
    _cut(frozen_clock, 4)  # its checkpoint event is 7
    report = verify_chain(db.session)
    assert (report.ok, report.verified_count, report.last_seq, report.cut_up_to) == (True, 3, 7, 4)


def test_an_event_without_a_subject_records_an_empty_one(app, frozen_clock):
    with write_intent():
        event = record_audit_event(db.session, None, "note.added")
        db.session.commit()
    stored = db.session.get(AuditEvent, event.seq)
    assert (stored.subject_type, stored.subject_id) == ("", "")


def test_a_time_sqlite_holds_without_microseconds_is_the_same_instant(app, frozen_clock):
    # SQLAlchemy writes 'YYYY-MM-DD HH:MM:SS.ffffff'; a row written by hand or another tool may leave the
    # microseconds out. It is the same instant, hashed in the same canonical form, so the chain still verifies.
    events = _five(frozen_clock)
    _tamper("UPDATE audit_events SET occurred_at = substr(occurred_at, 1, 19) WHERE seq = 3")
    assert len(db.session.scalar(sa.text("SELECT occurred_at FROM audit_events WHERE seq = 3"))) == 19
    report = verify_chain(db.session)
    assert (report.ok, report.verified_count, report.last_hash) == (True, 5, events[4].hash)
