"""Which push endpoints the server will POST to: only named push services, read alike by every parser."""

from __future__ import annotations

import base64
import os

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app import create_app
from app.extensions import db
from app.models import PushSubscription, Role
from app.services import push
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in

PUSH_HOST = "fcm.googleapis.com"

# Each endpoint is refused, with the words the problem details should carry.
HOSTILE_ENDPOINTS = [
    # The two that broke the sender: a backslash that urllib3 reads as the path (it connected to
    # 127.0.0.1:5250 while the audience named the push service), and userinfo.
    (f"https://127.0.0.1:5250\\@{PUSH_HOST}/x", "backslash"),
    (f"https://user:pass@{PUSH_HOST}/x", "user name or password"),
    (f"https://{PUSH_HOST}@evil.example/x", "user name or password"),
    (f"https://evil.example\\.{PUSH_HOST}/x", "backslash"),
    (f"https://{PUSH_HOST}\\/x", "backslash"),
    (f"http://{PUSH_HOST}/fcm/send/x", "https"),
    (f"ftp://{PUSH_HOST}/x", "https"),
    (f"https://{PUSH_HOST}:8443/x", "port 443"),
    (f"https://{PUSH_HOST}:99999/x", "port"),
    (f"https://{PUSH_HOST}:443/x", "plain form"),
    ("https://FCM.GoogleApis.com/x", "plain form"),
    (f"https://{PUSH_HOST}", "plain form"),
    (f"https://{PUSH_HOST}./x", "dot"),
    (f"https://{PUSH_HOST}../x", "dot"),
    (f"https://x..{PUSH_HOST}/x", "dot"),
    ("https://127.0.0.1/x", "IP address"),
    ("https://169.254.169.254/latest/meta-data", "IP address"),
    ("https://2130706433/x", "IP address"),
    ("https://0x7f000001/x", "IP address"),
    ("https://0177.0.0.1/x", "IP address"),
    ("https://127.1/x", "IP address"),
    ("https://[::1]/x", "IP address"),
    ("https://[::ffff:127.0.0.1]:443/x", "IP address"),
    ("https://evil.example/collect", "not a push service"),
    (f"https://{PUSH_HOST}.evil.example/x", "not a push service"),
    (f"https://evil{PUSH_HOST}/x", "not a push service"),
    ("https://googleapis.com/x", "not a push service"),
    ("https://localhost/x", "plain host name"),
    ("https://ｆcm.googleapis.com/x", "ASCII"),  # noqa: RUF001 (a full-width letter on purpose)
    ("https://fcm.googleapis.com\u3002evil.example/x", "ASCII"),
    ("https://xn--fcm-abc.googleapis.com/x", "punycode"),
    (f"https://{PUSH_HOST}/x y", "spaces or control"),
    (f" https://{PUSH_HOST}/x", "spaces or control"),
    (f"https://{PUSH_HOST}/x\r\nHost: evil.example", "spaces or control"),
    (f"https://{PUSH_HOST}/x\t", "spaces or control"),
    (f"https://{PUSH_HOST}\x00.evil.example/x", "spaces or control"),
    (f"https://{PUSH_HOST}/x#@evil.example", "fragment"),
    (f"https:/{PUSH_HOST}/x", "parsers"),
    (f"https:{PUSH_HOST}/x", "parsers"),
    (f"https://{PUSH_HOST}%2eevil.example/x", "parsers"),
    (f"https://{PUSH_HOST}/" + "a" * push.MAX_ENDPOINT_LENGTH, "longer than"),
    ("", "endpoint URL"),
]

GOOD_ENDPOINTS = [
    "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91bH",
    "https://android.googleapis.com/gcm/send/abc",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
    "https://push.services.mozilla.com/wpush/v1/abc",
    "https://db5p.notify.windows.com/w/?token=BQYAAAD",
    "https://web.push.apple.com/QGuQyavXutnMH",
    "https://api.push.apple.com/3/device/abc",
]


def browser_keys() -> tuple[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    encode = lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")  # noqa: E731
    return encode(point), encode(os.urandom(16))


def _post(client, endpoint, p256dh=None, auth=None):
    keys = browser_keys()
    body = {"endpoint": endpoint, "keys": {"p256dh": p256dh or keys[0], "auth": auth or keys[1]}}
    return client.post("/api/v1/push-subscriptions", json=body, headers={"X-CSRFToken": csrf_token(client, "/notifications")})


@pytest.mark.parametrize(("endpoint", "words"), HOSTILE_ENDPOINTS)
def test_each_refusal_names_what_is_wrong(endpoint, words):
    problem = push.endpoint_problem(endpoint, push.PushServices.public())
    assert problem is not None and words in problem


@pytest.mark.parametrize("endpoint", GOOD_ENDPOINTS)
def test_the_browsers_push_services_are_accepted(endpoint):
    assert push.endpoint_problem(endpoint, push.PushServices.public()) is None


def test_the_api_refuses_every_endpoint_that_is_not_plainly_a_push_service(client):
    sign_in(client, make_user(Role.STAFF))
    for endpoint, words in HOSTILE_ENDPOINTS:
        response = _post(client, endpoint)
        assert response.status_code == 422, (endpoint, response.get_data(as_text=True))
        assert response.mimetype == "application/problem+json"
        [message] = response.get_json()["errors"]["endpoint"]
        assert words in message, (endpoint, message)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushSubscription)) == 0


def test_the_api_accepts_the_browsers_push_services(client):
    sign_in(client, make_user(Role.STAFF))
    for endpoint in GOOD_ENDPOINTS:
        response = _post(client, endpoint)
        assert response.status_code == 201, (endpoint, response.get_data(as_text=True))
    assert set(db.session.scalars(sa.select(PushSubscription.endpoint))) == set(GOOD_ENDPOINTS)


def test_the_api_refuses_a_subscription_without_a_string_endpoint(client):
    sign_in(client, make_user(Role.STAFF))
    p256dh, auth = browser_keys()
    for endpoint in (None, 42, ["https://fcm.googleapis.com/x"]):
        body = {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
        response = client.post(
            "/api/v1/push-subscriptions", json=body, headers={"X-CSRFToken": csrf_token(client, "/notifications")}
        )
        assert response.status_code == 422 and "endpoint" in response.get_json()["errors"], endpoint


KEY_CASES = [
    ("p256dh", "AAAA", None),
    ("p256dh", "BA" + "A" * 85, None),  # 65 bytes but not a point on the curve
    ("p256dh", "Aw" + "A" * 41, None),  # a compressed point (33 bytes)
    ("p256dh", "!" * 87, None),  # base64 decoding would quietly drop these characters
    ("p256dh", "B" * 500, None),
    ("auth", None, "c2hvcnQ"),  # 5 bytes
    ("auth", None, "A" * 23),  # 17 bytes
    ("auth", None, "AAAAAAAAAAAAAAAAAAAAA+"),  # standard base64, not base64url
    ("auth", None, "AAAAAAAA AAAAAAAAAAAAA"),
    ("auth", None, "AAAAAAAAAAAAAAAAAAAAAB"),  # 16 bytes with stray bits: not canonical
]


def test_keys_must_be_base64url_of_the_right_size(client):
    sign_in(client, make_user(Role.STAFF))
    for field, p256dh, auth in KEY_CASES:
        response = _post(client, GOOD_ENDPOINTS[0], p256dh, auth)
        assert response.status_code == 422 and set(response.get_json()["errors"]) == {field}, (p256dh, auth)


def test_padded_keys_are_accepted(client):
    sign_in(client, make_user(Role.STAFF))
    p256dh, auth = browser_keys()
    assert _post(client, GOOD_ENDPOINTS[0], p256dh + "=", auth + "==").status_code == 201


def test_the_schools_own_push_service_is_that_host_and_port_only(app, client):
    app.config["PUSH_EXTRA_HOSTS"] = "push.st-marys.sch.uk, 127.0.0.1:5250"
    sign_in(client, make_user(Role.STAFF))
    for endpoint in ("https://push.st-marys.sch.uk/w/1", "https://127.0.0.1:5250/w/2", "http://127.0.0.1:5250/w/3"):
        assert _post(client, endpoint).status_code == 201, endpoint
    for endpoint, words in (
        ("https://push.st-marys.sch.uk:8443/w", "port 443"),
        ("http://push.st-marys.sch.uk/w", "https"),  # plain http only for a service on this machine
        ("https://a.push.st-marys.sch.uk/w", "not a push service"),  # named exactly, not its subdomains
        ("https://127.0.0.1:5251/w", "port 5250"),
        ("https://127.0.0.1/w", "port 5250"),
        ("https://2130706433:5250/w", "IP address"),  # only the address as the school wrote it
        ("https://localhost:5250/w", "plain host name"),
        ("https://127.0.0.1:5250\\@push.st-marys.sch.uk/w", "backslash"),
    ):
        response = _post(client, endpoint)
        assert response.status_code == 422, endpoint
        assert words in response.get_json()["errors"]["endpoint"][0], endpoint


def test_the_extra_hosts_come_from_the_environment(monkeypatch, tmp_path, database_url):
    monkeypatch.setenv("LANYARD_PUSH_EXTRA_HOSTS", " push.st-marys.sch.uk ,127.0.0.1:5250,")
    monkeypatch.setenv("LANYARD_DATABASE_URL", database_url)
    application = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x", "JSON_LOGS": False})
    services = push.PushServices.from_config(application.config)
    assert services.hosts[-2:] == (
        push.PushHost("push.st-marys.sch.uk", 443, suffix=False, plain_http=False),
        push.PushHost("127.0.0.1", 5250, suffix=False, plain_http=True),
    )
    with application.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    "value", ["https://push.example", "user@push.example", "push.example:http", "push.example.", "push.example/x"]
)
def test_a_malformed_extra_host_stops_the_app_at_start(monkeypatch, tmp_path, value):
    monkeypatch.setenv("LANYARD_PUSH_EXTRA_HOSTS", value)
    with pytest.raises(ValueError, match="LANYARD_PUSH_EXTRA_HOSTS"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
