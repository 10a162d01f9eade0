"""Web Push over the API: the VAPID public key, this person's browsers, and notification actions."""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user, login_required

from app.access import public
from app.api import bp
from app.api.helpers import json_body, text_field
from app.api.openapi import register_paths
from app.extensions import csrf, db
from app.models import PushSubscription
from app.services import push
from app.services.action_tokens import ACTIONS, redeem
from app.services.errors import ValidationFailed
from app.services.push_keys import application_server_key

CONFIRMATIONS = {"approve": "Approved", "deny": "Denied"}


def subscription_json(subscription: PushSubscription) -> dict:
    return {
        "id": subscription.id,
        "endpoint": subscription.endpoint,
        "user_agent": subscription.user_agent,
        "created_at": subscription.created_at.isoformat(),
        "last_success_at": subscription.last_success_at.isoformat() if subscription.last_success_at else None,
        "failure_count": subscription.failure_count,
    }


@bp.get("/push-subscriptions/key")
@public
def push_key():
    """The applicationServerKey browsers subscribe with; public by nature."""
    return {"applicationServerKey": application_server_key(current_app.instance_path)}


@bp.get("/push-subscriptions")
@login_required
def list_push_subscriptions():
    return {"items": [subscription_json(s) for s in push.subscriptions_of(db.session, current_user)]}


@bp.post("/push-subscriptions")
@login_required
def create_push_subscription():
    data = json_body({"endpoint", "keys", "expirationTime"})
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise ValidationFailed("Send the subscription as PushSubscription.toJSON() gives it.", {"keys": ["Expected an object with p256dh and auth."]})
    subscription, created = push.subscribe(
        db.session,
        current_user,
        endpoint=text_field(data, "endpoint"),
        p256dh=text_field(keys, "p256dh"),
        auth=text_field(keys, "auth"),
        user_agent=request.user_agent.string or "",
        services=push.PushServices.from_config(current_app.config),
    )
    db.session.commit()
    return subscription_json(subscription), 201 if created else 200


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
    data = json_body({"token", "action"})
    token = text_field(data, "token")
    action = text_field(data, "action")
    if action not in ACTIONS:
        raise ValidationFailed("action must be approve or deny.", {"action": ["Must be approve or deny."]})
    presenter = current_user if current_user.is_authenticated else None
    redemption = redeem(db.session, token, action, presenter=presenter)
    db.session.commit()
    outcome = redemption.outcome if isinstance(redemption.outcome, dict) else {}
    return {
        "subject_type": redemption.subject_type,
        "subject_id": redemption.subject_id,
        "action": redemption.action,
        "message": str(outcome.get("message") or CONFIRMATIONS[action])[:120],
    }


csrf.exempt(push_action)


_problem = {"$ref": "#/components/responses/Problem"}
_subscription = {"application/json": {"schema": {"$ref": "#/components/schemas/PushSubscription"}}}

register_paths(
    {
        "/push-subscriptions/key": {
            "get": {
                "summary": "The VAPID public key (applicationServerKey) to subscribe with",
                "operationId": "getPushKey",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The key, base64url of the uncompressed P-256 point",
                        "content": {"application/json": {"schema": {"type": "object", "required": ["applicationServerKey"], "properties": {"applicationServerKey": {"type": "string"}}}}},
                    }
                },
            }
        },
        "/push-subscriptions": {
            "get": {
                "summary": "My browsers that get push notifications",
                "operationId": "listPushSubscriptions",
                "responses": {
                    "200": {
                        "description": "Subscriptions",
                        "content": {"application/json": {"schema": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/PushSubscription"}}}}}},
                    },
                    "401": _problem,
                },
            },
            "post": {
                "summary": "Add or refresh this browser's subscription (the body is PushSubscription.toJSON())",
                "operationId": "createPushSubscription",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PushSubscriptionInput"}}}},
                "responses": {
                    "200": {"description": "Already known; refreshed", "content": _subscription},
                    "201": {"description": "Added", "content": _subscription},
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
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PushActionInput"}}}},
                "responses": {
                    "200": {"description": "Decided", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PushActionResult"}}}},
                    "403": _problem,
                    "404": _problem,
                    "409": _problem,
                    "422": _problem,
                },
            }
        },
    },
    {
        "PushSubscription": {
            "type": "object",
            "required": ["id", "endpoint", "created_at", "failure_count"],
            "properties": {
                "id": {"type": "integer"},
                "endpoint": {"type": "string"},
                "user_agent": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "last_success_at": {"type": ["string", "null"], "format": "date-time"},
                "failure_count": {"type": "integer"},
            },
        },
        "PushSubscriptionInput": {
            "type": "object",
            "required": ["endpoint", "keys"],
            "additionalProperties": False,
            "properties": {
                "endpoint": {"type": "string", "format": "uri", "maxLength": 2048},
                "expirationTime": {"type": ["number", "null"]},
                "keys": {
                    "type": "object",
                    "required": ["p256dh", "auth"],
                    "properties": {"p256dh": {"type": "string"}, "auth": {"type": "string"}},
                },
            },
        },
        "PushActionInput": {
            "type": "object",
            "required": ["token", "action"],
            "additionalProperties": False,
            "properties": {"token": {"type": "string"}, "action": {"type": "string", "enum": ["approve", "deny"]}},
        },
        "PushActionResult": {
            "type": "object",
            "required": ["subject_type", "subject_id", "action", "message"],
            "properties": {
                "subject_type": {"type": "string"},
                "subject_id": {"type": "integer"},
                "action": {"type": "string", "enum": ["approve", "deny"]},
                "message": {"type": "string"},
            },
        },
    },
)
