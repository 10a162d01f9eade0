"""Command-line tasks, all registered here: first admin, demo school, audit chain, retention, the scheduler,
and each feature's own commands (its ``cli.py``: permissions, equipment, push, mail, backups).

Every command is a click command or an ``AppGroup`` defined at module level in one of these modules, and
``register_cli`` adds them all to ``flask``; routes and services declare none.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.cli_support import in_own_app
from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.services.audit_digest import heads_path

retention = AppGroup("retention", help="Erase what is past its retention period.")


@retention.command("run")
def retention_run() -> None:
    """Apply the retention settings now (the embedded scheduler also does this daily)."""
    from app.clock import utcnow
    from app.services.retention import run_retention

    with write_intent():
        report = run_retention(db.session, utcnow())
        db.session.commit()
    if report.held:
        click.echo("A case hold is set: nothing was erased.")
        return
    click.echo(
        f"Erased {report.permission_requests} permission requests, {report.leaver_devices} leavers' devices "
        f"(with {report.leaver_requests} of their requests), {report.audit_events} audit events; removed "
        f"{report.sessions} ended sessions, {report.sign_in_attempts} old sign-in attempts, {report.password_links} spent password links."
    )


@click.command("create-admin")
@in_own_app
@click.option("--email", prompt=True)
@click.option("--name", prompt="Name (as colleagues know you)")
@click.password_option()
def create_admin(email: str, name: str, password: str) -> None:
    """Create the first admin account."""
    from app.forms_support import refused
    from app.services.accounts import create_user

    with write_intent():
        with refused(None, flash_as=None) as refusal:
            create_user(db.session, None, email=email, display_name=name, roles={Role.ADMIN}, password=password)
        if refusal:
            for field, messages in refusal.field_errors.items():
                click.echo(f"{field}: {' '.join(messages)}", err=True)
            raise SystemExit(1)
        db.session.commit()
    click.echo(f"Admin {email} created. Sign in at {current_app.config['BASE_URL']}/sign-in")


@click.command("demo")
@in_own_app
def demo() -> None:
    """Create the demo school (once) and print its sign-ins."""
    from app.demo import demo_password, demo_sign_ins, seed_demo_school

    password = demo_password(Path(current_app.instance_path))
    with write_intent():
        created = seed_demo_school(db.session, password)
        db.session.commit()
    click.echo("Demo school " + ("created." if created else "already there."))
    click.echo(f"Sign in at {current_app.config['BASE_URL']}/sign-in with password: {password}")
    for email, name in demo_sign_ins():
        click.echo(f"  {email:32} {name}")


audit = AppGroup("audit", help="The tamper-evident audit log.")


@audit.command("verify")
def verify() -> None:
    """Recompute every link of the chain and check the last published head."""
    from app.services.audit_log import published_heads, verify_and_record

    with write_intent():
        report = verify_and_record(db.session, None, published_heads(heads_path(current_app.instance_path)))
        db.session.commit()
    if report.ok:
        cut = f" after the retention checkpoint at event {report.cut_up_to}" if report.cut_up_to else ""
        click.echo(f"Audit chain verified: {report.verified_count} events{cut}, head {report.last_seq} {report.last_hash}")
        return
    click.echo(f"Audit chain BROKEN at event {report.broken_at_seq}: {report.problem}", err=True)
    raise SystemExit(1)


@audit.command("publish-head")
def publish_head() -> None:
    """Verify the chain and publish its head now (the scheduler does this daily): file, notice, push."""
    from app.clock import utcnow
    from app.services.audit_digest import publish_daily_head

    result = publish_daily_head(db.session, heads_path(current_app.instance_path), utcnow(), force=True)
    if result is None:
        click.echo("Another process is publishing the head; nothing done.", err=True)
        raise SystemExit(1)
    if result.published is None:
        click.echo(f"Not publishing: chain broken at event {result.report.broken_at_seq}: {result.report.problem}", err=True)
        raise SystemExit(1)
    click.echo(f"Published head {result.report.last_seq} {result.report.last_hash}")


@click.command("scheduler")
@in_own_app
def scheduler() -> None:
    """Run the timed jobs and the daily audit digest in this process, every LANYARD_SCHEDULER_SECONDS."""
    import contextlib
    import signal
    import threading

    from app.scheduler import run_forever

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(
        f"Lanyard scheduler: a tick every {current_app.config['LANYARD_SCHEDULER_SECONDS']} s (Ctrl+C or SIGTERM stops it)"
    )
    with contextlib.suppress(KeyboardInterrupt):
        run_forever(current_app._get_current_object(), stop)  # type: ignore[attr-defined]


def register_cli(app: Flask) -> None:
    """Add every command to ``flask``, in one place."""
    from app.equipment.cli import equipment_cli
    from app.mail.cli import mail_worker
    from app.operations.cli import backup, restore
    from app.permissions.cli import permissions_cli
    from app.push.cli import push_worker

    for command in (
        create_admin,
        demo,
        scheduler,
        audit,
        retention,
        backup,
        restore,
        permissions_cli,
        equipment_cli,
        push_worker,
        mail_worker,
    ):
        app.cli.add_command(command)
