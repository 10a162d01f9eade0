"""Command-line tasks: first admin, demo school, audit chain verification."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app

from app.database import write_intent
from app.extensions import db
from app.models import Role


def heads_file() -> Path:
    return Path(current_app.instance_path) / "audit-heads.jsonl"


def register_cli(app: Flask) -> None:
    register_backup_cli(app)

    retention = click.Group("retention", help="Erase what is past its retention period.")
    app.cli.add_command(retention)

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
            f"(with {report.leaver_requests} of their requests), {report.audit_events} audit events."
        )

    @app.cli.command("create-admin")
    @click.option("--email", prompt=True)
    @click.option("--name", prompt="Name (as colleagues know you)")
    @click.password_option()
    def create_admin(email: str, name: str, password: str) -> None:
        """Create the first admin account."""
        from app.services.accounts import create_user
        from app.services.errors import ValidationFailed

        with write_intent():
            try:
                create_user(db.session, None, email=email, display_name=name, roles={Role.ADMIN}, password=password)
            except ValidationFailed as error:
                db.session.rollback()
                for field, messages in error.field_errors.items():
                    click.echo(f"{field}: {' '.join(messages)}", err=True)
                raise SystemExit(1) from error
            db.session.commit()
        click.echo(f"Admin {email} created. Sign in at {app.config['BASE_URL']}/sign-in")

    @app.cli.command("demo")
    def demo() -> None:
        """Create the demo school (once) and print its sign-ins."""
        from app.demo import demo_password, demo_sign_ins, seed_demo_school

        password = demo_password(Path(app.instance_path))
        with write_intent():
            created = seed_demo_school(db.session, password)
            db.session.commit()
        click.echo("Demo school " + ("created." if created else "already there."))
        click.echo(f"Sign in at {app.config['BASE_URL']}/sign-in with password: {password}")
        for email, name in demo_sign_ins():
            click.echo(f"  {email:32} {name}")

    audit = click.Group("audit", help="The tamper-evident audit log.")
    app.cli.add_command(audit)

    @audit.command("verify")
    def verify() -> None:
        """Recompute every link of the chain and check the last published head."""
        from app.services.audit_log import published_heads, verify_and_record

        with write_intent():
            report = verify_and_record(db.session, None, published_heads(heads_file()))
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

        result = publish_daily_head(db.session, heads_file(), utcnow(), force=True)
        if result is None:
            click.echo("Another process is publishing the head; nothing done.", err=True)
            raise SystemExit(1)
        if result.published is None:
            click.echo(f"Not publishing: chain broken at event {result.report.broken_at_seq}: {result.report.problem}", err=True)
            raise SystemExit(1)
        click.echo(f"Published head {result.report.last_seq} {result.report.last_hash}")

    @app.cli.command("scheduler")
    def scheduler() -> None:
        """Run the timed jobs and the daily audit digest in this process, every LANYARD_SCHEDULER_SECONDS."""
        import contextlib
        import signal
        import threading

        from app.scheduler import run_forever

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"Lanyard scheduler: a tick every {current_app.config['LANYARD_SCHEDULER_SECONDS']} s (Ctrl+C or SIGTERM stops it)")
        with contextlib.suppress(KeyboardInterrupt):
            run_forever(current_app._get_current_object(), stop)


def register_backup_cli(app: Flask) -> None:
    @app.cli.command("backup")
    @click.option("--to", "target", type=click.Path(path_type=Path), help="file to write (default: instance/backups/)")
    def backup(target: Path | None) -> None:
        """Copy a consistent snapshot of the SQLite database while the app runs."""
        from app.clock import utcnow
        from app.operations.backup import back_up

        if target is None:
            target = Path(app.instance_path) / "backups" / f"lanyard-{utcnow():%Y%m%d-%H%M%S}.db"
        try:
            result = back_up(app.config["SQLALCHEMY_DATABASE_URI"], target, heads_file())
        except (ValueError, FileExistsError) as error:
            click.echo(str(error), err=True)
            raise SystemExit(1) from error
        click.echo(f"Backed up to {result.path} ({sum(result.table_counts.values())} rows in {len(result.table_counts)} tables)")

    @app.cli.command("restore")
    @click.argument("backup_file", type=click.Path(path_type=Path, exists=True))
    @click.option("--yes", is_flag=True, help="confirm: the current database is replaced")
    def restore(backup_file: Path, yes: bool) -> None:
        """Replace the SQLite database with a backup (stop the app first), then verify the audit chain."""
        from app.services.audit import verify_chain
        from app.services.audit_log import published_heads
        from app.operations.backup import restore as restore_backup

        if not yes:
            click.echo("This replaces the current database. Stop Lanyard, then run again with --yes.", err=True)
            raise SystemExit(1)
        db.session.remove()
        db.engine.dispose()
        try:
            result = restore_backup(backup_file, app.config["SQLALCHEMY_DATABASE_URI"], heads_file())
        except (ValueError, FileNotFoundError) as error:
            click.echo(str(error), err=True)
            raise SystemExit(1) from error
        report = verify_chain(db.session, published_heads(heads_file()))
        click.echo(f"Restored {sum(result.table_counts.values())} rows in {len(result.table_counts)} tables from {backup_file}")
        if not report.ok:
            click.echo(f"Audit chain BROKEN at event {report.broken_at_seq}: {report.problem}", err=True)
            raise SystemExit(1)
        click.echo(f"Audit chain verified: {report.verified_count} events")
