"""Settings read from the environment, with safe defaults for a single school on SQLite."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from app.sso.providers import oidc_settings_from_environment


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key(instance_path: Path) -> str:
    """Return SECRET_KEY from the environment, or one generated once into the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    # Write to a private temporary file and link it into place: with several workers starting at
    # once, exactly one key wins and nobody ever reads a half-written file.
    if not key_file.exists():
        candidate = instance_path / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
        try:
            os.link(candidate, key_file)
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    return key_file.read_text().strip()


def _mail_domain() -> str:
    """The school's mail domain for the default push contact: LANYARD_MAIL_DOMAIN, else school.invalid.

    ``.invalid`` (RFC 2606) can never reach anyone, which is honest until the school sets its own.
    """
    return os.environ.get("LANYARD_MAIL_DOMAIN", "school.invalid").strip().lstrip("@") or "school.invalid"


def settings_from_environment(instance_path: Path) -> dict:
    """Build the Flask config mapping from LANYARD_* environment variables."""
    environment = os.environ.get("LANYARD_ENV", "production")
    development = environment in {"development", "testing"}
    database_url = os.environ.get("LANYARD_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not database_url:
        database_url = f"sqlite:///{instance_path / 'lanyard.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    return {
        "LANYARD_ENV": environment,
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "BASE_URL": os.environ.get("LANYARD_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "SCHOOL_NAME": os.environ.get("LANYARD_SCHOOL_NAME", "Lanyard School"),
        "SESSION_COOKIE_SECURE": _flag("LANYARD_SECURE_COOKIES", not development),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "lanyard_session",
        "REMEMBER_COOKIE_DURATION": timedelta(seconds=0),
        "SESSION_IDLE_MINUTES": int(os.environ.get("LANYARD_SESSION_IDLE_MINUTES", "30")),
        "SESSION_ABSOLUTE_HOURS": int(os.environ.get("LANYARD_SESSION_ABSOLUTE_HOURS", "12")),
        "LOGIN_MAX_FAILURES": int(os.environ.get("LANYARD_LOGIN_MAX_FAILURES", "5")),
        "LOGIN_WINDOW_MINUTES": int(os.environ.get("LANYARD_LOGIN_WINDOW_MINUTES", "15")),
        "HSTS": _flag("LANYARD_HSTS", not development),
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_CHECK_DEFAULT": False,  # checked in app.web._begin_request, except for API tokens
        "WTF_CSRF_SSL_STRICT": False,
        "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        "JSON_LOGS": _flag("LANYARD_JSON_LOGS", not development),
        "PROXY_FIX_HOPS": int(os.environ.get("LANYARD_PROXY_HOPS", "0")),
        # The embedded scheduler thread (timed jobs: expiry, escalation); never under tests.
        "LANYARD_SCHEDULER": _flag("LANYARD_SCHEDULER", True),
        "LANYARD_SCHEDULER_SECONDS": int(os.environ.get("LANYARD_SCHEDULER_SECONDS", "30")),
        # Web Push (DESIGN.md section 4). The contact is the mailto: a push service can write to about
        # misbehaving traffic; set it to the school office (LANYARD_PUSH_CONTACT).
        "PUSH_CONTACT": os.environ.get("LANYARD_PUSH_CONTACT", f"mailto:office@{_mail_domain()}"),
        # The embedded sender thread: on in development (`flask run`); in production the sender is its
        # own process (`flask push-worker`), so gunicorn's web workers leave it off unless told otherwise.
        "PUSH_WORKER": _flag("LANYARD_PUSH_WORKER", environment == "development"),
        # The school's own push service, beside the browsers' public ones (comma-separated host[:port]).
        "PUSH_EXTRA_HOSTS": os.environ.get("LANYARD_PUSH_EXTRA_HOSTS", ""),
        "PUSH_TIMEOUT_SECONDS": float(os.environ.get("LANYARD_PUSH_TIMEOUT_SECONDS", "10")),
        "PUSH_MAX_ATTEMPTS": int(os.environ.get("LANYARD_PUSH_MAX_ATTEMPTS", "8")),
        "PUSH_BACKOFF_SECONDS": float(os.environ.get("LANYARD_PUSH_BACKOFF_SECONDS", "5")),
        "PUSH_POLL_SECONDS": float(os.environ.get("LANYARD_PUSH_POLL_SECONDS", "2")),
        "PUSH_SEND_THREADS": int(os.environ.get("LANYARD_PUSH_SEND_THREADS", "4")),
        "PUSH_TTL_SECONDS": int(os.environ.get("LANYARD_PUSH_TTL_SECONDS", str(4 * 3600))),
        "PUSH_ACTION_TOKEN_MINUTES": int(os.environ.get("LANYARD_PUSH_ACTION_TOKEN_MINUTES", "60")),
        # Sign in with Microsoft or Google (LANYARD_OIDC_*; see app/sso/providers.py and the README).
        **oidc_settings_from_environment(),
    }
