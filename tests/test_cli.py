"""Command-line tasks: the demo school, the first admin, audit verification and the published head."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.extensions import db
from app.models import PersonalDevice, Role, User
from app.services.audit import verify_chain
from app.services.audit_log import published_heads
from tests.factories import make_device, make_user
from tests.test_audit import _tamper_behind_the_triggers_back


def test_demo_creates_the_school_once_and_prints_the_sign_ins(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "head@demo.lanyard.school" in first.output and "password:" in first.output
    people = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    second = runner.invoke(args=["demo"])
    assert "already there" in second.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == people
    head = db.session.scalar(sa.select(User).where(User.email == "head@demo.lanyard.school"))
    assert Role.APPROVER in head.roles
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PersonalDevice)) >= 4


def test_create_admin(app):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--email", "Head@School.test", "--name", "Mrs Head", "--password", "long secret pw"]
    )
    assert result.exit_code == 0, result.output
    admin = db.session.scalar(sa.select(User).where(User.email == "head@school.test"))
    assert admin.roles == {Role.STAFF, Role.ADMIN}


def test_create_admin_reports_what_is_wrong(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "--email", "nope", "--name", "X", "--password", "short"])
    assert result.exit_code == 1
    assert "email" in result.output and "password" in result.output


def test_verify_and_publish_head(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["demo"])
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0 and "verified" in verified.output
    published = runner.invoke(args=["audit", "publish-head"])
    assert published.exit_code == 0 and "Published head" in published.output
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


# `flask audit verify`: the exit code and the message are what a person or a cron job acts on ----------------


def test_audit_verify_on_a_clean_chain_exits_0_and_names_the_head(app):
    runner = app.test_cli_runner()
    make_device(make_user())
    report = verify_chain(db.session)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"Audit chain verified: {report.verified_count} events, head {report.last_seq} {report.last_hash}" in result.output
    assert "BROKEN" not in result.output


def test_audit_verify_on_an_edited_event_exits_1_and_names_it(app):
    runner = app.test_cli_runner()
    user = make_user()
    make_device(user)
    make_device(user)
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    _tamper_behind_the_triggers_back('UPDATE audit_events SET details = \'{"kind":"camera"}\' WHERE seq = 2')
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert "Audit chain BROKEN at event 2: event 2 has been altered" in result.stderr
    assert "verified:" not in result.output


def test_audit_verify_finds_a_tail_deleted_behind_a_published_head_and_exits_1(app):
    runner = app.test_cli_runner()
    user = make_user()
    make_device(user)
    published = runner.invoke(args=["audit", "publish-head"])
    assert published.exit_code == 0, published.output
    [head] = published_heads(Path(app.instance_path) / "audit-heads.jsonl")
    make_device(user)
    _tamper_behind_the_triggers_back(f"DELETE FROM audit_events WHERE seq >= {head['seq']}")
    assert verify_chain(db.session).ok, "the chain alone cannot see its newest events deleted: only the published head can"
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert f"Audit chain BROKEN at event {head['seq']}: events up to {head['seq']} were published but are gone" in result.stderr
