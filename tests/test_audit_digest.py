"""The daily audit digest: the verified head published outside the database by the scheduler (DESIGN §6)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, AuditVerification, Notification, Role
from app.scheduler import run_background_jobs
from app.services import audit_digest
from app.services.audit import record_audit_event
from app.services.audit_log import last_published_head
from tests.factories import make_user, sign_in


def _events(count: int) -> None:
    with write_intent():
        for n in range(count):
            record_audit_event(db.session, None, "test.happened", "test", str(n), {"n": n})
        db.session.commit()


def _heads(app):
    return audit_digest.heads_path(app.instance_path)


def test_the_scheduler_publishes_once_a_day_after_six(app, frozen_clock):
    admin, governor = make_user(Role.ADMIN), make_user(Role.GOVERNOR)
    _events(3)
    frozen_clock.now = frozen_clock.now.replace(hour=5, minute=30)  # 05:30 in London in November
    assert run_background_jobs(app)["audit.daily_digest"] is None
    frozen_clock.advance(minutes=45)
    result = run_background_jobs(app)["audit.daily_digest"]
    assert result.published is not None and result.report.ok
    last = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq)).where(AuditEvent.action != "audit.head_published"))
    assert last_published_head(_heads(app)) == (last, result.report.last_hash)
    frozen_clock.advance(hours=8)
    assert run_background_jobs(app)["audit.daily_digest"] is None  # once a day
    frozen_clock.advance(days=1)
    assert run_background_jobs(app)["audit.daily_digest"].published is not None
    lines = _heads(app).read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["hash"] for line in lines)
    notices = db.session.scalars(sa.select(Notification).where(Notification.kind == "audit.head_published")).all()
    assert {n.user_id for n in notices} == {admin.id, governor.id}
    assert all(not re.search(r"\d{14,}", n.body) for n in notices)
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "audit.head_published"))
        == 2
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditVerification)) == 2


def test_events_removed_after_publishing_are_caught(app, frozen_clock):
    make_user(Role.ADMIN)
    _events(5)
    frozen_clock.now = frozen_clock.now.replace(hour=7)
    published = audit_digest.publish_daily_head(db.session, _heads(app), frozen_clock.now)
    assert published.published is not None
    # Someone with the database in hand removes the newest events (the triggers are dropped to do it).
    head_seq = published.published["seq"]
    with write_intent():
        if db.engine.dialect.name == "sqlite":
            db.session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
            db.session.execute(sa.text("DROP TRIGGER audit_links_no_delete"))
        else:
            db.session.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            db.session.execute(sa.text("ALTER TABLE audit_links DISABLE TRIGGER USER"))
        db.session.execute(sa.text("DELETE FROM audit_links WHERE seq >= :seq"), {"seq": head_seq - 1})
        db.session.execute(sa.text("DELETE FROM audit_events WHERE seq >= :seq"), {"seq": head_seq - 1})
        db.session.commit()
    frozen_clock.advance(days=1)
    result = audit_digest.publish_daily_head(db.session, _heads(app), frozen_clock.now)
    assert result.published is None and not result.report.ok
    assert "were published but are gone" in result.report.problem
    broken = db.session.scalar(sa.select(Notification).where(Notification.kind == "audit.chain_broken"))
    assert broken is not None and "chair of governors" in broken.body
    assert len(_heads(app).read_text().splitlines()) == 1  # nothing new is published over a broken chain


def test_a_second_process_publishing_at_the_same_moment_does_nothing(app, frozen_clock):
    _events(1)
    frozen_clock.now = frozen_clock.now.replace(hour=7)
    path = _heads(app)
    with audit_digest._publisher_lock(path) as locked:
        assert locked
        assert audit_digest.publish_daily_head(db.session, path, frozen_clock.now) is None
    assert audit_digest.publish_daily_head(db.session, path, frozen_clock.now).published is not None


def test_the_digest_page_lists_the_heads_for_readers_to_print(app, client, frozen_clock):
    _events(2)
    frozen_clock.now = frozen_clock.now.replace(hour=7)
    result = audit_digest.publish_daily_head(db.session, _heads(app), frozen_clock.now)
    sign_in(client, make_user(Role.GOVERNOR))
    page = client.get("/audit/digest")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert result.report.last_hash[:8] + " " + result.report.last_hash[8:16] in text
    assert "25/11/2026 07:00" in text and "data-print" in text


def test_digest_due_follows_the_school_day(app, frozen_clock, tmp_path):
    path = tmp_path / "heads.jsonl"
    morning = frozen_clock.now.replace(hour=6, minute=0)
    assert not audit_digest.digest_due(path, morning - timedelta(minutes=1))
    assert audit_digest.digest_due(path, morning)
    path.write_text(json.dumps({"seq": 1, "hash": "a" * 64, "published_at": morning.isoformat()}) + "\n")
    assert not audit_digest.digest_due(path, morning + timedelta(hours=17))
    assert audit_digest.digest_due(path, morning + timedelta(days=1))


def test_the_scheduler_process_ticks_then_publishes_and_stops_when_told(app, frozen_clock):
    import threading

    from app.scheduler import run_forever

    _events(1)
    frozen_clock.now = frozen_clock.now.replace(hour=7)
    stop = threading.Event()
    stop.set()
    run_forever(app, stop)  # one tick, then the set event ends it
    assert last_published_head(_heads(app)) is not None
