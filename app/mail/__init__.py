"""Email through an outbox: the forgotten-password page, email choices, the sender and its CLI."""

from __future__ import annotations

import os

from flask import Flask

from app.config import _flag


def mail_settings_from_environment(environment: str) -> dict:
    """SMTP and sender settings from LANYARD_* variables (see the README's SMTP section)."""
    security = os.environ.get("LANYARD_SMTP_SECURITY", "starttls").strip().lower()
    if security not in {"starttls", "tls", "none"}:
        raise ValueError("LANYARD_SMTP_SECURITY must be starttls, tls or none")
    default_port = {"starttls": 587, "tls": 465, "none": 25}[security]
    return {
        "SMTP_HOST": os.environ.get("LANYARD_SMTP_HOST", "").strip(),
        "SMTP_PORT": int(os.environ.get("LANYARD_SMTP_PORT", str(default_port))),
        "SMTP_SECURITY": security,
        "SMTP_USER": os.environ.get("LANYARD_SMTP_USER", ""),
        "SMTP_PASSWORD": os.environ.get("LANYARD_SMTP_PASSWORD", ""),
        "MAIL_FROM": os.environ.get("LANYARD_MAIL_FROM", "lanyard@school.invalid").strip(),
        # The embedded sender thread: on in development; in production run `flask mail-worker`.
        "MAIL_WORKER": _flag("LANYARD_MAIL_WORKER", environment == "development"),
        "MAIL_TIMEOUT_SECONDS": float(os.environ.get("LANYARD_MAIL_TIMEOUT_SECONDS", "20")),
        "MAIL_MAX_ATTEMPTS": int(os.environ.get("LANYARD_MAIL_MAX_ATTEMPTS", "8")),
        "MAIL_BACKOFF_SECONDS": float(os.environ.get("LANYARD_MAIL_BACKOFF_SECONDS", "30")),
        "MAIL_POLL_SECONDS": float(os.environ.get("LANYARD_MAIL_POLL_SECONDS", "5")),
    }


def init_mail(app: Flask) -> None:
    """Read the mail settings, plug the email channel into notify(), add the pages and the sender (its command is registered in app/cli.py).

    Settings passed to the factory win over the environment. The /dev/mail page exists only in
    development with no SMTP server configured.
    """
    from app.mail.routes import bp, dev_bp, email_choices
    from app.services.mail import queue_mail_for_notices
    from app.services.notifications import register_channel

    for key, value in mail_settings_from_environment(app.config["LANYARD_ENV"]).items():
        app.config.setdefault(key, value)
    register_channel(queue_mail_for_notices)
    app.register_blueprint(bp)
    if app.config["LANYARD_ENV"] == "development" and not app.config["SMTP_HOST"]:
        app.register_blueprint(dev_bp)
    app.jinja_env.globals["email_choices"] = email_choices
    if not app.config.get("MAIL_WORKER"):
        return
    started_in: dict[str, int] = {}

    def ensure_sender_running() -> None:
        if started_in.get("pid") != os.getpid():
            from app.mail.worker import start_embedded_worker

            start_embedded_worker(app)
            started_in["pid"] = os.getpid()

    app.before_request(ensure_sender_running)
