"""Sign-in with Microsoft or Google: single-use sign-in states, matching a person, and the school's rules.

A person keeps one account whichever provider they use (DESIGN section 12): the first sign-in through a
provider matches the account by verified email and links the identity (issuer + subject); later
sign-ins go by the subject alone, so a changed email address does not lose the account. No account is
made unless the admin named the school's email domain for "create staff accounts on first sign-in".

Every sign-in and every refusal is audited (``auth.sso_signed_in``, ``auth.sso_refused`` with the
reason); tokens and codes never reach the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.database import rows_changed
from app.models import Identity, Passkey, Role, SignInProvider, SignInState, User
from app.services import accounts
from app.services.audit import record_audit_event
from app.services.errors import ValidationFailed
from app.services.settings import define_setting, get_setting, set_setting

STATE_LIFETIME = timedelta(minutes=10)
KEEP_USED_STATES = timedelta(days=1)

PASSWORDS_OFF = define_setting(
    "sso.required", False, "Passwords off: everyone signs in with Microsoft or Google (passkeys still work)"
)
CREATE_ACCOUNTS_DOMAIN = define_setting(
    "sso.create_accounts_domain", "", "Create staff accounts on first sign-in for this email domain (blank: none)"
)

# What a refused person is told, by the audited reason. None of it says whether an account exists.
REFUSALS = {
    "provider_error": "The sign-in was cancelled or refused at the provider.",
    "state_missing": "That sign-in link is not complete. Start again from the sign-in page.",
    "state_unknown": "That sign-in had expired or was already used. Start again from the sign-in page.",
    "state_replayed": "That sign-in had expired or was already used. Start again from the sign-in page.",
    "state_expired": "That sign-in had expired or was already used. Start again from the sign-in page.",
    "state_other_browser": "That sign-in was started in another browser. Start again from the sign-in page here.",
    "wrong_tenant": "That account is not one of the school's. Sign in with your school account.",
    "wrong_domain": "That account is not one of the school's. Sign in with your school account.",
    "email_missing": "Your account did not share a verified email address, so we cannot tell who you are. Ask the school's IT.",
    "email_unverified": "Your account's email address is not verified, so we cannot tell who you are. Ask the school's IT.",
    "no_account": "There is no Lanyard account for you yet. Ask the school's Lanyard admin to invite you.",
    "deactivated": "Your Lanyard account is closed. Ask the school office if you think this is wrong.",
}
PROVIDER_TROUBLE = "Signing in with {label} did not work this time. Try again, or use another way to sign in."


@dataclass(frozen=True)
class StartedSignIn:
    state: str
    nonce: str
    code_verifier: str


@dataclass(frozen=True)
class ClaimedState:
    nonce: str
    code_verifier: str
    next_url: str


class SignInRefused(Exception):
    """A sign-in refused for ``reason`` (audited); ``user`` when the refusal concerns a known person."""

    def __init__(self, reason: str, user: User | None = None, email_domain: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.user = user
        self.email_domain = email_domain

    @property
    def message(self) -> str:
        return REFUSALS.get(self.reason, PROVIDER_TROUBLE)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def start_sign_in(session: Session, provider: SignInProvider, next_url: str) -> StartedSignIn:
    """Make the state, nonce and PKCE verifier for one trip to the provider; keep them to check its return."""
    started = StartedSignIn(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64))
    session.add(
        SignInState(
            state_hash=_hash(started.state),
            provider=provider.value,
            nonce=started.nonce,
            code_verifier=started.code_verifier,
            next_url=next_url[:500],
            expires_at=utcnow() + STATE_LIFETIME,
        )
    )
    session.flush()
    return started


def claim_state(session: Session, provider: SignInProvider, state: str, browser_state: str | None) -> ClaimedState:
    """Use a returned state once: it must be ours, unused, in date, for this provider and this browser."""
    if not state:
        raise SignInRefused("state_missing")
    row = session.scalar(sa.select(SignInState).where(SignInState.state_hash == _hash(state)).with_for_update())
    if row is None or row.provider != provider.value:
        raise SignInRefused("state_unknown")
    if row.used_at is not None:
        raise SignInRefused("state_replayed")
    row.used_at = utcnow()
    session.flush()
    if row.expires_at <= row.used_at:
        raise SignInRefused("state_expired")
    if not browser_state or not secrets.compare_digest(_hash(browser_state), row.state_hash):
        # Someone else's sign-in landing in this browser (login CSRF): the state is spent, nobody signs in.
        raise SignInRefused("state_other_browser")
    return ClaimedState(row.nonce, row.code_verifier, row.next_url)


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def verified_email(provider, claims: dict) -> str:
    """The email address the provider vouches for, once the account is shown to be the school's.

    Google: the Workspace domain (``hd``) must be the school's and ``email_verified`` true.
    Microsoft: the tenant (``tid``) must be the school's, and the email's domain verified by its owner:
    ``email_verified`` when sent, else Entra's optional ``xms_edov`` claim (add the optional claims
    ``email`` and ``xms_edov`` to the app registration). ``preferred_username`` is never used: it is
    mutable and not an email address Microsoft vouches for.
    """
    claimed = claims.get("email")
    email = accounts.normalise_email(claimed if isinstance(claimed, str) else "")
    domain = email.rpartition("@")[2]
    if provider.name is SignInProvider.MICROSOFT:
        if str(claims.get("tid", "")).lower() != provider.tenant:
            raise SignInRefused("wrong_tenant", email_domain=domain)
        verified = _truthy(claims.get("email_verified")) or _truthy(claims.get("xms_edov"))
    else:
        if str(claims.get("hd", "")).lower() != provider.domain:
            raise SignInRefused("wrong_domain", email_domain=domain)
        verified = _truthy(claims.get("email_verified"))
    if "@" not in email:
        raise SignInRefused("email_missing")
    if not verified:
        raise SignInRefused("email_unverified", email_domain=domain)
    return email


def _display_name(claims: dict, email: str) -> str:
    name = claims.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()[:120]
    return email.partition("@")[0][:120]


def sign_in_with_claims(session: Session, provider, claims: dict, *, ip: str, user_agent: str) -> tuple[User, str]:
    """Find (or, when the school allows, create) the person behind checked ID token claims and start a session.

    Returns the person and the new session id; raises ``SignInRefused`` (the caller audits it).
    """
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    identity = session.scalar(sa.select(Identity).where(Identity.issuer == issuer, Identity.subject == subject).with_for_update())
    if identity is not None:
        user = session.get(User, identity.user_id)
        how = "subject"
    else:
        email = verified_email(provider, claims)
        domain = email.rpartition("@")[2]
        user = accounts.find_user_by_email(session, email)
        how = "email"
        if user is None:
            allowed = (get_setting(session, CREATE_ACCOUNTS_DOMAIN.key) or "").strip().lower()
            if not allowed or domain != allowed:
                raise SignInRefused("no_account", email_domain=domain)
            user = accounts.create_user(session, None, email=email, display_name=_display_name(claims, email), roles={Role.STAFF})
            how = "created"
        if not user.is_active_account:
            raise SignInRefused("deactivated", user=user, email_domain=domain)
        identity = Identity(provider=provider.name.value, issuer=issuer, subject=subject, user_id=user.id)
        session.add(identity)
        session.flush()
        record_audit_event(
            session,
            user,
            "auth.sso_identity_linked",
            "user",
            user.id,
            {"provider": provider.name.value, "identity_id": identity.id},
        )
    if user is None or not user.is_active_account:
        raise SignInRefused("deactivated", user=user)
    identity.last_used_at = utcnow()
    record_audit_event(session, user, "auth.sso_signed_in", "user", user.id, {"provider": provider.name.value, "matched_by": how})
    return user, accounts.start_session(session, user, ip=ip, user_agent=user_agent, method=provider.name.value)


def record_refusal(session: Session, provider_name: str, reason: str, user: User | None = None, email_domain: str = "") -> None:
    """Audit a refused sign-in: the provider, the reason and at most the email's domain."""
    details = {"provider": provider_name, "reason": reason}
    if email_domain:
        details["email_domain"] = email_domain[:100]
    record_audit_event(session, user, "auth.sso_refused", "user", user.id if user else "", details)


def record_password_refusal(session: Session, email: str) -> None:
    """Audit a password sign-in refused because passwords are off (the password is never checked)."""
    user = accounts.find_user_by_email(session, email)
    record_audit_event(session, user, "auth.sign_in_failed", "user", user.id if user else "", {"reason": "passwords_off"})


# The school's rules -----------------------------------------------------------------------------


def passwords_off(session: Session, providers: dict) -> bool:
    """Whether passwords are refused now. With no provider configured they work whatever the setting says,
    so a provider removed from the server's configuration can never lock everyone out."""
    return bool(providers) and bool(get_setting(session, PASSWORDS_OFF.key))


def identities_of(session: Session, user: User) -> list[Identity]:
    return list(session.scalars(sa.select(Identity).where(Identity.user_id == user.id).order_by(Identity.id)))


def save_sign_in_rules(session: Session, actor: User, providers: dict, *, passwords_off_wanted: bool, create_domain: str) -> int:
    """Change the two SSO settings, refusing anything that could lock everyone out. Returns how many changed."""
    domain = create_domain.strip().lower().lstrip("@")
    errors: dict[str, list[str]] = {}
    if domain and ("." not in domain or len(domain) > 200 or any(c in domain for c in " @/:")):
        errors["create_domain"] = ["Enter the school's email domain, like school.sch.uk, or leave it blank."]
    if passwords_off_wanted and not get_setting(session, PASSWORDS_OFF.key):
        if not providers:
            errors["passwords_off"] = [
                "Set up sign-in with Microsoft or Google on the server first: with neither, nobody could sign in."
            ]
        elif (
            not identities_of(session, actor)
            and session.scalar(sa.select(sa.func.count()).where(Passkey.user_id == actor.id)) == 0
        ):
            errors["passwords_off"] = [
                "Sign in with Microsoft or Google yourself first (or add a passkey), so you cannot be locked out."
            ]
    if errors:
        raise ValidationFailed("Some settings need correcting.", errors)
    changed = 0
    for key, value in ((PASSWORDS_OFF.key, passwords_off_wanted), (CREATE_ACCOUNTS_DOMAIN.key, domain)):
        if get_setting(session, key) != value:
            set_setting(session, actor, key, value)
            changed += 1
    return changed


def purge_sign_in_states(session: Session, now: datetime) -> int:
    """Forget sign-in states a day after they ended (a timed job; safe to run any number of times)."""
    result = session.execute(sa.delete(SignInState).where(SignInState.expires_at < now - KEEP_USED_STATES))
    return rows_changed(result)


def linked_counts(session: Session) -> dict[str, int]:
    """How many accounts are linked to each sign-in provider, by provider name."""
    return dict(session.execute(sa.select(Identity.provider, sa.func.count()).group_by(Identity.provider)).tuples().all())
