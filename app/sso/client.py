"""Talking to an OpenID provider: discovery, its signing keys, the code exchange and the ID token check.

Authlib does the OAuth 2.0 parts (the authorisation URL with PKCE, the token request) and the claims
rules of OpenID Connect Core (``authlib.oidc.core.CodeIDToken``); the signature is checked with
joserfc, which Authlib itself uses, against the provider's published keys. Only asymmetric
algorithms are accepted, so a token "signed" with the client secret or with ``none`` never passes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, InvalidKeyIdError, JoseError, MissingClaimError
from joserfc.jwk import KeySet, KeySetSerialization

from app.sso.providers import SCOPES, Provider

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
METADATA_SECONDS = 3600
LEEWAY_SECONDS = 60
_lock = threading.Lock()
_metadata: dict[str, tuple[float, dict]] = {}
_keys: dict[str, tuple[float, dict]] = {}


class ProviderFailed(Exception):
    """The provider could not be reached or answered something unusable; ``reason`` is for the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenRejected(ProviderFailed):
    """The ID token failed a check (signature, issuer, audience, nonce, expiry, a missing claim)."""


@dataclass(frozen=True)
class Exchange:
    claims: dict


def _get_json(url: str, timeout: float) -> dict:
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as error:
        raise ProviderFailed("provider_unreachable") from error
    if not isinstance(data, dict):
        raise ProviderFailed("provider_unreachable")
    return data


def metadata(provider: Provider, timeout: float) -> dict:
    """The provider's discovery document (kept for an hour); its issuer must be the one configured."""
    with _lock:
        cached = _metadata.get(provider.metadata_url)
    if cached and time.monotonic() - cached[0] < METADATA_SECONDS:
        return cached[1]
    data = _get_json(provider.metadata_url, timeout)
    if data.get("issuer") not in provider.accepted_issuers:
        raise ProviderFailed("metadata_issuer_mismatch")
    if not all(isinstance(data.get(key), str) for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")):
        raise ProviderFailed("metadata_incomplete")
    with _lock:
        _metadata[provider.metadata_url] = (time.monotonic(), data)
    return data


def _key_set(jwks_uri: str, timeout: float, *, refresh: bool) -> KeySet:
    with _lock:
        cached = _keys.get(jwks_uri)
    # A key we have not seen means the provider rolled its keys: fetch again, but at most once a minute.
    if cached is None or (refresh and time.monotonic() - cached[0] > 60) or time.monotonic() - cached[0] > METADATA_SECONDS:
        data = _get_json(jwks_uri, timeout)
        with _lock:
            _keys[jwks_uri] = cached = (time.monotonic(), data)
    try:
        return KeySet.import_key_set(cast(KeySetSerialization, cached[1]))
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise ProviderFailed("provider_keys_unusable") from error


def forget_cached(provider: Provider | None = None) -> None:
    """Drop cached discovery documents and keys (tests start each provider afresh)."""
    with _lock:
        if provider is None:
            _metadata.clear()
            _keys.clear()
        else:
            found = _metadata.pop(provider.metadata_url, None)
            if found:
                _keys.pop(found[1].get("jwks_uri", ""), None)


def authorisation_origin(provider: Provider) -> str:
    """The origin of the provider's sign-in page: from its discovery document when known, else its issuer's."""
    with _lock:
        cached = _metadata.get(provider.metadata_url)
    parts = urlsplit(cached[1]["authorization_endpoint"] if cached else provider.issuer)
    return f"{parts.scheme}://{parts.netloc}"


def _oauth_session(provider: Provider, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        provider.client_id,
        provider.client_secret,
        scope=SCOPES,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )


def authorisation_url(
    provider: Provider, *, redirect_uri: str, state: str, nonce: str, code_verifier: str, timeout: float
) -> str:
    """Where to send the browser: the provider's sign-in page, with state, nonce and a PKCE challenge."""
    endpoint = metadata(provider, timeout)["authorization_endpoint"]
    extra = {"hd": provider.domain} if provider.domain else {}
    with _oauth_session(provider, redirect_uri) as oauth:
        url, _state = oauth.create_authorization_url(endpoint, state=state, nonce=nonce, code_verifier=code_verifier, **extra)
    return url


def exchange_code(
    provider: Provider, *, redirect_uri: str, code: str, code_verifier: str, nonce: str, timeout: float
) -> Exchange:
    """Swap the code for tokens and return the ID token's checked claims."""
    found = metadata(provider, timeout)
    with _oauth_session(provider, redirect_uri) as oauth:
        try:
            token = oauth.fetch_token(found["token_endpoint"], code=code, code_verifier=code_verifier, timeout=timeout)
        except (requests.RequestException, ValueError) as error:
            raise ProviderFailed("code_exchange_failed") from error
        except Exception as error:  # noqa: BLE001  (Authlib raises its OAuthError family for a refused code)
            raise ProviderFailed("code_exchange_refused") from error
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(id_token, str):
        raise ProviderFailed("no_id_token")
    return Exchange(check_id_token(provider, found, id_token, nonce=nonce, timeout=timeout))


def check_id_token(
    provider: Provider, found_metadata: dict, id_token: str, *, nonce: str, timeout: float, now: int | None = None
) -> dict:
    """Verify the signature with the provider's keys, then issuer, audience, expiry and nonce; return the claims."""
    offered = found_metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in offered if alg in ASYMMETRIC] or ["RS256"]
    keys = _key_set(found_metadata["jwks_uri"], timeout, refresh=False)
    try:
        try:
            decoded = jwt.decode(id_token, keys, algorithms=algorithms)
        except InvalidKeyIdError:
            decoded = jwt.decode(id_token, _key_set(found_metadata["jwks_uri"], timeout, refresh=True), algorithms=algorithms)
    except (JoseError, ValueError, TypeError) as error:
        raise TokenRejected("id_token_signature") from error
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "values": list(provider.accepted_issuers)},
            "aud": {"essential": True, "value": provider.client_id},
        },
        {"nonce": nonce, "client_id": provider.client_id},
    )
    try:
        claims.validate(now=now if now is not None else int(time.time()), leeway=LEEWAY_SECONDS)
    except ExpiredTokenError as error:
        raise TokenRejected("id_token_expired") from error
    except (InvalidClaimError, MissingClaimError) as error:
        raise TokenRejected(f"id_token_{getattr(error, 'claim', 'claim')}") from error
    except JoseError as error:
        raise TokenRejected("id_token_invalid") from error
    return dict(claims)
