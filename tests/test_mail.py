"""Email through the outbox: every kind of message arrives at a real SMTP server, with the right
recipients, headers and both parts, never an IMEI; failures are retried, permanent ones are not."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import local_today
from app.database import write_intent
from app.extensions import db
from app.mail.worker import MailSettings, drain_until_idle
from app.models import AuditEvent, MailOutbox, PasswordToken, PushSubscription, Role
from app.services import audit_digest, devices, loans, mail
from tests.conftest import csrf_token
from tests.equipment_factories import lend, make_asset
from tests.factories import make_device, make_imei, make_user, sign_in
from tests.mail_server import MailServer
from tests.permission_factories import ask, committed, make_area

LONG_DIGITS = re.compile(r"\d{14,}")
SENDER = "lanyard@school.test"


@pytest.fixture
def smtp(app):
    server = MailServer()
    server.start()
    app.config.update(
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=server.port,
        SMTP_SECURITY="none",
        MAIL_FROM=SENDER,
        MAIL_BACKOFF_SECONDS=30,
        MAIL_MAX_ATTEMPTS=3,
        MAIL_TIMEOUT_SECONDS=5,
    )
    yield server
    server.stop()


def deliver(app):
    """Run the sender until nothing is due now, as the worker would after a commit."""
    return drain_until_idle(db.session, MailSettings.from_app(app))


def parts(message):
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def link_in(text: str) -> str:
    found = re.search(r"https://lanyard\.test/\S+", text)
    assert found, text
    return found.group(0)


def assert_common_headers(message, to: str, *, automatic: bool = True):
    assert message["To"] == to
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["From"].addresses[0].display_name == "Lanyard School"
    assert message["Subject"]
    assert message["Date"].datetime is not None
    assert re.fullmatch(r"<[^<>@\s]+@school\.test>", message["Message-ID"])
    assert (message["Auto-Submitted"] == "auto-generated") is automatic
    text, html = parts(message)
    assert "Lanyard School" in text and "Lanyard School" in html
    return text, html


def test_the_invitation_is_emailed_with_a_link_from_the_base_url(app, client, smtp):
    admin = make_user(Role.ADMIN)
    sign_in(client, admin)
    page = client.post(
        "/admin/staff/invite",
        data={
            "email": "new.teacher@school.test",
            "display_name": "Ms New",
            "csrf_token": csrf_token(client, "/admin/staff/invite"),
        },
        follow_redirects=True,
    )
    assert page.status_code == 200
    assert "We are emailing this link to new.teacher@school.test" in page.get_data(as_text=True)
    assert smtp.inbox.received == []  # nothing leaves before the sender runs after the commit
    assert deliver(app).sent == 1
    [message] = smtp.inbox.to("new.teacher@school.test")
    text, html = assert_common_headers(message, "new.teacher@school.test", automatic=False)
    assert message["Subject"] == "Your Lanyard account at Lanyard School"
    assert message["List-Unsubscribe"] is None  # not optional: no unsubscribing from an invitation
    link = link_in(text)
    assert (
        link.startswith("https://lanyard.test/set-password/") and link in html and "localhost" not in text + html
    )  # never the request's host
    assert link in page.get_data(as_text=True)  # the on-screen link stays as a fallback
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})
    assert client.get(link.removeprefix("https://lanyard.test")).status_code == 200
    row = db.session.scalar(sa.select(MailOutbox))
    assert row.sent_at is not None and row.text_body == "" and row.html_body == ""  # the link is not kept


def test_a_lost_report_emails_the_office_who_can_switch_it_off(app, smtp):
    office, other_office = make_user(Role.OFFICE, name="Mrs Office"), make_user(Role.OFFICE)
    owner = make_user(name="Mr B Clarke")
    imei = make_imei()
    device = make_device(owner, model=f"Phone {imei}", imei1=imei)
    committed(mail.set_preferences, other_office, {"audit_digest"})  # the office kinds switched off
    committed(devices.report_lost, owner, device, stolen=True)
    assert deliver(app).sent == 1
    assert smtp.inbox.to(other_office.email) == []
    [message] = smtp.inbox.to(office.email)
    text, html = assert_common_headers(message, office.email)
    assert message["Subject"] == "Mr B Clarke reported a smartphone stolen"
    assert message["List-Unsubscribe"] == "<https://lanyard.test/account#email>"
    assert "https://lanyard.test/account#email" in text and "https://lanyard.test/account#email" in html
    assert imei[-4:] in text and imei not in text + html + message["Subject"]
    assert link_in(text) == f"https://lanyard.test/office/devices/{device.id}"


def test_the_audit_digest_goes_to_admins_and_governors(app, smtp, frozen_clock):
    admin, governor, staff = make_user(Role.ADMIN), make_user(Role.GOVERNOR), make_user()
    result = audit_digest.publish_daily_head(db.session, audit_digest.heads_path(app.instance_path), frozen_clock.now, force=True)
    assert result.published is not None
    deliver(app)
    assert {recipients[0] for _s, recipients, _m in smtp.inbox.received} == {admin.email, governor.email}
    assert smtp.inbox.to(staff.email) == []
    [message] = smtp.inbox.to(governor.email)
    text, html = assert_common_headers(message, governor.email)
    assert message["Subject"].startswith("Audit log digest for")
    assert "Keep this email" in text and "Keep this email" in html


def test_an_overdue_loan_emails_the_borrower(app, smtp, frozen_clock):
    office, borrower = make_user(Role.OFFICE), make_user()
    asset = make_asset(office, name="Canon camera", tag="CAM-0042")
    loan = lend(office, asset, borrower, due_on=local_today())
    frozen_clock.advance(days=2)
    with write_intent():
        loans.send_loan_reminders(db.session, frozen_clock.now)
        db.session.commit()
    deliver(app)
    [message] = smtp.inbox.to(borrower.email)
    text, _html = assert_common_headers(message, borrower.email)
    assert message["Subject"] == "Canon camera (CAM-0042) is overdue"
    assert link_in(text) == "https://lanyard.test/my-loans"
    assert loan.id


def test_an_approver_without_working_push_is_emailed_once_after_the_set_minutes(app, smtp, frozen_clock):
    admin = make_user(Role.ADMIN)
    head = make_user(Role.APPROVER, name="Mrs Head")
    deputy = make_user(Role.APPROVER, name="Mr Deputy")
    with write_intent():
        db.session.add(
            PushSubscription(user_id=deputy.id, endpoint="https://fcm.googleapis.com/fcm/send/x", p256dh="k", auth="a")
        )
        db.session.commit()
    teacher = make_user(name="Mr B Clarke")
    request = ask(teacher, make_area(admin, "Year 3"), make_device(teacher))

    def tick():
        with write_intent():
            count = mail.send_approval_fallbacks(db.session, frozen_clock.now)
            db.session.commit()
        return count

    frozen_clock.advance(minutes=2)
    assert tick() == 0
    frozen_clock.advance(minutes=1, seconds=1)
    assert tick() == 1  # the head only: the deputy's push works
    frozen_clock.advance(minutes=10)
    assert tick() == 0  # once per request per approver
    deliver(app)
    assert smtp.inbox.to(deputy.email) == []
    [message] = smtp.inbox.to(head.email)
    text, html = assert_common_headers(message, head.email)
    assert message["Subject"] == "Waiting for you: Mr B Clarke, Apple iPhone 13 into Year 3"
    assert link_in(text) == f"https://lanyard.test/approvals/{request.id}"
    assert "push notifications are not reaching" in html
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "mail.approval_fallback_queued")) == 1


def test_a_decided_request_emails_nobody(app, smtp, frozen_clock):
    from app.services import permissions

    admin, head = make_user(Role.ADMIN), make_user(Role.APPROVER)
    teacher = make_user()
    request = ask(teacher, make_area(admin), make_device(teacher))
    committed(permissions.decide, head, request.id, "approve")
    frozen_clock.advance(minutes=5)
    with write_intent():
        assert mail.send_approval_fallbacks(db.session, frozen_clock.now) == 0
        db.session.commit()


def _reset(client, email: str, ip: str = "10.0.0.1"):
    token = csrf_token(client, "/forgot-password")
    return client.post("/forgot-password", data={"email": email, "csrf_token": token}, environ_base={"REMOTE_ADDR": ip})


def _answer(response) -> str:
    return re.search(r"<main.*</main>", response.get_data(as_text=True), re.S).group(0)


def test_forgot_password_answers_the_same_and_emails_only_a_real_account(app, client, smtp):
    person = make_user(name="Ms Known")
    with write_intent():
        from app.services import accounts

        old_link = accounts.issue_password_token(db.session, None, person)
        db.session.commit()
    known, unknown = _reset(client, person.email.upper()), _reset(client, "nobody@school.test")
    assert known.status_code == unknown.status_code == 200
    assert _answer(known) == _answer(unknown)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PasswordToken)) == 1  # no work done inline
    report = deliver(app)
    assert report.sent == 1 and report.claimed == 2
    [message] = smtp.inbox.to(person.email)
    assert smtp.inbox.to("nobody@school.test") == []
    text, html = assert_common_headers(message, person.email)
    assert message["Subject"] == "Reset your Lanyard password"
    link = link_in(text)
    assert link in html
    assert client.get(f"/set-password/{old_link}").status_code == 404  # the new link revoked the older one
    assert client.get(link.removeprefix("https://lanyard.test")).status_code == 200
    actions = list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert actions.count("auth.password_reset_requested") == 2
    assert "user.self_service_reset_issued" in actions and "mail.password_reset_unmatched" in actions


def test_forgot_password_is_throttled_per_address_and_per_ip(app, client, smtp):
    person = make_user()
    for _ in range(mail.RESET_PER_ADDRESS):
        assert _reset(client, person.email, ip="10.0.0.2").status_code == 200
    throttled = _reset(client, person.email, ip="10.0.0.3")
    assert throttled.status_code == 429 and "no new one was sent" in throttled.get_data(as_text=True)
    for n in range(mail.RESET_PER_IP - mail.RESET_PER_ADDRESS):
        assert _reset(client, f"someone{n}@school.test", ip="10.0.0.2").status_code == 200
    assert _reset(client, "fresh@school.test", ip="10.0.0.2").status_code == 429
    assert _reset(client, "fresh@school.test", ip="10.0.0.4").status_code == 200
    assert deliver(app).sent == mail.RESET_PER_ADDRESS


def test_a_refused_send_is_retried_with_backoff_and_then_arrives(app, smtp, frozen_clock):
    person = make_user()
    smtp.inbox.refusals = ["451 4.3.0 Try again later"]
    with write_intent():
        mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/x")
        db.session.commit()
    report = deliver(app)
    assert (report.sent, report.retried) == (0, 1)
    row = db.session.scalar(sa.select(MailOutbox))
    assert "451" in row.last_error and row.next_attempt_at == frozen_clock.now + timedelta(seconds=30)
    assert deliver(app).claimed == 0  # not before the backoff
    frozen_clock.advance(seconds=31)
    assert deliver(app).sent == 1
    assert len(smtp.inbox.to(person.email)) == 1


def test_a_server_that_is_down_is_retried_then_given_up_after_the_attempt_limit(app, smtp, frozen_clock):
    person = make_user()
    smtp.stop()
    with write_intent():
        mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/x")
        db.session.commit()
    assert deliver(app).retried == 1
    frozen_clock.advance(seconds=31)
    assert deliver(app).retried == 1
    smtp.start()
    frozen_clock.advance(seconds=61)
    assert deliver(app).sent == 1  # the third and last attempt arrives
    smtp.stop()
    with write_intent():
        mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/y")
        db.session.commit()
    for _ in range(3):
        deliver(app)
        frozen_clock.advance(hours=1)
    row = db.session.scalar(sa.select(MailOutbox).order_by(MailOutbox.id.desc()))
    assert row.dead_at is not None and row.attempts == 3 and row.text_body == ""
    assert db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "mail.message_dropped")) == 1


def test_a_permanent_refusal_is_not_retried(app, smtp, frozen_clock):
    person = make_user()
    smtp.inbox.refusals = ["550 5.1.1 No such mailbox"]
    with write_intent():
        mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/x")
        db.session.commit()
    report = deliver(app)
    assert (report.sent, report.retried, report.dead) == (0, 0, 1)
    frozen_clock.advance(days=1)
    assert deliver(app).claimed == 0
    row = db.session.scalar(sa.select(MailOutbox))
    assert row.attempts == 1 and "550" in row.last_error


def test_nothing_is_queued_without_a_mail_server_outside_development(app):
    person = make_user()
    with write_intent():
        assert mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/x") is None
        db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MailOutbox)) == 0


def test_every_kind_of_message_arrives_and_none_carries_an_imei(app, client, smtp, frozen_clock):
    """One of each kind, with IMEIs in every field a person can type, and no 14+ digit run anywhere."""
    imei = make_imei()
    admin = make_user(Role.ADMIN, name=f"Admin {imei}")
    office = make_user(Role.OFFICE)
    governor = make_user(Role.GOVERNOR)
    head = make_user(Role.APPROVER)
    teacher = make_user(name=f"Mr {imei}")
    device = make_device(teacher, make="Apple", model=f"iPhone {imei}", imei1=imei)
    with write_intent():
        mail.queue_invitation(db.session, teacher, "https://lanyard.test/set-password/x")
        db.session.commit()
    assert _reset(client, teacher.email).status_code == 200
    committed(devices.report_lost, teacher, make_device(teacher, model=f"Pixel {make_imei()}"), stolen=False, notes=imei)
    asset = make_asset(office, name=f"Camera {imei}")
    lend(office, asset, teacher, due_on=local_today())
    ask(teacher, make_area(admin, f"Room {imei}"), device)
    audit_digest.publish_daily_head(db.session, audit_digest.heads_path(app.instance_path), frozen_clock.now, force=True)
    frozen_clock.advance(days=1, minutes=5)
    with write_intent():
        loans.send_loan_reminders(db.session, frozen_clock.now)
        mail.send_approval_fallbacks(db.session, frozen_clock.now)
        db.session.commit()
    deliver(app)
    kinds = set(db.session.scalars(sa.select(MailOutbox.kind).where(MailOutbox.sent_at.is_not(None))))
    assert kinds == {"invitation", "password_reset", "device_lost", "audit_digest", "loan_reminder", "approval_waiting"}
    assert smtp.inbox.to(head.email) and smtp.inbox.to(governor.email) and smtp.inbox.to(office.email)
    for _sender, _recipients, message in smtp.inbox.received:
        text, html = parts(message)
        for where in (message["Subject"], text, html):
            assert not LONG_DIGITS.search(where), (message["Subject"], where)


def test_the_plain_text_part_is_not_html_escaped_and_the_html_part_is(app, smtp):
    person = make_user(name="Mrs O'Neil & <b>Co</b>")
    with write_intent():
        mail.queue_invitation(db.session, person, "https://lanyard.test/set-password/x")
        db.session.commit()
    deliver(app)
    text, html = parts(smtp.inbox.to(person.email)[0])
    assert "Hello Mrs O'Neil & <b>Co</b>," in text
    assert "Mrs O&#39;Neil &amp; &lt;b&gt;Co&lt;/b&gt;" in html and "<b>Co" not in html
