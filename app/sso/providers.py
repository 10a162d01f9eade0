"""The OpenID Connect providers a school may sign in with, configured from the environment.

Microsoft (Entra ID) is single-tenant: the school's Directory (tenant) ID must be a GUID, and every ID
token must carry that ``tid``. Google is limited to one Workspace domain (the ``hd`` claim). A provider
with a missing value is simply not offered (no button); ``make run`` needs none of them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from app.models import SignInProvider

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DOMAIN = re.compile(r"^(?=.{3,253}$)[a-z0-9-]+(\.[a-z0-9-]+)+$")
MICROSOFT_ISSUER = "https://login.microsoftonline.com/{tenant}/v2.0"
GOOGLE_ISSUER = "https://accounts.google.com"
SCOPES = "openid email profile"


@dataclass(frozen=True)
class Provider:
    """One configured provider: who may sign in through it and where to find it."""

    name: SignInProvider
    client_id: str
    client_secret: str
    issuer: str
    # Microsoft: the tenant (tid) that may sign in. Google: the Workspace domain (hd).
    tenant: str = ""
    domain: str = ""

    @property
    def label(self) -> str:
        return self.name.label

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def accepted_issuers(self) -> tuple[str, ...]:
        # Google's ID tokens may name the issuer with or without the scheme (its documentation says so).
        if self.name is SignInProvider.GOOGLE and self.issuer == GOOGLE_ISSUER:
            return (GOOGLE_ISSUER, "accounts.google.com")
        return (self.issuer,)


def oidc_settings_from_environment() -> dict:
    """The LANYARD_OIDC_* variables as Flask config keys (blank when unset)."""
    names = [
        "MICROSOFT_TENANT",
        "MICROSOFT_CLIENT_ID",
        "MICROSOFT_CLIENT_SECRET",
        "MICROSOFT_ISSUER",
        "GOOGLE_CLIENT_ID",
        "GOOGLE_CLIENT_SECRET",
        "GOOGLE_DOMAIN",
        "GOOGLE_ISSUER",
    ]
    settings: dict[str, object] = {f"OIDC_{name}": os.environ.get(f"LANYARD_OIDC_{name}", "").strip() for name in names}
    settings["OIDC_TIMEOUT_SECONDS"] = float(os.environ.get("LANYARD_OIDC_TIMEOUT_SECONDS", "10"))
    return settings


def configured_providers(config) -> dict[str, Provider]:
    """The providers whose every value is set (and sane), by name, Microsoft first."""
    found: dict[str, Provider] = {}
    tenant = str(config.get("OIDC_MICROSOFT_TENANT") or "").strip().lower()
    if config.get("OIDC_MICROSOFT_CLIENT_ID") and config.get("OIDC_MICROSOFT_CLIENT_SECRET") and _GUID.match(tenant):
        found["microsoft"] = Provider(
            SignInProvider.MICROSOFT,
            config["OIDC_MICROSOFT_CLIENT_ID"],
            config["OIDC_MICROSOFT_CLIENT_SECRET"],
            (config.get("OIDC_MICROSOFT_ISSUER") or MICROSOFT_ISSUER.format(tenant=tenant)).rstrip("/"),
            tenant=tenant,
        )
    domain = str(config.get("OIDC_GOOGLE_DOMAIN") or "").strip().lower().lstrip("@")
    if config.get("OIDC_GOOGLE_CLIENT_ID") and config.get("OIDC_GOOGLE_CLIENT_SECRET") and _DOMAIN.match(domain):
        found["google"] = Provider(
            SignInProvider.GOOGLE,
            config["OIDC_GOOGLE_CLIENT_ID"],
            config["OIDC_GOOGLE_CLIENT_SECRET"],
            (config.get("OIDC_GOOGLE_ISSUER") or GOOGLE_ISSUER).rstrip("/"),
            domain=domain,
        )
    return found


def half_configured(config) -> list[str]:
    """Providers with some values set but not all (or a tenant that is not a GUID): shown to the admin."""
    found = configured_providers(config)
    wrong = []
    for name, keys in (
        ("microsoft", ("TENANT", "CLIENT_ID", "CLIENT_SECRET")),
        ("google", ("CLIENT_ID", "CLIENT_SECRET", "DOMAIN")),
    ):
        if name not in found and any(config.get(f"OIDC_{name.upper()}_{key}") for key in keys):
            wrong.append(name)
    return wrong
