"""Command-line tasks: the demo school, the first admin, audit verification and the published head."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import PersonalDevice, Role, User


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
