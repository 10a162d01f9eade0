"""Passkeys (WebAuthn): register from the account page, sign in without a password.

The relying party ID and origin come from the configured base URL, never from the request, so a
page served under another Host header cannot ask for this school's passkeys.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
import webauthn
from sqlalchemy.orm import Session
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.clock import utcnow
from app.models import Passkey, User
from app.services.audit import record_audit_event
from app.services.errors import NotFound, ValidationFailed


class PasskeyRefused(ValidationFailed):
    """A failed passkey sign-in; the audited failure is kept."""

    keep_changes = True


@dataclass(frozen=True)
class RelyingParty:
    rp_id: str
    origin: str
    name: str

    @classmethod
    def from_base_url(cls, base_url: str, name: str) -> RelyingParty:
        parts = urlsplit(base_url)
        return cls(rp_id=parts.hostname or "localhost", origin=f"{parts.scheme}://{parts.netloc}", name=name)


def _user_handle(user: User) -> bytes:
    return f"lanyard-user-{user.id}".encode()


def passkeys_of(session: Session, user: User) -> list[Passkey]:
    return list(session.scalars(sa.select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.id)))


def registration_options(session: Session, rp: RelyingParty, user: User) -> tuple[str, bytes]:
    """Options for navigator.credentials.create (JSON) and the challenge to keep in the session."""
    challenge = secrets.token_bytes(32)
    options = webauthn.generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_name=user.email,
        user_id=_user_handle(user),
        user_display_name=user.display_name,
        challenge=challenge,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=webauthn.base64url_to_bytes(p.credential_id)) for p in passkeys_of(session, user)
        ],
    )
    return webauthn.options_to_json(options), challenge


def register_passkey(session: Session, rp: RelyingParty, user: User, credential: dict, challenge: bytes, name: str) -> Passkey:
    name = (name or "").strip()[:80] or "Passkey"
    try:
        verified = webauthn.verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.rp_id, expected_origin=rp.origin
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise ValidationFailed("The passkey could not be checked; try again.", {"credential": [str(error)[:200]]}) from error
    credential_id = bytes_to_base64url(verified.credential_id)
    if session.scalar(sa.select(Passkey.id).where(Passkey.credential_id == credential_id)) is not None:
        raise ValidationFailed("This passkey is already registered.", {"credential": ["Already registered."]})
    transports = credential.get("response", {}).get("transports") or []
    passkey = Passkey(
        user_id=user.id,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=name,
        transports=",".join(str(t) for t in transports)[:120],
    )
    session.add(passkey)
    session.flush()
    record_audit_event(session, user, "passkey.registered", "passkey", passkey.id, {"name": name})
    return passkey


def owned_passkey(session: Session, user: User, passkey_id: int) -> Passkey:
    """The person's own passkey; another person's is answered as missing."""
    passkey = session.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != user.id:
        raise NotFound("There is no such passkey.")
    return passkey


def remove_passkey(session, user: User, passkey_id: int) -> None:
    passkey = owned_passkey(session, user, passkey_id)
    session.delete(passkey)
    record_audit_event(session, user, "passkey.removed", "passkey", passkey_id)


def authentication_options(rp: RelyingParty) -> tuple[str, bytes]:
    """Options for a discoverable-credential sign-in: the phone offers the passkeys it holds."""
    challenge = secrets.token_bytes(32)
    options = webauthn.generate_authentication_options(
        rp_id=rp.rp_id, challenge=challenge, user_verification=UserVerificationRequirement.PREFERRED
    )
    return webauthn.options_to_json(options), challenge


def authenticate(session: Session, rp: RelyingParty, credential: dict, challenge: bytes) -> User:
    """Check an assertion and return its active owner; failures are audited and say nothing more."""
    raw_id = credential.get("id") if isinstance(credential, dict) else None
    passkey = session.scalar(sa.select(Passkey).where(Passkey.credential_id == raw_id)) if isinstance(raw_id, str) else None
    user = session.get(User, passkey.user_id) if passkey else None
    try:
        if passkey is None or user is None or not user.is_active_account:
            raise InvalidAuthenticationResponse("unknown or inactive credential")
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        record_audit_event(session, user, "auth.passkey_failed", "user", user.id if user else "")
        raise PasskeyRefused("That passkey could not sign you in.", {"credential": ["Not accepted."]}) from error
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = utcnow()
    return user
