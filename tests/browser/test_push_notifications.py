"""Web Push in a real Chromium: turn notifications on, receive a real push in the service worker, approve from it.

The browser's own push service (FCM) is out of reach in a test, so `pushManager.subscribe` is stubbed
with an init script that hands back a subscription at the local push service; the server then sends to
that service, which verifies the VAPID signature and decrypts the message as the browser would. The
decrypted message is delivered to the registered service worker with CDP
`ServiceWorker.deliverPushMessage`, so the worker's `push` handler runs for real, and its Approve action
is driven by dispatching a `notificationclick` inside the worker.
"""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.database import write_intent
from app.extensions import db
from app.models import PushSubscription, Role
from app.push.worker import SenderSettings, drain_until_idle
from app.services import action_tokens
from app.services.notifications import notify
from app.services.push_keys import application_server_key
from tests.browser.conftest import sign_in_page
from tests.factories import PASSWORD, make_user
from tests.push_service import PushService

STUB_PUSH_MANAGER = """
(() => {
  const fake = %s;
  const subscription = {
    endpoint: fake.endpoint,
    expirationTime: null,
    options: { applicationServerKey: null, userVisibleOnly: true },
    toJSON() { return fake; },
    unsubscribe() { sessionStorage.removeItem("lanyard-test-subscribed"); return Promise.resolve(true); },
  };
  PushManager.prototype.subscribe = function () {
    sessionStorage.setItem("lanyard-test-subscribed", "1");
    return Promise.resolve(subscription);
  };
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(sessionStorage.getItem("lanyard-test-subscribed") ? subscription : null);
  };
})();
"""

NOTIFICATIONS = """async (tag) => (await self.registration.getNotifications(tag ? { tag } : {})).map((n) => ({
  title: n.title, body: n.body, tag: n.tag, actions: n.actions.map((a) => a.action), url: n.data && n.data.url,
}))"""

CLICK = """async ([tag, action]) => {
  const [notification] = await self.registration.getNotifications({ tag });
  self.dispatchEvent(new NotificationEvent("notificationclick", { notification, action }));
  return true;
}"""


@pytest.fixture
def local_push(live_server):
    live_server.app.config["PUSH_TIMEOUT_SECONDS"] = 2
    service = PushService(
        expected_sub=live_server.app.config["PUSH_CONTACT"],
        expected_key=application_server_key(live_server.app.instance_path),
    )
    live_server.app.config["PUSH_EXTRA_HOSTS"] = service.host
    yield service
    service.close()


@pytest.fixture
def approvals(live_server):
    """The permissions feature's part, played by the test: record what the notification decided."""
    decided: list[tuple[int, int, str]] = []

    def decide(session, approver, request_id, action):
        decided.append((approver.id, request_id, action))
        return {"message": "Approved until 14:20" if action == "approve" else "Denied"}

    real_handler = action_tokens.action_handler_for("permission_request")
    action_tokens.register_action_handler("permission_request", decide)
    yield decided
    action_tokens.register_action_handler("permission_request", real_handler)


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _deliver_until_shown(cdp, worker, origin: str, registration_id: str, message: dict, tag: str, timeout: float = 30.0):
    """Hand the message to the worker (again every few seconds: a worker that a loaded machine restarts
    mid-delivery can drop it) until its notification is showing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cdp.send(
            "ServiceWorker.deliverPushMessage", {"origin": origin, "registrationId": registration_id, "data": json.dumps(message)}
        )
        try:
            return _wait(lambda: worker.evaluate(NOTIFICATIONS, tag), timeout=3)
        except AssertionError:
            continue
    raise AssertionError(f"no notification {tag} was shown")


def _send_through_local_push_service(live_server, local_push: PushService, count: int) -> dict:
    with live_server.app_context():
        drain_until_idle(db.session, SenderSettings.from_app(live_server.app))
        db.session.remove()
    deliveries = local_push.wait_for(count)
    assert local_push.refusals == []
    return deliveries[count - 1].message


def test_turn_on_then_approve_from_the_notification(live_server, new_phone, local_push, approvals):
    with live_server.app_context():
        head = make_user(Role.APPROVER, name="Mrs A Adeyemi")
        head_id, email = head.id, head.email
    browser = local_push.new_subscription()
    context = new_phone()
    context.grant_permissions(["notifications"], origin=live_server.url)
    context.add_init_script(STUB_PUSH_MANAGER % json.dumps(browser.to_json()))
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")

    # Turn notifications on from the Notifications page.
    page.goto("/sign-in")
    sign_in_page(page, email, PASSWORD)
    page.goto("/notifications")
    page.get_by_role("button", name="Turn on notifications").click()
    expect(page.locator("#push-state")).to_have_text("Notifications are on for this browser.")
    expect(page.get_by_role("list", name="Browsers that get notifications").get_by_role("listitem")).to_have_count(1)
    expect(page.get_by_text("this browser", exact=True)).to_be_visible()
    page.goto("/account")
    expect(page.locator("#account-push-this")).to_have_text("This browser gets your notifications.")
    with live_server.app_context():
        assert (
            db.session.scalar(sa.select(PushSubscription.user_id).where(PushSubscription.endpoint == browser.endpoint)) == head_id
        )

    # A request arrives: the server encrypts and signs it to the (local) push service.
    with live_server.app_context(), write_intent():
        approver = db.session.get(type(head), head_id)
        notify(
            db.session,
            [approver],
            kind="permission.requested",
            title="Mr B: iPhone 13 into Year 3 until 14:20",
            body="Expecting an urgent call",
            url="/notices",
            extra={"kind": "permission.requested", "request_id": 7},
        )
        db.session.commit()
        db.session.remove()
    message = _send_through_local_push_service(live_server, local_push, 1)
    assert set(message["actions"]) == {"approve", "deny"} and message["request_id"] == 7

    # The browser's push service hands it to the registered worker.
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    registration = _wait(lambda: next((r for r in registrations if r["scopeURL"].startswith(live_server.url)), None))
    worker = _wait(lambda: context.service_workers[0] if context.service_workers else None)
    shown = _deliver_until_shown(cdp, worker, live_server.url, registration["registrationId"], message, "request-7")
    assert shown == [
        {
            "title": "Mr B: iPhone 13 into Year 3 until 14:20",
            "body": "Expecting an urgent call",
            "tag": "request-7",
            "actions": ["approve", "deny"],
            "url": "/notices",
        }
    ]

    # Approve from the notification, without opening Lanyard.
    worker.evaluate(CLICK, ["request-7", "approve"])
    _wait(lambda: approvals)
    assert approvals == [(head_id, 7, "approve")]
    confirmation = _wait(lambda: [n for n in worker.evaluate(NOTIFICATIONS, "request-7") if n["title"] == "Approved until 14:20"])
    assert confirmation[0]["actions"] == []

    # The same button again (a replay) decides nothing and says why.
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": live_server.url, "registrationId": registration["registrationId"], "data": json.dumps(message)},
    )
    _wait(lambda: [n for n in worker.evaluate(NOTIFICATIONS, "request-7") if n["actions"]])
    worker.evaluate(CLICK, ["request-7", "approve"])
    refused = _wait(lambda: [n for n in worker.evaluate(NOTIFICATIONS, "request-7") if n["title"] == "Not decided"])
    assert refused[0]["body"] == "This button has already been used."
    assert approvals == [(head_id, 7, "approve")]


def test_tapping_a_notification_opens_its_page(live_server, new_phone, local_push):
    with live_server.app_context():
        person = make_user(Role.STAFF)
        email = person.email
    context = new_phone()
    context.grant_permissions(["notifications"], origin=live_server.url)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    page.goto("/sign-in")
    sign_in_page(page, email, PASSWORD)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    registration = _wait(lambda: next((r for r in registrations if r["scopeURL"].startswith(live_server.url)), None))
    worker = _wait(lambda: context.service_workers[0] if context.service_workers else None)

    message = {
        "title": "Your request was approved",
        "body": "Until 14:20",
        "url": "/devices",
        "kind": "permission.approved",
        "notice_id": 1,
    }
    shown = _deliver_until_shown(cdp, worker, live_server.url, registration["registrationId"], message, "notice-1")
    assert shown[0]["actions"] == [] and shown[0]["url"] == "/devices"

    worker.evaluate(CLICK, ["notice-1", ""])
    page.wait_for_url(f"{live_server.url}/devices", timeout=20_000)
    expect(page.get_by_role("heading", name="My devices")).to_be_visible()


IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
# Safari in a tab (not added to the Home Screen) has no Push API at all.
NO_PUSH_API = "delete window.PushManager; delete window.Notification;"


def test_on_an_iphone_the_page_says_to_add_lanyard_to_the_home_screen(live_server, new_phone):
    with live_server.app_context():
        email = make_user(Role.APPROVER).email
    context = new_phone(user_agent=IPHONE_SAFARI)
    context.add_init_script(NO_PUSH_API)
    page = context.new_page()
    page.goto("/sign-in")
    sign_in_page(page, email, PASSWORD)
    page.goto("/notifications")
    expect(page.locator("#push-state")).to_have_text(
        "On iPhone and iPad, add Lanyard to your Home Screen first, then open it from there."
    )
    expect(page.get_by_text("Add to Home Screen")).to_be_visible()
    expect(page.get_by_role("button", name="Turn on notifications")).to_be_hidden()


def test_a_push_service_that_never_answers_does_not_leave_the_page_waiting(live_server, new_phone):
    with live_server.app_context():
        email = make_user(Role.STAFF).email
    context = new_phone()
    context.grant_permissions(["notifications"], origin=live_server.url)
    # subscribe() that never settles, as seen on some browsers; the page gives up after its timeout.
    context.add_init_script(
        "PushManager.prototype.subscribe = () => new Promise(() => {});"
        "PushManager.prototype.getSubscription = () => Promise.resolve(null);"
        "window.LANYARD_PUSH_TIMEOUT_MS = 300;"
    )
    page = context.new_page()
    page.goto("/sign-in")
    sign_in_page(page, email, PASSWORD)
    page.goto("/notifications")
    page.get_by_role("button", name="Turn on notifications").click()
    expect(page.locator("#push-state")).to_have_text(
        "The browser's push service did not answer. Check the connection and try again."
    )
    expect(page.get_by_role("button", name="Turn on notifications")).to_be_enabled()
