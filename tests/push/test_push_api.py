"""The push-subscriptions API and the Notifications page: role, ownership, CSRF, audit, OpenAPI."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, PushSubscription, Role
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in
from tests.push.conftest import subscribe_browser


def _headers(client) -> dict:
    return {"X-CSRFToken": csrf_token(client, "/notifications")}


def _actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_the_public_key_is_served_as_an_uncompressed_point(push_app, client):
    response = client.get("/api/v1/push-subscriptions/key")
    assert response.status_code == 200
    key = response.get_json()["applicationServerKey"]
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4
    assert "=" not in key
    key_file = push_app.instance_path + "/vapid_private.pem"
    import os
    import stat

    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert client.get("/api/v1/push-subscriptions/key").get_json()["applicationServerKey"] == key  # made once


def test_subscribing_needs_csrf_with_a_cookie(push_service, client):
    user = make_user(Role.STAFF)
    sign_in(client, user)
    browser = push_service.new_subscription()
    refused = client.post("/api/v1/push-subscriptions", json=browser.to_json())
    assert refused.status_code == 403 and refused.get_json()["type"] == "urn:lanyard:problem:csrf-failed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushSubscription)) == 0

    created = client.post("/api/v1/push-subscriptions", json=browser.to_json(), headers=_headers(client))
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["endpoint"] == browser.endpoint
    again = client.post("/api/v1/push-subscriptions", json=browser.to_json(), headers=_headers(client))
    assert again.status_code == 200 and again.get_json()["id"] == created.get_json()["id"]
    assert _actions().count("push.subscribed") == 1


def test_deleting_needs_csrf_too(push_service, client):
    user = make_user(Role.STAFF)
    sign_in(client, user)
    _browser, subscription_id = subscribe_browser(push_service, user)
    assert client.delete(f"/api/v1/push-subscriptions/{subscription_id}").status_code == 403
    assert db.session.get(PushSubscription, subscription_id) is not None


def test_signed_out_callers_get_401(client):
    assert client.get("/api/v1/push-subscriptions").status_code == 401
    assert client.post("/api/v1/push-subscriptions", json={}).status_code in (401, 403)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda b: {**b, "endpoint": "https://evil.example/collect"}, "endpoint"),
        (lambda b: {**b, "endpoint": "http://fcm.googleapis.com/fcm/send/x"}, "endpoint"),
        (lambda b: {**b, "endpoint": "http://169.254.169.254/latest"}, "endpoint"),
        (lambda b: {**b, "keys": {**b["keys"], "p256dh": "AAAA"}}, "p256dh"),
        (lambda b: {**b, "keys": {**b["keys"], "auth": "c2hvcnQ"}}, "auth"),
    ],
)
def test_an_unusable_subscription_is_refused(push_service, client, change, field):
    user = make_user(Role.STAFF)
    sign_in(client, user)
    body = change(push_service.new_subscription().to_json())
    response = client.post("/api/v1/push-subscriptions", json=body, headers=_headers(client))
    assert response.status_code == 422 and field in response.get_json()["errors"]


def test_a_person_sees_and_deletes_only_their_own_browsers(push_service, client):
    mine = make_user(Role.STAFF)
    theirs = make_user(Role.APPROVER)
    _b1, my_id = subscribe_browser(push_service, mine)
    _b2, their_id = subscribe_browser(push_service, theirs)
    sign_in(client, mine)

    listed = client.get("/api/v1/push-subscriptions").get_json()["items"]
    assert [item["id"] for item in listed] == [my_id]

    response = client.delete(f"/api/v1/push-subscriptions/{their_id}", headers=_headers(client))
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert db.session.get(PushSubscription, their_id) is not None

    assert client.delete(f"/api/v1/push-subscriptions/{my_id}", headers=_headers(client)).status_code == 204
    db.session.expire_all()
    assert db.session.get(PushSubscription, my_id) is None
    assert "push.unsubscribed" in _actions()


def test_a_browser_follows_the_person_who_subscribes_it_last(push_service, client):
    first = make_user(Role.STAFF)
    browser, subscription_id = subscribe_browser(push_service, first)
    second = make_user(Role.STAFF)
    sign_in(client, second)
    response = client.post("/api/v1/push-subscriptions", json=browser.to_json(), headers=_headers(client))
    assert response.status_code == 200 and response.get_json()["id"] == subscription_id
    db.session.expire_all()
    assert db.session.get(PushSubscription, subscription_id).user_id == second.id
    assert "push.subscription_refreshed" in _actions()


def test_the_notifications_page_offers_the_button_and_lists_browsers(push_service, client):
    user = make_user(Role.STAFF)
    _browser, _subscription_id = subscribe_browser(push_service, user)
    sign_in(client, user)
    page = client.get("/notifications")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Turn on notifications" in html and "Add to Home Screen" in html
    assert 'data-vapid-key="' in html and "/static/js/push.js" in html
    assert "Test browser" in html
    assert 'href="/notifications"' in client.get("/").get_data(as_text=True)  # in the nav for everyone
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html


def test_the_page_removes_only_my_browser(push_service, client):
    mine = make_user(Role.STAFF)
    theirs = make_user(Role.STAFF)
    _b1, my_id = subscribe_browser(push_service, mine)
    _b2, their_id = subscribe_browser(push_service, theirs)
    sign_in(client, mine)
    token = csrf_token(client, "/notifications")
    assert client.post(f"/notifications/{their_id}/remove", data={"csrf_token": token, "confirmed": "yes"}).status_code == 404
    assert client.post(f"/notifications/{my_id}/remove", data={"csrf_token": token, "confirmed": "yes"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(PushSubscription, my_id) is None and db.session.get(PushSubscription, their_id) is not None


def test_the_notifications_page_needs_sign_in(client):
    assert client.get("/notifications").status_code == 302


def test_every_push_route_is_described_in_openapi(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert set(paths["/push-subscriptions"]) == {"get", "post"}
    assert set(paths["/push-subscriptions/{subscription_id}"]) == {"delete"}
    assert paths["/push-actions"]["post"]["security"] == []
    assert paths["/push-subscriptions/key"]["get"]["security"] == []


def test_my_data_lists_my_browsers_without_their_secrets(push_service, client):
    user = make_user(Role.STAFF)
    browser, _ = subscribe_browser(push_service, user)
    sign_in(client, user)
    export = client.get("/api/v1/me/export").get_json()
    assert export["push"]["browsers"][0]["push_service"] == "127.0.0.1"
    assert browser.endpoint not in str(export) and browser.auth not in str(export)


def test_flask_push_worker_once_sends_what_is_due(push_app, push_service):
    from app.database import write_intent
    from app.services.notifications import notify

    user = make_user(Role.STAFF)
    subscribe_browser(push_service, user)
    with write_intent():
        notify(db.session, [user], kind="test.notice", title="From the command line")
        db.session.commit()
    result = push_app.test_cli_runner().invoke(args=["push-worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "Sent 1," in result.output
    assert [m["title"] for m in push_service.messages()] == ["From the command line"]
