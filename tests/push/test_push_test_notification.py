"""Issue 16 item 4: "Send me a test notification" (own browsers only, one a minute, audited) and the account page."""

from __future__ import annotations

import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, PushOutbox, PushSubscription, Role
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in


def _browser(user, n: int = 1) -> None:
    with write_intent():
        db.session.add(
            PushSubscription(
                user_id=user.id, endpoint=f"https://fcm.googleapis.com/fcm/send/test-{user.id}-{n}", p256dh="k", auth="a"
            )
        )
        db.session.commit()


def test_a_test_notification_goes_to_my_own_browsers_once_a_minute(client, frozen_clock):
    me, other = make_user(Role.STAFF), make_user(Role.STAFF)
    _browser(me, 1)
    _browser(me, 2)
    _browser(other)
    sign_in(client, me)
    token = csrf_token(client, "/notifications")
    page = client.get("/notifications").get_data(as_text=True)
    assert "Send me a test notification" in page
    sent = client.post("/notifications/test", data={"csrf_token": token}, follow_redirects=True)
    assert "A test notification is on its way to 2 browsers." in sent.get_data(as_text=True)
    owners = db.session.scalars(
        sa.select(PushSubscription.user_id).join(PushOutbox, PushOutbox.subscription_id == PushSubscription.id)
    ).all()
    assert sorted(owners) == [me.id, me.id]
    again = client.post("/notifications/test", data={"csrf_token": token}, follow_redirects=True)
    assert "less than a minute ago" in again.get_data(as_text=True)
    frozen_clock.advance(minutes=2)
    client.post("/notifications/test", data={"csrf_token": token})
    audited = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "push.test_sent")).all()
    assert len(audited) == 2 and all(e.actor_id == me.id and '"browsers":2' in e.details for e in audited)


def test_without_a_browser_there_is_nothing_to_test(client):
    me = make_user(Role.STAFF)
    sign_in(client, me)
    answer = client.post("/notifications/test", data={"csrf_token": csrf_token(client, "/notifications")}, follow_redirects=True)
    assert "turn them on first" in answer.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == "push.test_sent")) == 0


def test_the_account_page_says_how_many_browsers_get_notifications(client):
    me = make_user(Role.STAFF)
    sign_in(client, me)
    assert "No browser gets your notifications yet." in client.get("/account").get_data(as_text=True)
    _browser(me)
    assert "1 browser gets your notifications." in client.get("/account").get_data(as_text=True)
