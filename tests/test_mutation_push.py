"""Push subscription rules pinned exactly: which endpoints the server will POST to, the school's own push
services, the browser's keys, whose browser a subscription is, and no full IMEI in a payload.

Written for mutation testing (issue 19): each assertion is one a changed comparison, message, port or audit
field in the validation and ownership functions of app/services/push.py would break. Direct calls, no pages.
"""

from __future__ import annotations

import base64
import json

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.database import write_intent
from app.extensions import db
from app.models import AuditEvent, PushSubscription
from app.services import push
from app.services.errors import NotFound, ValidationFailed
from tests.factories import make_user

PUBLIC = push.PushServices.public()
FCM = "https://fcm.googleapis.com/fcm/send/abc"
PLAIN_FORM = "The endpoint is not in the plain form browsers give (lower-case, no default port, then a path)."


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _point(seed: int = 1) -> bytes:
    key = ec.derive_private_key(seed + 1000, ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


P256DH = _b64(_point())
AUTH = _b64(bytes(range(16)))


def _problem(endpoint: object, services: push.PushServices = PUBLIC) -> str | None:
    return push.endpoint_problem(endpoint, services)


# The school's own push services (LANYARD_PUSH_EXTRA_HOSTS) -----------------------------------------------


def test_extra_hosts_are_read_as_exact_names_with_their_ports():
    assert push.parse_extra_hosts(" Push.St-Marys.sch.uk , ,127.0.0.1:5250,localhost:8080,[::1]:9000") == (
        push.PushHost("push.st-marys.sch.uk", 443, suffix=False, plain_http=False),
        push.PushHost("127.0.0.1", 5250, suffix=False, plain_http=True),
        push.PushHost("localhost", 8080, suffix=False, plain_http=True),
        push.PushHost("::1", 9000, suffix=False, plain_http=True),
    )


def test_extra_hosts_may_be_a_list_and_nothing_is_no_hosts():
    assert push.parse_extra_hosts(["push.example.org:8443"]) == (push.PushHost("push.example.org", 8443, suffix=False),)
    assert push.parse_extra_hosts(None) == ()
    assert push.parse_extra_hosts("") == ()
    assert push.parse_extra_hosts([]) == ()


@pytest.mark.parametrize(
    "entry",
    [
        "push.example:http",
        "push.example:99999",
        "user@push.example",
        "push.example.",
        "https://push.example",
        "push.example/x",
        ":443",
    ],
)
def test_a_malformed_extra_host_is_named_in_the_error(entry):
    with pytest.raises(ValueError) as caught:
        push.parse_extra_hosts(f"ok.example,  {entry} ")
    assert str(caught.value) == f"LANYARD_PUSH_EXTRA_HOSTS: {entry!r} is not host or host:port"


def test_an_extra_host_is_lower_cased_and_never_turned_into_another_name():
    # Lower-casing keeps the name the school wrote; upper-casing would turn "ß" into "SS" and let the server
    # POST to strasse.example, a host nobody named.
    assert push.parse_extra_hosts("Straße.example") == (push.PushHost("straße.example", 443, suffix=False),)


def test_only_loopback_hosts_may_use_plain_http():
    assert push._is_loopback("localhost") is True
    assert push._is_loopback("127.0.0.1") is True
    assert push._is_loopback("127.9.9.9") is True
    assert push._is_loopback("::1") is True
    assert push._is_loopback("10.0.0.1") is False
    assert push._is_loopback("push.localhost.example") is False
    assert push._is_loopback("LOCALHOST.") is False


def test_the_configured_services_are_the_public_ones_then_the_schools():
    services = push.PushServices.from_config({"PUSH_EXTRA_HOSTS": "push.school.example:8443"})
    assert services.hosts[: len(push.DEFAULT_PUSH_HOSTS)] == PUBLIC.hosts
    assert services.hosts[len(push.DEFAULT_PUSH_HOSTS) :] == (push.PushHost("push.school.example", 8443, suffix=False),)
    assert push.PushServices.from_config({}).hosts == PUBLIC.hosts


def test_a_public_service_matches_its_name_and_names_under_it_on_a_dot_boundary():
    fcm = push.PushHost("fcm.googleapis.com")
    assert fcm.matches("fcm.googleapis.com")
    assert fcm.matches("eu.fcm.googleapis.com")
    assert not fcm.matches("evilfcm.googleapis.com")
    assert not fcm.matches("fcm.googleapis.com.evil.example")
    assert not fcm.matches("googleapis.com")
    own = push.PushHost("push.school.example", suffix=False)
    assert own.matches("push.school.example")
    assert not own.matches("a.push.school.example")


def test_finding_a_host_lists_every_service_that_matches():
    school = push.PushHost("web.push.apple.com", 8443, suffix=False)
    services = push.PushServices((*PUBLIC.hosts, school))
    assert services.find("web.push.apple.com") == [push.PushHost("web.push.apple.com"), push.PushHost("push.apple.com"), school]
    assert services.find("evil.example") == []


# Endpoints ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [None, "", 42, b"https://fcm.googleapis.com/x"])
def test_an_endpoint_must_be_a_non_empty_string(endpoint):
    assert _problem(endpoint) == "Send the subscription's endpoint URL."


def test_the_length_limit_is_exactly_1024_characters():
    base = "https://fcm.googleapis.com/"
    assert _problem(base + "a" * (push.MAX_ENDPOINT_LENGTH - len(base))) is None
    assert _problem(base + "a" * (push.MAX_ENDPOINT_LENGTH - len(base) + 1)) == "The endpoint is longer than 1024 characters."


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (FCM + "\\x", "The endpoint must not contain a backslash."),
        (FCM + " x", "The endpoint must not contain spaces or control characters."),
        (FCM + "\x1f", "The endpoint must not contain spaces or control characters."),
        (FCM + "\x7f", "The endpoint must not contain spaces or control characters."),
        (FCM + "\x00", "The endpoint must not contain spaces or control characters."),
        (FCM + "é", "The endpoint must be plain ASCII (a push service's host in its punycode form)."),
        ("https://fcm.googleapis.com:0x1bb/x", "The endpoint's port is not a number from 1 to 65535."),
        ("https://u@fcm.googleapis.com/x", "The endpoint must not carry a user name or password (user@host)."),
        ("https://@fcm.googleapis.com/x", "The endpoint must not carry a user name or password (user@host)."),
        ("https://[::1]/x", "The endpoint must name a push service's host, not an IP address."),
        ("https://fcm.googleapis.com%2e/x", "The endpoint reads differently to different URL parsers, so it is not used."),
        ("https:fcm.googleapis.com/x", "The endpoint reads differently to different URL parsers, so it is not used."),
        (FCM + "#frag", "The endpoint must not have a #fragment."),
        (FCM + "#", "The endpoint must not have a #fragment."),
        ("https:///x", "The endpoint reads differently to different URL parsers, so it is not used."),
        ("https://fcm.googleapis.com./x", "The endpoint's host must not end with a dot or have an empty label."),
        ("https://a..fcm.googleapis.com/x", "The endpoint's host must not end with a dot or have an empty label."),
        ("https://10.0.0.1/x", "The endpoint must name a push service's host, not an IP address."),
        ("https://017700000001/x", "The endpoint must name a push service's host, not an IP address."),
        ("https://fcm.googleapis.0x7f/x", "The endpoint must name a push service's host, not an IP address."),
        ("https://xn--fcm-abc.googleapis.com/x", "The endpoint's host is not a valid internationalised (punycode) name."),
        ("https://-fcm.googleapis.com/x", "The endpoint's host is not a valid internationalised (punycode) name."),
        ("https://localhost/x", "The endpoint's host is not a plain host name."),
        ("https://%20/x", "The endpoint's host is not a valid internationalised (punycode) name."),
        ("https://evil.example/x", "evil.example is not a push service Lanyard sends to."),
        ("https://FCM.googleapis.com/x", PLAIN_FORM),
        ("https://fcm.googleapis.com:443/x", PLAIN_FORM),
        ("https://fcm.googleapis.com?x", PLAIN_FORM),
        ("http://fcm.googleapis.com/x", "The endpoint must use https."),
        ("ftp://fcm.googleapis.com/x", "The endpoint must use https."),
        ("HTTPS://fcm.googleapis.com/x", PLAIN_FORM),
        ("https://fcm.googleapis.com:8443/x", "The endpoint must use port 443, not 8443."),
        ("http://fcm.googleapis.com:443/x", "The endpoint must use https."),
        # No scheme: urllib3 reads the host and port of a scheme-relative URL; the plain form still refuses it.
        ("//fcm.googleapis.com:443/x", PLAIN_FORM),
        # A scheme with no host at all: both parsers agree there is none, and it is refused for that.
        ("mailto:x", "The endpoint has no host."),
        # The HTTP client percent-encodes these host characters before it connects, so it reads another host.
        ("https://a|b.fcm.googleapis.com/x", "The endpoint reads differently to different URL parsers, so it is not used."),
    ],
)
def test_each_endpoint_refusal_says_exactly_what_is_wrong(endpoint, message):
    assert _problem(endpoint) == message


def test_spaces_and_control_characters_stop_at_the_space():
    # "!" (0x21, just above the space) is an ordinary URL character.
    assert _problem(FCM + "!x") is None
    assert _problem(FCM + "\x20") == "The endpoint must not contain spaces or control characters."


def test_a_public_service_is_accepted_and_any_name_under_it():
    assert _problem(FCM) is None
    assert _problem("https://eu.fcm.googleapis.com/x") is None
    assert _problem("https://db5p.notify.windows.com/w/?token=1") is None


def test_the_schools_own_service_is_that_host_and_port_with_plain_http_only_on_loopback():
    services = push.PushServices.from_config({"PUSH_EXTRA_HOSTS": "push.school.example:8443,127.0.0.1:5250,[::1]:5251"})
    assert _problem("https://push.school.example:8443/w", services) is None
    assert _problem("http://127.0.0.1:5250/w", services) is None
    assert _problem("https://127.0.0.1:5250/w", services) is None
    assert _problem("http://[::1]:5251/w", services) == "The endpoint must name a push service's host, not an IP address."
    assert _problem("https://push.school.example/w", services) == "The endpoint must use port 8443, not 443."
    assert _problem("http://push.school.example:8443/w", services) == "The endpoint must use https."
    assert _problem("http://127.0.0.1/w", services) == "The endpoint must use port 5250, not 80."
    assert _problem("http://127.0.0.1:80/w", services) == PLAIN_FORM
    assert _problem("https://127.0.0.2:5250/w", services) == "The endpoint must name a push service's host, not an IP address."


def test_a_school_service_on_the_default_port_is_written_without_it():
    services = push.PushServices.from_config({"PUSH_EXTRA_HOSTS": "push.school.example,localhost:80"})
    assert _problem("https://push.school.example/w", services) is None
    assert _problem("http://localhost/w", services) is None
    assert _problem("https://localhost/w", services) == "The endpoint must use port 80, not 443."


def test_ip_literals_in_every_spelling_a_resolver_accepts():
    for host in ("127.0.0.1", "[::1]", "::1", "2130706433", "0x7f.1", "017.1", "a.b.0x1f", "a.b.12", "0x"):
        assert push._is_ip_literal(host) is True, host
    for host in ("fcm.googleapis.com", "a1.b2", "12.example", "0xg.example", "localhost"):
        assert push._is_ip_literal(host) is False, host


def test_the_http_clients_reading_is_scheme_host_port_and_userinfo():
    assert push._client_reading("HTTPS://FCM.googleapis.com:8443/x") == ("https", "fcm.googleapis.com", 8443, None)
    assert push._client_reading("https://fcm.googleapis.com/x") == ("https", "fcm.googleapis.com", None, None)
    assert push._client_reading("https://u:p@fcm.googleapis.com/x") == ("https", "fcm.googleapis.com", None, "u:p")
    assert push._client_reading("https://fcm.googleapis.com:99999/x") is None
    assert push._client_reading("https://[::1/x") is None
    # No scheme, or no host: the missing part reads as empty, never as something else.
    assert push._client_reading("fcm.googleapis.com:443/x") == ("", "fcm.googleapis.com", 443, None)
    assert push._client_reading("mailto:x") == ("mailto", "", None, None)
    # The client percent-encodes "|" in the host before it connects: two readings, so none is given.
    assert push._client_reading("https://a|b.fcm.googleapis.com/x") is None


# Keys ---------------------------------------------------------------------------------------------------


def test_a_key_is_unpadded_or_correctly_padded_base64url_of_exactly_its_size():
    assert push._key_problem(AUTH, 16) is False
    assert push._key_problem(AUTH + "==", 16) is False
    assert push._key_problem(_b64(bytes(15)), 16) is True
    assert push._key_problem(_b64(bytes(17)), 16) is True
    assert push._key_problem(None, 16) is True
    assert push._key_problem(16, 16) is True
    assert push._key_problem("", 16) is True
    assert push._key_problem(AUTH + "===", 16) is True
    assert push._key_problem("AAAAAAAAAAAAAAAAAAAAAB", 16) is True  # stray bits: not the canonical spelling
    assert push._key_problem("AAAAAAAAAAAAAAAAAAAAA+", 16) is True
    assert push._key_problem("A" * 5, 3) is True  # not base64 of any length (decoding fails)


def test_a_key_longer_than_four_characters_a_byte_is_refused_before_decoding():
    # 65 bytes padded with '=' signs that the pattern allows: at 4 * 65 characters the length check stops it.
    long_padded = P256DH + "=="
    assert len(long_padded) <= 4 * 65 and push._key_problem(long_padded, 65) is False
    assert push._key_problem("A" * (4 * 16 + 1), 16) is True
    assert push._key_problem("A" * (4 * 16), 16) is True  # 48 bytes: within the length check, wrong size


def test_b64url_decoding_adds_the_padding_it_needs():
    assert push._b64url_decode("YQ") == b"a"
    assert push._b64url_decode("YWI") == b"ab"
    assert push._b64url_decode("YWJj") == b"abc"
    assert push._b64url_decode("-_8") == b"\xfb\xff"
    assert push._b64url_decode("YWJjZGVmZw") == b"abcdefg"  # 10 characters: two '=' needed


def test_a_good_subscription_has_no_errors():
    assert push.validate_subscription(FCM, P256DH, AUTH, PUBLIC) == {}


def test_each_bad_part_of_a_subscription_is_named_with_its_message():
    assert push.validate_subscription("https://evil.example/x", 1, None, PUBLIC) == {
        "endpoint": ["evil.example is not a push service Lanyard sends to."],
        "p256dh": ["Send the browser's P-256 public key (keys.p256dh): base64url of a 65-byte uncompressed point."],
        "auth": ["Send the browser's auth secret (keys.auth): base64url of 16 bytes."],
    }


@pytest.mark.parametrize(
    "p256dh",
    [
        _b64(b"\x04" + bytes(64)),  # 65 bytes, not a point on the curve
        _b64(bytes(65)),
        _b64(
            ec.derive_private_key(7, ec.SECP256R1())
            .public_key()
            .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        ),
        _b64(b"\x03" + _point()[1:]),  # the uncompressed point's bytes with a compressed point's first byte
        _b64(_point()[:64]),
    ],
)
def test_the_public_key_must_be_an_uncompressed_p256_point(p256dh):
    assert set(push.validate_subscription(FCM, p256dh, AUTH, PUBLIC)) == {"p256dh"}


def test_a_padded_public_key_is_decoded_without_its_padding():
    assert push.validate_subscription(FCM, P256DH + "=", AUTH + "==", PUBLIC) == {}


# Whose browser a subscription is --------------------------------------------------------------------------


def _subscribe(person, endpoint=FCM, p256dh=P256DH, auth=AUTH, user_agent="Firefox"):
    with write_intent():
        found = push.subscribe(
            db.session, person, endpoint=endpoint, p256dh=p256dh, auth=auth, user_agent=user_agent, services=PUBLIC
        )
        db.session.commit()
    return found


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def test_a_new_subscription_is_the_subscribers_and_audited_with_the_push_service(app):
    person = make_user()
    subscription, created = _subscribe(person, user_agent="U" * 300)
    assert created is True
    stored = db.session.get(PushSubscription, subscription.id)
    assert (stored.user_id, stored.endpoint, stored.p256dh, stored.auth, stored.user_agent) == (
        person.id,
        FCM,
        P256DH,
        AUTH,
        "U" * 255,
    )
    [event] = _events("push.subscribed")
    assert (event.actor_id, event.subject_type, event.subject_id) == (person.id, "push_subscription", str(stored.id))
    assert json.loads(event.details) == {"push_service": "fcm.googleapis.com"}


def test_a_bad_subscription_is_refused_with_every_error_and_nothing_stored(app):
    person = make_user()
    with write_intent(), pytest.raises(ValidationFailed) as caught:
        push.subscribe(
            db.session, person, endpoint="https://evil.example/x", p256dh="x", auth=AUTH, user_agent="", services=PUBLIC
        )
    db.session.rollback()
    assert str(caught.value) == "The browser's subscription is not usable."
    assert set(caught.value.field_errors) == {"endpoint", "p256dh"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PushSubscription)) == 0


def test_the_same_browser_again_with_the_same_keys_changes_nothing(app):
    person = make_user()
    first, _ = _subscribe(person)
    again, created = _subscribe(person, user_agent="Other")
    assert (again.id, created) == (first.id, False)
    assert db.session.get(PushSubscription, first.id).user_agent == "Firefox"
    assert _events("push.subscription_refreshed") == []


def test_the_same_browser_signed_in_as_someone_else_follows_its_new_owner(app):
    before, after = make_user(), make_user()
    subscription, _ = _subscribe(before)
    with write_intent():
        db.session.get(PushSubscription, subscription.id).failure_count = 3
        db.session.commit()
    new_key = _b64(_point(2))
    again, created = _subscribe(after, p256dh=new_key, user_agent="V" * 300)
    assert (again.id, created) == (subscription.id, False)
    stored = db.session.get(PushSubscription, subscription.id)
    assert (stored.user_id, stored.p256dh, stored.auth, stored.user_agent, stored.failure_count) == (
        after.id,
        new_key,
        AUTH,
        "V" * 255,
        0,
    )
    [event] = _events("push.subscription_refreshed")
    assert (event.actor_id, event.subject_type, event.subject_id) == (after.id, "push_subscription", str(stored.id))
    assert json.loads(event.details) == {"push_service": "fcm.googleapis.com", "changed_owner": True}


@pytest.mark.parametrize("field", ["p256dh", "auth"])
def test_new_keys_from_the_same_person_refresh_without_changing_owner(app, field):
    person = make_user()
    subscription, _ = _subscribe(person)
    new = {"p256dh": _b64(_point(3)), "auth": _b64(bytes(range(1, 17)))}[field]
    _subscribe(person, **{field: new})
    stored = db.session.get(PushSubscription, subscription.id)
    assert getattr(stored, field) == new and stored.user_id == person.id
    [event] = _events("push.subscription_refreshed")
    assert json.loads(event.details) == {"push_service": "fcm.googleapis.com", "changed_owner": False}


def test_a_subscription_is_found_only_for_its_owner(app):
    owner, other = make_user(), make_user()
    subscription, _ = _subscribe(owner)
    assert push.owned_subscription(db.session, owner, subscription.id).id == subscription.id
    for person, subscription_id in ((other, subscription.id), (owner, subscription.id + 1000)):
        with pytest.raises(NotFound) as caught:
            push.owned_subscription(db.session, person, subscription_id)
        assert str(caught.value) == "There is no such browser in your notifications."


def test_only_the_owner_can_unsubscribe_and_it_is_audited(app):
    owner, other = make_user(), make_user()
    subscription, _ = _subscribe(owner)
    with write_intent(), pytest.raises(NotFound) as caught:
        push.unsubscribe(db.session, other, db.session.get(PushSubscription, subscription.id))
    db.session.rollback()
    assert str(caught.value) == "There is no such browser in your notifications."
    assert db.session.get(PushSubscription, subscription.id) is not None and _events("push.unsubscribed") == []
    subscription_id = subscription.id
    with write_intent():
        push.unsubscribe(db.session, owner, db.session.get(PushSubscription, subscription_id))
        db.session.commit()
    assert db.session.get(PushSubscription, subscription_id) is None
    [event] = _events("push.unsubscribed")
    assert (event.actor_id, event.subject_type, event.subject_id) == (owner.id, "push_subscription", str(subscription_id))
    assert json.loads(event.details) == {"push_service": "fcm.googleapis.com"}


def test_a_push_never_carries_a_full_imei():
    assert push.safe_text("IMEI 490154203237518 and 1234567890123") == "IMEI …7518 and 1234567890123"
    assert push.safe_text("12345678901234") == "…1234"


def test_a_stored_endpoint_without_a_host_is_forgotten_with_an_empty_push_service(app):
    # A row kept from before the endpoint rules (or written by hand): unsubscribing still works and says so.
    owner = make_user()
    with write_intent():
        row = PushSubscription(user_id=owner.id, endpoint="mailto:push@school.example", p256dh=P256DH, auth=AUTH)
        db.session.add(row)
        db.session.commit()
        push.unsubscribe(db.session, owner, row)
        db.session.commit()
    [event] = _events("push.unsubscribed")
    assert json.loads(event.details) == {"push_service": ""}
