"""Sign in with Microsoft and with Google in Chromium, through a real OpenID provider run locally.

The provider is the `oidc-provider` package from npm (tests/oidc/provider.mjs), started here as a node
process on a free port of 127.0.0.1; the person types their login on its own sign-in page.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, Identity, Role, User
from app.services import accounts
from app.services.settings import set_setting
from app.sso import client as oidc_client

PROVIDER_JS = Path(__file__).parent.parent / "oidc" / "provider.mjs"
NODE_MODULE = Path(__file__).parent / "node_modules" / "oidc-provider"
TENANT = "0b1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PASSWORD = "browser sso password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def local_provider(tmp_path, live_server):
    """Start oidc-provider processes (one per provider name) and point the live app at them."""
    node = shutil.which("node")
    if node is None or not NODE_MODULE.exists():
        pytest.fail("node and oidc-provider are needed: run make install-dev (npm install --prefix tests/browser)", pytrace=False)
    started: list[subprocess.Popen] = []

    def start(name: str, accounts_claims: dict[str, dict], **settings) -> str:
        port = _free_port()
        client_id, secret = f"lanyard-{name}", f"{name}-secret-for-tests"
        config = tmp_path / f"{name}.json"
        config.write_text(
            json.dumps(
                {
                    "port": port,
                    "clients": [
                        {
                            "client_id": client_id,
                            "client_secret": secret,
                            "redirect_uris": [f"{live_server.url}/sign-in/oidc/{name}/callback"],
                        }
                    ],
                    "accounts": accounts_claims,
                }
            )
        )
        process = subprocess.Popen(  # noqa: S603  (our own script)
            [node, str(PROVIDER_JS), str(config)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        started.append(process)
        line = process.stdout.readline()  # "ready <issuer>", or nothing when it failed to start
        assert line.startswith("ready "), f"oidc-provider did not start: {line!r}"
        issuer = line.split()[1]
        key = name.upper()
        live_server.app.config.update(
            {
                f"OIDC_{key}_CLIENT_ID": client_id,
                f"OIDC_{key}_CLIENT_SECRET": secret,
                f"OIDC_{key}_ISSUER": issuer,
                **settings,
            }
        )
        return issuer

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    oidc_client.forget_cached()


def _seed(live_server) -> dict[str, int]:
    with live_server.app_context(), write_intent():
        admin = accounts.create_user(
            db.session, None, email="admin@school.test", display_name="Ms Admin", roles={Role.ADMIN}, password=PASSWORD
        )
        person = accounts.create_user(
            db.session, None, email="bclarke@school.test", display_name="Mr B Clarke", roles=set(), password=PASSWORD
        )
        leaver = accounts.create_user(db.session, None, email="leaver@school.test", display_name="Mr Leaver", roles=set())
        db.session.flush()
        accounts.deactivate_user(db.session, admin, leaver)
        db.session.commit()
        return {"admin": admin.id, "bclarke": person.id, "leaver": leaver.id}


def _through_provider(context, button: str, login: str):
    """Press the button on Lanyard's sign-in page and sign in at the provider; return (page, callback URL)."""
    page = context.new_page()
    callbacks: list[str] = []
    page.on("request", lambda request: callbacks.append(request.url) if "/callback?" in request.url else None)
    page.goto("/sign-in")
    page.get_by_role("button", name=button).click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("anything")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_load_state()
    return page, callbacks[-1]


def _refusal_reasons(live_server) -> list[str]:
    with live_server.app_context():
        details = db.session.scalars(
            sa.select(AuditEvent.details).where(AuditEvent.action == "auth.sso_refused").order_by(AuditEvent.seq)
        )
        return [json.loads(d)["reason"] for d in details]


def test_sign_in_with_microsoft_through_a_real_provider(live_server, new_phone, local_provider):
    ids = _seed(live_server)
    claims = {"tid": TENANT, "xms_edov": True}
    local_provider(
        "microsoft",
        {
            "bclarke": {"email": "bclarke@school.test", "name": "Ben Clarke", **claims},
            "outsider": {"email": "bclarke@school.test", "tid": "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f", "xms_edov": True},
            "unverified": {"email": "bclarke@school.test", "tid": TENANT, "xms_edov": False},
            "leaver": {"email": "leaver@school.test", **claims},
            "newstarter": {"email": "newstarter@school.test", "name": "Ms N Starter", **claims},
        },
        OIDC_MICROSOFT_TENANT=TENANT,
    )

    # An existing person, matched by email and linked; the journey comes back signed in.
    page, callback = _through_provider(new_phone(), "Sign in with Microsoft", "bclarke")
    assert page.url == f"{live_server.url}/"
    assert page.get_by_role("button", name="Sign out Mr B Clarke").is_visible()
    # Replaying the callback URL is refused: the state was used once.
    replay = page.goto(callback)
    assert replay.status == 403 and page.get_by_text("expired or was already used").is_visible()
    # Next time the subject finds them.
    page, _ = _through_provider(new_phone(), "Sign in with Microsoft", "bclarke")
    assert page.get_by_role("button", name="Sign out Mr B Clarke").is_visible()

    for login, text in (
        ("outsider", "not one of the school's"),
        ("unverified", "email address is not verified"),
        ("leaver", "Your Lanyard account is closed"),
        ("newstarter", "There is no Lanyard account for you yet"),
    ):
        page, _ = _through_provider(new_phone(), "Sign in with Microsoft", login)
        assert page.get_by_role("heading", name="You are not signed in").is_visible(), login
        assert page.get_by_text(text).is_visible(), login
    assert _refusal_reasons(live_server) == ["state_replayed", "wrong_tenant", "email_unverified", "deactivated", "no_account"]

    # The admin allows accounts for the school's domain: the new starter gets one on first sign-in.
    with live_server.app_context(), write_intent():
        set_setting(db.session, db.session.get(User, ids["admin"]), "sso.create_accounts_domain", "school.test")
        db.session.commit()
    page, _ = _through_provider(new_phone(), "Sign in with Microsoft", "newstarter")
    assert page.get_by_role("button", name="Sign out Ms N Starter").is_visible()

    # Passwords off: the sign-in page offers only the provider (and passkeys); the provider still works.
    with live_server.app_context(), write_intent():
        set_setting(db.session, db.session.get(User, ids["admin"]), "sso.required", True)
        db.session.commit()
    page = new_phone().new_page()
    page.goto("/sign-in")
    assert page.get_by_text("passwords are turned off").is_visible()
    assert page.get_by_label("Password").count() == 0
    page, _ = _through_provider(new_phone(), "Sign in with Microsoft", "bclarke")
    assert page.get_by_role("button", name="Sign out Mr B Clarke").is_visible()
    with live_server.app_context():
        linked = db.session.execute(sa.select(Identity.subject, Identity.user_id).order_by(Identity.id)).all()
    assert linked[0] == ("bclarke", ids["bclarke"]) and len(linked) == 2


def test_sign_in_with_google_through_a_real_provider(live_server, new_phone, local_provider):
    ids = _seed(live_server)
    local_provider(
        "google",
        {
            "bclarke": {"email": "bclarke@school.test", "email_verified": True, "hd": "school.test"},
            "gmail": {"email": "bclarke@school.test", "email_verified": True},
            "otherschool": {"email": "bclarke@school.test", "email_verified": True, "hd": "other.test"},
        },
        OIDC_GOOGLE_DOMAIN="school.test",
    )
    page = new_phone().new_page()
    page.goto("/sign-in")
    assert page.get_by_role("button", name="Sign in with Microsoft").count() == 0  # not configured, not shown
    page, _ = _through_provider(new_phone(), "Sign in with Google", "bclarke")
    assert page.get_by_role("button", name="Sign out Mr B Clarke").is_visible()
    for login in ("gmail", "otherschool"):
        page, _ = _through_provider(new_phone(), "Sign in with Google", login)
        assert page.get_by_text("not one of the school's").is_visible(), login
    assert _refusal_reasons(live_server) == ["wrong_domain", "wrong_domain"]
    with live_server.app_context():
        assert db.session.scalar(sa.select(Identity.user_id).where(Identity.provider == "google")) == ids["bclarke"]
