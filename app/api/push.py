"""Web Push over the API: the VAPID public key, this person's browsers, and notification actions."""

from __future__ import annotations

from typing import Annotated, Literal

from flask import current_app, request
from flask_login import current_user, login_required
from pydantic import BaseModel, ConfigDict

from app.access import public
from app.api import bp
from app.api.openapi import json_content, register_paths, request_body
from app.api.shapes import (
    Body,
    Message,
    OptionalTimestamp,
    Refusal,
    Shape,
    Text,
    Timestamp,
    choice,
    documented,
    read_body,
    reply,
    text,
)
from app.extensions import csrf, db
from app.models import PushSubscription as PushSubscriptionModel
from app.services import push
from app.services.action_tokens import ACTIONS, redeem
from app.services.errors import ValidationFailed
from app.services.push_keys import application_server_key

CONFIRMATIONS = {"approve": "Approved", "deny": "Denied"}


class PushKeys(BaseModel):
    """The browser's keys, as PushSubscription.toJSON() gives them (anything else it adds is ignored)."""

    model_config = ConfigDict(strict=True)

    p256dh: Text = text(required=True, max_length=200, description="base64url of the 65-byte uncompressed P-256 point")
    auth: Text = text(required=True, max_length=100, description="base64url of 16 bytes")


class PushSubscriptionInput(Body):
    endpoint: Annotated[Text, Refusal("Send the subscription's endpoint URL.")] = text(
        required=True, max_length=2048, **documented(format="uri")
    )
    expirationTime: float | None = None  # noqa: N815  (the browser's own name)
    keys: Annotated[PushKeys, Message("Expected an object with p256dh and auth.")]


class PushActionInput(Body):
    token: Text = text(required=True, max_length=200)
    action: choice(*sorted(ACTIONS))


class PushKey(Shape):
    applicationServerKey: str  # noqa: N815


class PushSubscription(Shape):
    id: int
    endpoint: str
    user_agent: str
    created_at: Timestamp
    last_success_at: OptionalTimestamp
    failure_count: int

    @classmethod
    def of(cls, subscription: PushSubscriptionModel) -> PushSubscription:
        return cls(
            id=subscription.id,
            endpoint=subscription.endpoint,
            user_agent=subscription.user_agent,
            created_at=subscription.created_at,
            last_success_at=subscription.last_success_at,
            failure_count=subscription.failure_count,
        )


class PushSubscriptionList(Shape):
    items: list[PushSubscription]


class PushActionResult(Shape):
    subject_type: str
    subject_id: int
    action: Literal["approve", "deny"]
    message: str


@bp.get("/push-subscriptions/key")
@public
def push_key():
    """The applicationServerKey browsers subscribe with; public by nature."""
    return reply(PushKey(applicationServerKey=application_server_key(current_app.instance_path)))


@bp.get("/push-subscriptions")
@login_required
def list_push_subscriptions():
    return reply(PushSubscriptionList(items=[PushSubscription.of(s) for s in push.subscriptions_of(db.session, current_user)]))


@bp.post("/push-subscriptions")
@login_required
def create_push_subscription():
    body = read_body(PushSubscriptionInput)
    subscription, created = push.subscribe(
        db.session,
        current_user,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        user_agent=request.user_agent.string or "",
        services=push.PushServices.from_config(current_app.config),
    )
    db.session.commit()
    return reply(PushSubscription.of(subscription), 201 if created else 200)


@bp.delete("/push-subscriptions/<int:subscription_id>")
@login_required
def delete_push_subscription(subscription_id: int):
    subscription = push.owned_subscription(db.session, current_user, subscription_id)
    push.unsubscribe(db.session, current_user, subscription)
    db.session.commit()
    return "", 204


@bp.post("/push-actions")
@public
def push_action():
    """Approve or Deny from a notification's button.

    The service worker calls this when the phone may have no live session (the lock screen), so the
    one-time token in the body is the credential, not a cookie. CSRF protection exists to stop another
    site riding a victim's cookie; here the cookie grants nothing and a forged call would need the
    unguessable token itself, so the route is exempt from the CSRF check. If a session cookie does come
    along, it must belong to the token's own approver.
    """
    body = read_body(PushActionInput)
    token, action = body.token, body.action
    if action not in ACTIONS:
        raise ValidationFailed("action must be approve or deny.", {"action": ["Must be approve or deny."]})
    presenter = current_user if current_user.is_authenticated else None
    redemption = redeem(db.session, token, action, presenter=presenter)
    db.session.commit()
    outcome = redemption.outcome if isinstance(redemption.outcome, dict) else {}
    result = PushActionResult(
        subject_type=redemption.subject_type,
        subject_id=redemption.subject_id,
        action=redemption.action,
        message=str(outcome.get("message") or CONFIRMATIONS[action])[:120],
    )
    return reply(result)


csrf.exempt(push_action)


_problem = {"$ref": "#/components/responses/Problem"}

register_paths(
    {
        "/push-subscriptions/key": {
            "get": {
                "summary": "The VAPID public key (applicationServerKey) to subscribe with",
                "operationId": "getPushKey",
                "security": [],
                "responses": {"200": json_content(PushKey, "The key, base64url of the uncompressed P-256 point")},
            }
        },
        "/push-subscriptions": {
            "get": {
                "summary": "My browsers that get push notifications",
                "operationId": "listPushSubscriptions",
                "responses": {"200": json_content(PushSubscriptionList, "Subscriptions"), "401": _problem},
            },
            "post": {
                "summary": "Add or refresh this browser's subscription (the body is PushSubscription.toJSON())",
                "operationId": "createPushSubscription",
                "requestBody": request_body(PushSubscriptionInput),
                "responses": {
                    "200": json_content(PushSubscription, "Already known; refreshed"),
                    "201": json_content(PushSubscription, "Added"),
                    "401": _problem,
                    "403": _problem,
                    "422": _problem,
                },
            },
        },
        "/push-subscriptions/{subscription_id}": {
            "delete": {
                "summary": "Stop pushes to one of my browsers",
                "operationId": "deletePushSubscription",
                "parameters": [{"name": "subscription_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"204": {"description": "Removed"}, "401": _problem, "403": _problem, "404": _problem},
            }
        },
        "/push-actions": {
            "post": {
                "summary": "Decide from a notification button with its one-time action token (no session needed)",
                "operationId": "redeemPushAction",
                "security": [],
                "requestBody": request_body(PushActionInput),
                "responses": {
                    "200": json_content(PushActionResult, "Decided"),
                    "403": _problem,
                    "404": _problem,
                    "409": _problem,
                    "422": _problem,
                },
            }
        },
    }
)
