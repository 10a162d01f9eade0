"""A local stand-in for a browser vendor's push service, for tests and the benchmark.

It listens on 127.0.0.1 (an ephemeral port, in a thread) and does what FCM or Mozilla autopush do
with a message: it checks the VAPID ``Authorization: vapid t=<JWT>, k=<key>`` header (ES256 signature
against the given public key, ``aud`` = this service's origin, ``exp`` in the future and within 24 h,
``sub`` = the expected contact) and then, standing in for the browser, decrypts the aes128gcm body
with the subscription's private key and auth secret. Tests script the answer per endpoint: 201, 404,
410, 500, ``"hang"`` (answer nothing until the client gives up) or ``("delay", seconds)``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What a browser holds for one subscription: the endpoint, its ECDH key pair and auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def to_json(self) -> dict:
        """As the browser's PushSubscription.toJSON() gives it."""
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass
class Delivery:
    endpoint: str
    headers: dict[str, str]  # names lower-cased
    claims: dict
    message: dict
    received_at: float  # time.monotonic() when the request arrived, before verifying and decrypting


@dataclass
class PushService:
    expected_sub: str
    expected_key: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    requests_seen: int = 0
    hang_seconds: float = 5.0
    default_delay: float = 0.0
    # Called with each verified, decrypted Delivery as it arrives (the benchmark times arrivals with it).
    on_delivery: Callable[[Delivery], None] | None = None
    # Answer 201 as soon as a message arrives and check it afterwards (the benchmark: the sender is not
    # held up by this test service's own Python crypto; a message that fails the checks is a refusal).
    answer_first: bool = False

    def __post_init__(self) -> None:
        self._subscriptions: dict[str, BrowserSubscription] = {}
        self._scripts: dict[str, list] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.arrived = threading.Condition(self._lock)
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                service._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="push-service", daemon=True)
        self._thread.start()

    # What tests call
    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: what LANYARD_PUSH_EXTRA_HOSTS (PUSH_EXTRA_HOSTS) names to let Lanyard send here."""
        return self.origin.split("://", 1)[1]

    def new_subscription(self) -> BrowserSubscription:
        subscription = BrowserSubscription(
            endpoint=f"{self.origin}/push/{uuid.uuid4().hex}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=os.urandom(16),
        )
        with self._lock:
            self._subscriptions[subscription.endpoint] = subscription
        return subscription

    def script(self, endpoint: str, answers: list) -> None:
        """Answer the next requests to ``endpoint`` with ``answers`` in turn, then 201."""
        with self._lock:
            self._scripts[endpoint] = list(answers)

    def messages(self) -> list[dict]:
        with self._lock:
            return [d.message for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.deliveries) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.arrived.wait(remaining)
            return list(self.deliveries)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    # The push service's side
    def _verify_vapid(self, authorization: str, endpoint: str) -> dict:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise PermissionError("Authorization is not a vapid header")
        parts = dict(part.strip().split("=", 1) for part in params.split(","))
        token, key = parts["t"], parts["k"]
        if self.expected_key is not None and key != self.expected_key:
            raise PermissionError("signed with a key other than the application server key")
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        if header.get("alg") != "ES256":
            raise PermissionError("JWT is not ES256")
        signature = b64url_decode(signature_b64)
        if len(signature) != 64:
            raise PermissionError("ES256 signature is not 64 bytes")
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        try:
            public_key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as error:
            raise PermissionError("VAPID signature does not verify") from error
        claims = json.loads(b64url_decode(claims_b64))
        now = time.time()
        if claims.get("aud") != self.origin:
            raise PermissionError(f"aud {claims.get('aud')!r} is not {self.origin!r}")
        if not now < int(claims.get("exp", 0)) <= now + 24 * 3600:
            raise PermissionError("exp is not in the next 24 hours")
        if claims.get("sub") != self.expected_sub:
            raise PermissionError(f"sub {claims.get('sub')!r} is not {self.expected_sub!r}")
        return claims

    def _answer(self, request: BaseHTTPRequestHandler, status: int, body: bytes = b"") -> None:
        request.send_response(status)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _read_message(self, request: BaseHTTPRequestHandler, body: bytes, endpoint: str, subscription) -> tuple[dict, dict]:
        """Check the VAPID signature and the headers and decrypt the body, as a real push service does."""
        claims = self._verify_vapid(request.headers.get("Authorization", ""), endpoint)
        if request.headers.get("Content-Encoding") != "aes128gcm":
            raise PermissionError("body is not aes128gcm")
        if not request.headers.get("TTL", "").isdigit():
            raise PermissionError("no TTL header")
        plain = http_ece.decrypt(
            body, private_key=subscription.private_key, auth_secret=subscription.auth_secret, version="aes128gcm"
        )
        return claims, json.loads(plain)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived_at = time.monotonic()
        length = int(request.headers.get("Content-Length", "0"))
        body = request.rfile.read(length)
        endpoint = self.origin + request.path
        with self._lock:
            self.requests_seen += 1
            subscription = self._subscriptions.get(endpoint)
            script = self._scripts.get(endpoint)
            answer = script.pop(0) if script else 201
        if subscription is None:
            self._answer(request, 404)
            return
        if answer == "hang":
            self._release.wait(self.hang_seconds)
            return
        if isinstance(answer, tuple) and answer[0] == "delay":
            time.sleep(answer[1])
            answer = 201
        elif self.default_delay:
            time.sleep(self.default_delay)
        if answer != 201:
            self._answer(request, int(answer))
            return
        if self.answer_first:
            self._answer(request, 201)
        try:
            claims, message = self._read_message(request, body, endpoint, subscription)
        except Exception as error:  # any failure to verify or decrypt is a refusal the test sees
            with self._lock:
                self.refusals.append(str(error))
            if not self.answer_first:
                self._answer(request, 403, str(error).encode())
            return
        delivery = Delivery(endpoint, {k.lower(): v for k, v in request.headers.items()}, claims, message, arrived_at)
        with self.arrived:
            self.deliveries.append(delivery)
            self.arrived.notify_all()
        if not self.answer_first:
            self._answer(request, 201)
        if self.on_delivery is not None:
            self.on_delivery(delivery)
