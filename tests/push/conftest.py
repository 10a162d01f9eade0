"""Fixtures for Web Push: a local push service and helpers to subscribe browsers and drain the outbox."""

from __future__ import annotations

import pytest

from app.database import write_intent
from app.extensions import db
from app.push.worker import SenderSettings, drain_until_idle
from app.services import push
from app.services.push_keys import application_server_key
from tests.push_service import BrowserSubscription, PushService


@pytest.fixture
def push_app(app):
    """The test app with short timeouts and backoff (``push_service`` names itself as the school's own)."""
    app.config.update(
        PUSH_TIMEOUT_SECONDS=0.5,
        PUSH_BACKOFF_SECONDS=5,
        PUSH_MAX_ATTEMPTS=4,
        PUSH_SEND_THREADS=4,
    )
    return app


@pytest.fixture
def push_service(push_app):
    service = PushService(
        expected_sub=push_app.config["PUSH_CONTACT"],
        expected_key=application_server_key(push_app.instance_path),
    )
    # As a school names its own push service: exactly this host and port, nothing else on 127.0.0.1.
    push_app.config["PUSH_EXTRA_HOSTS"] = service.host
    yield service
    service.close()


@pytest.fixture
def sender_settings(push_app) -> SenderSettings:
    return SenderSettings.from_app(push_app)


def subscribe_browser(service: PushService, user) -> tuple[BrowserSubscription, int]:
    """Make a browser key pair at the local push service and record it for ``user`` as the API would."""
    browser = service.new_subscription()
    with write_intent():
        subscription, _created = push.subscribe(
            db.session,
            user,
            endpoint=browser.endpoint,
            p256dh=browser.p256dh,
            auth=browser.auth,
            user_agent="Test browser",
            services=push.PushServices.from_config({"PUSH_EXTRA_HOSTS": service.host}),
        )
        db.session.commit()
    return browser, subscription.id


def drain(settings: SenderSettings):
    """Send everything due now, as the worker would, and return the report."""
    return drain_until_idle(db.session, settings)
