"""The policy's pages: the sign-in gate, accepting, publishing (text or PDF), who has not accepted and
reminders, the coverage view, the "no phone" declaration, the concern page, and every read of personal
data recorded in the audit log (without the IMEI)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.clock import local_today
from app.extensions import db
from app.models import AuditEvent, Notification, PolicyAcceptance, PolicyVersion, Role
from app.services import accounts, policy
from app.services.settings import set_setting
from tests.equipment_factories import page_csrf_token
from tests.factories import make_device, make_user, sign_in
from tests.permission_factories import committed

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def publish(actor, label: str = "v1", **extra) -> PolicyVersion:
    values = {"label": label, "title": "Social Networking Policy", "body": "Keep a record of your phone's IMEI.", "pdf": b""}
    values.update(extra)
    return committed(policy.publish_policy, actor, policy.PolicyDraft(review_date=local_today() + timedelta(days=300), **values))


def events(action: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def post(client, path: str, data: dict | None = None, **kwargs):
    return client.post(path, data={"csrf_token": page_csrf_token(client, "/privacy"), **(data or {})}, **kwargs)


@pytest.fixture
def school(app, frozen_clock):
    return {
        "admin": make_user(Role.ADMIN, name="Mr T Hughes"),
        "head": make_user(Role.APPROVER, name="Mrs A Adeyemi"),
        "office": make_user(Role.OFFICE, name="Ms O Brennan"),
        "staff": make_user(name="Mr B Clarke"),
    }


# The gate ----------------------------------------------------------------------------------------------


def test_without_a_published_policy_nobody_is_stopped(client, school):
    sign_in(client, school["staff"])
    assert client.get("/").status_code == 200


def test_the_gate_sends_a_person_to_the_policy_until_they_accept(client, school):
    publish(school["admin"])
    sign_in(client, school["staff"])
    response = client.get("/devices")
    assert response.status_code == 303 and response.headers["Location"] == "/policy?next=/devices"
    page = client.get("/policy?next=/devices").get_data(as_text=True)
    assert "Keep a record of your phone&#39;s IMEI." in page and "I have read and accept this policy" in page
    # The essentials stay reachable: the API, My data, the account, the concern page, signing out.
    for path in ("/api/v1/me", "/my-data", "/account", "/report-a-concern", "/privacy"):
        assert client.get(path).status_code == 200, path
    version_id = policy.current_policy_id(db.session)
    accepted = post(client, "/policy/accept?next=/devices", {"policy_id": version_id})
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/devices"
    assert client.get("/devices").status_code == 200
    assert "You accepted this version" in client.get("/policy").get_data(as_text=True)
    [event] = events("policy.accepted")
    assert event.actor_id == school["staff"].id


def test_a_new_version_asks_again_even_in_a_session_that_accepted_the_old_one(client, school):
    first = publish(school["admin"])
    sign_in(client, school["staff"])
    post(client, "/policy/accept", {"policy_id": first.id})
    assert client.get("/").status_code == 200
    publish(school["admin"], label="v2")
    assert client.get("/").headers["Location"] == "/policy"


def test_accepting_an_old_version_is_refused(client, school):
    first = publish(school["admin"])
    publish(school["admin"], label="v2")
    sign_in(client, school["staff"])
    post(client, "/policy/accept", {"policy_id": first.id})
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PolicyAcceptance)) == 0


def test_acceptances_are_in_my_data(client, school):
    version = publish(school["admin"])
    sign_in(client, school["staff"])
    post(client, "/policy/accept", {"policy_id": version.id})
    assert "You accepted Social Networking Policy, version v1" in client.get("/my-data").get_data(as_text=True)
    data = json.loads(client.get("/my-data/download").get_data(as_text=True))
    assert [a["version"] for a in data["policy"]["acceptances"]] == ["v1"]


# Publishing ---------------------------------------------------------------------------------------------


def test_the_admin_publishes_a_pdf_that_is_served_in_a_sandbox(client, school):
    sign_in(client, school["admin"])
    form = {"title": "Social Networking Policy", "label": "2026", "review_date": "01/09/2027", "body": ""}
    refused = post(client, "/admin/policy", {**form, "pdf": (io.BytesIO(b"<script>alert(1)</script>"), "policy.pdf")})
    assert refused.status_code == 422 and "The file is not a PDF." in refused.get_data(as_text=True)
    wrong_date = post(client, "/admin/policy", {**form, "review_date": "31/02/2027", "pdf": (io.BytesIO(PDF), "p.pdf")})
    assert wrong_date.status_code == 422
    published = post(client, "/admin/policy", {**form, "pdf": (io.BytesIO(PDF), "policy.pdf")})
    assert published.status_code == 303
    version = db.session.scalars(sa.select(PolicyVersion)).one()
    assert version.review_date.isoformat() == "2027-09-01" and version.body == ""
    # The admin is asked too, like everyone else.
    assert client.get("/").headers["Location"] == "/policy"
    document = client.get(f"/policy/{version.id}/policy.pdf")
    assert document.data == PDF and document.mimetype == "application/pdf"
    assert document.headers["Content-Security-Policy"].startswith("sandbox")
    assert document.headers["X-Content-Type-Options"] == "nosniff" and document.headers["Cache-Control"] == "no-store"
    assert client.get("/policy/999999/policy.pdf").status_code == 404


def test_only_the_admin_publishes(client, school):
    sign_in(client, school["office"])
    assert client.get("/admin/policy").status_code == 403
    assert (
        post(client, "/admin/policy", {"title": "x", "label": "x", "review_date": "01/01/2030", "body": "x"}).status_code == 403
    )


# Who has not accepted, reminders, coverage ----------------------------------------------------------------


def test_the_office_sees_who_has_not_accepted_and_reminds_them(client, school):
    version = publish(school["admin"])
    committed(policy.accept_policy, school["office"], version.id)
    committed(policy.accept_policy, school["head"], version.id)
    sign_in(client, school["office"])
    page = client.get("/policy/acceptances").get_data(as_text=True)
    assert "Remind Mr B Clarke" in page and "Remind Mrs A Adeyemi" not in page
    response = post(client, "/policy/remind", {"user_id": school["staff"].id})
    assert response.status_code == 303
    db.session.rollback()
    reminded = set(db.session.scalars(sa.select(Notification.user_id).where(Notification.kind == "policy.reminder")))
    assert reminded == {school["staff"].id}
    post(client, "/policy/remind")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).where(Notification.kind == "policy.reminder")) == 3


def test_staff_cannot_see_acceptances_coverage_or_send_reminders(client, school):
    publish(school["admin"])
    committed(policy.accept_policy, school["staff"], policy.current_policy_id(db.session))
    sign_in(client, school["staff"])
    assert client.get("/policy/acceptances").status_code == 403
    assert client.get("/coverage").status_code == 403
    assert post(client, "/policy/remind").status_code == 403


def test_coverage_names_each_gap_with_a_way_to_act(client, school):
    make_device(school["staff"])
    committed(policy.declare_no_device, school["admin"])
    publish(school["admin"])
    sign_in(client, school["head"])
    post(client, "/policy/accept", {"policy_id": policy.current_policy_id(db.session)})
    page = client.get("/coverage").get_data(as_text=True)
    no_device = page.split('id="no-device-heading"')[1].split("</section>")[0]
    assert "Ms O Brennan" in no_device and "Mrs A Adeyemi" in no_device
    assert "Mr B Clarke" not in no_device and "Mr T Hughes" not in no_device
    not_accepted = page.split('id="policy-heading"')[1].split("</section>")[0]
    assert "Remind Mr B Clarke" in not_accepted and "Remind Mrs A Adeyemi" not in not_accepted
    assert "/coverage" in client.get("/").get_data(as_text=True)
    assert post(client, "/coverage/remind-to-register", {"user_id": school["office"].id}).status_code == 303
    db.session.rollback()
    asked = set(db.session.scalars(sa.select(Notification.user_id).where(Notification.kind == "device.register_reminder")))
    assert asked == {school["office"].id}
    assert len(events("device.register_reminders_sent")) == 1


# The declaration and the concern page -------------------------------------------------------------------------


def test_staff_declare_they_bring_no_phone_and_withdraw_it(client, school):
    sign_in(client, school["staff"])
    assert "I do not bring a personal phone or recording device to school" in client.get("/devices").get_data(as_text=True)
    assert post(client, "/devices/no-device").status_code == 303
    assert "Withdraw: I now bring one" in client.get("/devices").get_data(as_text=True)
    assert post(client, "/devices/no-device/withdraw").status_code == 303
    assert [len(events("device.none_declared")), len(events("device.none_declaration_withdrawn"))] == [1, 1]


def test_the_concern_page_names_whom_to_tell_and_takes_nothing(client, school):
    committed(set_setting, school["admin"], "safeguarding.dsl_name", "Mr D Okafor <b>")
    committed(set_setting, school["admin"], "safeguarding.head_name", "Mrs A Adeyemi")
    sign_in(client, school["staff"])
    page = client.get("/report-a-concern").get_data(as_text=True)
    main = page.split('<main id="main"')[1].split("</main>")[0]
    assert "Mr D Okafor &lt;b&gt;" in main and "Mrs A Adeyemi" in main and "101" in main
    assert "<form" not in main and 'type="file"' not in main
    assert client.post("/report-a-concern").status_code == 405


def test_the_safeguarding_settings_are_on_the_settings_page_with_help(client, school):
    sign_in(client, school["admin"])
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Safeguarding" in page and "Designated safeguarding lead&#39;s name" in page


# Reads of personal data ----------------------------------------------------------------------------------------


def test_the_register_masks_imeis_and_a_reveal_is_a_recorded_post(client, school):
    phone = make_device(school["staff"])
    sign_in(client, school["office"])
    register = client.get("/office/devices").get_data(as_text=True)
    assert phone.imei1 not in register and phone.imei1[-4:] in register
    assert phone.imei1 not in client.get(f"/office/devices/{phone.id}").get_data(as_text=True)
    assert client.get(f"/office/devices/{phone.id}/reveal").status_code == 405
    revealed = post(client, f"/office/devices/{phone.id}/reveal")
    assert phone.imei1 in revealed.get_data(as_text=True) and revealed.headers["Cache-Control"] == "no-store"
    [event] = events("device.imei_revealed")
    assert phone.imei1 not in event.details and json.loads(event.details) == {"imei_last4": [phone.imei1[-4:]]}
    assert event.subject_id == str(phone.id)


def test_register_searches_are_recorded_without_the_imei(client, school):
    phone = make_device(school["staff"])
    sign_in(client, school["office"])
    assert "Mr B Clarke" in client.get(f"/office/devices?q={phone.imei1}").get_data(as_text=True)
    client.get("/office/devices?q=Clarke")
    client.get("/office/devices")  # the plain list is not a search
    client.get("/api/v1/devices?scope=all&q=Clarke")
    found = events("device.register_searched")
    assert [json.loads(e.details) for e in found] == [
        {"by": "imei", "digits": 15},
        {"by": "name", "text": "Clarke"},
        {"by": "name", "text": "Clarke", "via": "api"},
    ]
    assert all(phone.imei1 not in e.details for e in found)


def test_every_export_is_recorded(client, school):
    sign_in(client, school["office"])
    for path in (
        "/equipment/export/assets.csv",
        "/equipment/export/loans.csv?open=1",
        "/audit/export.csv",
        "/my-data/download",
        "/api/v1/me/export",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        response.close()
    exports = [json.loads(e.details)["export"] for e in events("export.downloaded")]
    assert exports == ["assets", "loans"]
    assert len(events("audit.exported")) == 1
    downloads = events("personal_data.downloaded")
    assert [e.actor_id for e in downloads] == [school["office"].id] * 2


def test_an_admin_exports_a_leavers_data_for_a_subject_access_request(client, school):
    leaver = make_user(name="Mr L Leaver")
    phone = make_device(leaver)
    committed(accounts.deactivate_user, school["admin"], leaver)
    sign_in(client, school["admin"])
    assert "Download Mr L Leaver&#39;s data" in client.get(f"/admin/staff/{leaver.id}").get_data(as_text=True)
    assert client.get(f"/admin/staff/{leaver.id}/export").status_code == 405
    response = post(client, f"/admin/staff/{leaver.id}/export")
    data = json.loads(response.get_data(as_text=True))
    assert data["person"]["name"] == "Mr L Leaver" and data["person"]["active"] is False
    assert data["devices"][0]["imei1"] == phone.imei1
    [event] = events("personal_data.exported")
    assert event.actor_id == school["admin"].id and event.subject_id == str(leaver.id)
    assert phone.imei1 not in event.details


def test_only_the_admin_exports_someone_elses_data(client, school):
    sign_in(client, school["office"])
    assert post(client, f"/admin/staff/{school['staff'].id}/export").status_code == 403
    assert events("personal_data.exported") == []
