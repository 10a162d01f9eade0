"""The policy's rules: publishing (text or PDF, checked), accepting once per version, who has not
accepted, reminders (push and email outboxes) and the review-date job, the "no phone" declaration,
the coverage lists, and what "My data" holds."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, MailOutbox, Notification, PolicyAcceptance, Role
from app.scheduler import run_timed_jobs
from app.services import accounts, coverage, policy
from app.services.errors import ValidationFailed
from app.services.personal_data import export_person
from tests.equipment_factories import lend, make_asset
from tests.factories import make_device, make_user
from tests.permission_factories import ask, committed, make_area

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def draft(**overrides) -> policy.PolicyDraft:
    values = {
        "label": "v1",
        "title": "Social Networking Policy",
        "body": "Staff should keep a record of their phone's IMEI.",
        "pdf": b"",
        "review_date": local_today() + timedelta(days=365),
    }
    values.update(overrides)
    return policy.PolicyDraft(**values)


def publish(actor, **overrides):
    return committed(policy.publish_policy, actor, draft(**overrides))


def actions(name: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == name).order_by(AuditEvent.seq)))


@pytest.fixture
def school(app, frozen_clock):
    return {
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "office": make_user(Role.OFFICE, name="Ms O Brennan"),
        "staff": make_user(name="Mr B Clarke"),
    }


def test_publishing_records_the_version_and_audits_it(school):
    version = publish(school["admin"], pdf=PDF)
    assert version.has_pdf and version.pdf_digest and version.body.startswith("Staff should")
    assert policy.current_policy_id(db.session) == version.id
    [event] = actions("policy.published")
    assert event.actor_id == school["admin"].id and json.loads(event.details)["pdf"] is True


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"label": ""}, "label"),
        ({"title": " "}, "title"),
        ({"review_date": None}, "review_date"),
        ({"review_date": date(2020, 1, 1)}, "review_date"),
        ({"body": "", "pdf": b""}, "body"),
        ({"pdf": b"<html><script>alert(1)</script></html>"}, "pdf"),
        ({"pdf": b"%PDF-1.4\n" + b"x" * policy.MAX_PDF_BYTES + b"\n%%EOF"}, "pdf"),
    ],
)
def test_a_draft_that_is_wrong_is_refused_with_a_message_for_its_field(school, overrides, field):
    with write_intent(), pytest.raises(ValidationFailed) as refused:
        policy.publish_policy(db.session, school["admin"], draft(**overrides))
    db.session.rollback()
    assert field in refused.value.field_errors
    assert policy.current_policy_id(db.session) is None


def test_a_pdf_alone_is_enough():
    assert policy.is_pdf(PDF)
    assert not policy.is_pdf(b"%PDF-1.4 but it never ends")


def test_each_person_accepts_a_version_once_and_a_new_version_asks_again(school):
    first = publish(school["admin"])
    committed(policy.accept_policy, school["staff"], first.id)
    committed(policy.accept_policy, school["staff"], first.id)  # a second tap changes nothing
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PolicyAcceptance)) == 1
    assert len(actions("policy.accepted")) == 1
    assert school["staff"].id not in {p.id for p in policy.people_not_accepted(db.session, first.id)}

    second = publish(school["admin"], label="v2")
    assert school["staff"].id in {p.id for p in policy.people_not_accepted(db.session, second.id)}
    with write_intent(), pytest.raises(ValidationFailed):
        policy.accept_policy(db.session, school["staff"], first.id)  # no longer the current version
    db.session.rollback()


def test_leavers_are_not_chased(school):
    version = publish(school["admin"])
    leaver = make_user(name="Mr L Leaver")
    committed(accounts.deactivate_user, school["admin"], leaver)
    assert leaver.id not in {p.id for p in policy.people_not_accepted(db.session, version.id)}


def test_reminders_go_to_those_who_have_not_accepted_by_notice_and_email(school, app):
    app.config["SMTP_HOST"] = "127.0.0.1"
    version = publish(school["admin"])
    committed(policy.accept_policy, school["head"], version.id)
    count = committed(policy.send_reminders, school["office"], version.id)
    db.session.rollback()
    reminded = set(db.session.scalars(sa.select(Notification.user_id).where(Notification.kind == "policy.reminder")))
    assert count == 3 and reminded == {school["admin"].id, school["office"].id, school["staff"].id}
    mailed = set(db.session.scalars(sa.select(MailOutbox.user_id).where(MailOutbox.kind == "policy_reminder")))
    assert mailed == reminded
    assert json.loads(actions("policy.reminders_sent")[0].details) == {"count": 3}

    one = committed(policy.send_reminders, school["office"], version.id, {school["staff"].id})
    assert one == 1


def test_the_review_reminder_goes_once_before_the_review_date(school, frozen_clock):
    version = publish(school["admin"], review_date=local_today() + timedelta(days=40))
    assert run_timed_jobs(db.session, names=["policy.review_reminders"]) == {"policy.review_reminders": 0}
    frozen_clock.advance(days=11)  # 29 days before: inside the 30-day notice
    sent = run_timed_jobs(db.session, frozen_clock.now, names=["policy.review_reminders"])
    db.session.rollback()
    review = set(db.session.scalars(sa.select(Notification.user_id).where(Notification.kind == "policy.review_due")))
    assert review == {school["admin"].id}
    assert sent["policy.review_reminders"] == 1 + 4  # the admin, and the four who have not accepted
    assert run_timed_jobs(db.session, frozen_clock.now, names=["policy.review_reminders"]) == {"policy.review_reminders": 0}
    [event] = actions("policy.review_reminder_sent")
    assert event.actor_id is None and event.subject_id == str(version.id)


def test_the_no_device_declaration_is_audited_and_revocable(school):
    staff = school["staff"]
    assert committed(policy.declare_no_device, staff) is True
    assert committed(policy.declare_no_device, staff) is False
    assert policy.has_declared_no_device(db.session, staff)
    assert committed(policy.revoke_no_device_declaration, staff) is True
    assert not policy.has_declared_no_device(db.session, staff)
    assert [len(actions("device.none_declared")), len(actions("device.none_declaration_withdrawn"))] == [1, 1]


def test_coverage_lists_what_to_act_on(school, frozen_clock):
    make_device(school["staff"])
    committed(policy.declare_no_device, school["office"])
    assert {p.id for p in coverage.people_without_device(db.session)} == {school["admin"].id, school["head"].id}

    version = publish(school["admin"])
    committed(policy.accept_policy, school["staff"], version.id)
    asset = make_asset(school["office"])
    lend(school["office"], asset, school["staff"], due_on=local_today() + timedelta(days=1))
    frozen_clock.advance(days=3)
    area = make_area(school["admin"])
    ask(
        school["staff"],
        area,
        make_device(school["staff"]),
        emergency=True,
        emergency_reason="A pupil is unwell; calling the parents.",
    )

    found = coverage.coverage(db.session)
    assert found.policy.id == version.id
    assert school["staff"].id not in {p.id for p in found.not_accepted}
    assert [loan.asset_id for loan in found.overdue_loans] == [asset.id]
    assert len(found.overrides_to_review) == 1
    assert found.gaps == 2 + 3 + 1 + 1


def test_people_with_no_phone_are_asked_to_register_it(school):
    make_device(school["staff"])
    assert committed(coverage.remind_to_register, school["office"]) == 3
    assert committed(coverage.remind_to_register, school["office"], {school["admin"].id}) == 1
    assert committed(coverage.remind_to_register, school["office"], {school["staff"].id}) == 0  # has a phone
    db.session.rollback()
    asked = list(db.session.scalars(sa.select(Notification.user_id).where(Notification.kind == "device.register_reminder")))
    assert sorted(asked) == sorted([school["admin"].id, school["head"].id, school["office"].id, school["admin"].id])


def test_my_data_holds_the_acceptances_and_the_declaration(school):
    version = publish(school["admin"])
    committed(policy.accept_policy, school["staff"], version.id)
    committed(policy.declare_no_device, school["staff"])
    data = export_person(db.session, school["staff"])["policy"]
    assert [a["version"] for a in data["acceptances"]] == ["v1"]
    assert data["no_personal_device_declared_at"] is not None
    assert [a.policy_id for a in policy.acceptances_of(db.session, school["staff"])] == [version.id]
