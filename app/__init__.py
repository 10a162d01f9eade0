"""Lanyard: the application factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


class Lanyard(Flask):
    """Flask, with an unhandled error's log line carrying the request id (see app.errors)."""

    def log_exception(self, exc_info) -> None:
        from app.errors import log_unhandled

        log_unhandled(self, exc_info)


def create_app(config: dict | None = None) -> Flask:
    """Build the app. ``config`` overrides what the environment gives (tests pass their own)."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("LANYARD_INSTANCE_PATH") or ROOT / "instance"
    app = Lanyard(
        __name__,
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
        instance_path=str(Path(instance_path).resolve()),
        instance_relative_config=False,
    )
    from app.config import settings_from_environment

    app.config.update(settings_from_environment(Path(app.instance_path)))
    if config:
        app.config.update(config)

    if app.config["PROXY_FIX_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from app.web import BoundedIntConverter

    app.url_map.converters["int"] = BoundedIntConverter
    _register_extensions(app)
    _register_blueprints(app)
    _register_templates(app)

    from app.errors import register_error_handlers
    from app.web import register_request_rules

    register_request_rules(app)
    from app.policy.gate import register_policy_gate

    register_policy_gate(app)  # after the CSRF check, before form keys are claimed
    from app.web import begin_request_write

    # After authentication, the CSRF check and the policy gate (read outside the write lock), before the
    # form key's claim and every blueprint's own hooks and views (inside it): see app/database.py.
    app.before_request(begin_request_write)
    from app.form_keys import register_form_keys

    register_form_keys(app)  # after the request rules: the CSRF check comes first
    register_error_handlers(app)

    from app.cli import register_cli
    from app.jobs import register_jobs
    from app.logging_setup import configure_logging
    from app.scheduler import init_scheduler

    register_cli(app)
    configure_logging(json_logs=app.config["JSON_LOGS"])
    register_jobs()
    init_scheduler(app)

    from app.push import init_push

    if config and config.get("TESTING") and "PUSH_WORKER" not in config:
        app.config["PUSH_WORKER"] = False  # tests drive the sender themselves
    init_push(app)

    from app.mail import init_mail

    init_mail(app)
    return app


def _register_extensions(app: Flask) -> None:
    from app import models  # noqa: F401  (register the tables with the metadata)
    from app.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # our own server-side sessions do this job

    from app.auth.routes import unauthorised

    login_manager.unauthorized_handler(unauthorised)


def _register_blueprints(app: Flask) -> None:
    from app.admin import settings as _admin_settings  # noqa: F401  (adds the settings page to the admin blueprint)
    from app.admin import subject_access as _subject_access  # noqa: F401  (adds the subject access export)
    from app.admin.routes import bp as admin_bp
    from app.api import bp as api_bp
    from app.audit_log.routes import bp as audit_log_bp
    from app.auth import passkey_routes  # noqa: F401  (adds the passkey routes to the auth blueprint)
    from app.auth.routes import bp as auth_bp
    from app.bookings.routes import bp as bookings_bp
    from app.bookings.week import bp as booking_week_bp
    from app.devices.routes import bp as devices_bp
    from app.equipment.routes import bp as equipment_bp
    from app.main.routes import bp as main_bp
    from app.permissions.routes import bp as permissions_bp
    from app.policy.routes import bp as policy_bp
    from app.provisioning.routes import bp as provisioning_bp
    from app.push.routes import bp as push_bp
    from app.reports.routes import bp as reports_bp
    from app.scim.routes import bp as scim_bp
    from app.sso.routes import bp as sso_bp

    for blueprint in (
        main_bp,
        auth_bp,
        devices_bp,
        equipment_bp,
        bookings_bp,
        booking_week_bp,
        admin_bp,
        audit_log_bp,
        permissions_bp,
        push_bp,
        sso_bp,
        api_bp,
    ):
        app.register_blueprint(blueprint)
    app.register_blueprint(scim_bp)
    app.register_blueprint(provisioning_bp)
    app.register_blueprint(policy_bp)
    app.register_blueprint(reports_bp)


def school_name() -> str:
    """The name set on the settings page, else the server's configured one (read once per request)."""
    from flask import current_app, g

    from app.extensions import db
    from app.services.settings import get_setting

    if "school_name" not in g:
        g.school_name = (get_setting(db.session, "school.name") or "").strip() or current_app.config["SCHOOL_NAME"]
    return g.school_name


def school_zone():
    """The school's time zone setting, read within the current transaction; Europe/London outside the app."""
    from flask import has_app_context

    from app import clock
    from app.extensions import db
    from app.services import school_settings

    if not has_app_context():
        return clock.DEFAULT_ZONE
    return school_settings.school_zone(db.session)


def school_logo_url() -> str | None:
    from flask import url_for

    from app.extensions import db
    from app.services import school_logo

    digest = school_logo.current_digest(db.session)
    return url_for("main.school_logo", digest=digest) if digest else None


def _register_templates(app: Flask) -> None:
    from app import clock

    clock.set_zone_source(school_zone)
    from app import html_attributes

    html_attributes.install()
    from app.assets import asset_url, cache_static
    from app.services.imei import masked

    app.after_request(cache_static)

    app.jinja_env.filters["date"] = clock.format_date
    app.jinja_env.filters["datetime"] = clock.format_datetime
    app.jinja_env.filters["time"] = clock.format_time
    app.jinja_env.filters["masked_imei"] = masked
    app.jinja_env.globals["asset_url"] = asset_url
    app.jinja_env.globals["school_name"] = school_name
    app.jinja_env.globals["school_logo_url"] = school_logo_url
