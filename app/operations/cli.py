"""`flask backup` and `flask restore`: the embedded SQLite database copied while the app runs, and put back."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app

from app.cli_support import in_own_app
from app.extensions import db
from app.services.audit_digest import heads_path


@click.command("backup")
@in_own_app
@click.option("--to", "target", type=click.Path(path_type=Path), help="file to write (default: instance/backups/)")
def backup(target: Path | None) -> None:
    """Copy a consistent snapshot of the SQLite database while the app runs."""
    from app.clock import utcnow
    from app.operations.backup import back_up

    if target is None:
        target = Path(current_app.instance_path) / "backups" / f"lanyard-{utcnow():%Y%m%d-%H%M%S}.db"
    try:
        result = back_up(current_app.config["SQLALCHEMY_DATABASE_URI"], target, heads_path(current_app.instance_path))
    except (ValueError, FileExistsError) as error:
        click.echo(str(error), err=True)
        raise SystemExit(1) from error
    click.echo(f"Backed up to {result.path} ({sum(result.table_counts.values())} rows in {len(result.table_counts)} tables)")


@click.command("restore")
@in_own_app
@click.argument("backup_file", type=click.Path(path_type=Path, exists=True))
@click.option("--yes", is_flag=True, help="confirm: the current database is replaced")
def restore(backup_file: Path, yes: bool) -> None:
    """Replace the SQLite database with a backup (stop the app first), then verify the audit chain."""
    from app.operations.backup import restore as restore_backup
    from app.services.audit import verify_chain
    from app.services.audit_log import published_heads

    if not yes:
        click.echo("This replaces the current database. Stop Lanyard, then run again with --yes.", err=True)
        raise SystemExit(1)
    db.session.remove()
    db.engine.dispose()
    try:
        result = restore_backup(backup_file, current_app.config["SQLALCHEMY_DATABASE_URI"], heads_path(current_app.instance_path))
    except (ValueError, FileNotFoundError) as error:
        click.echo(str(error), err=True)
        raise SystemExit(1) from error
    report = verify_chain(db.session, published_heads(heads_path(current_app.instance_path)))
    click.echo(f"Restored {sum(result.table_counts.values())} rows in {len(result.table_counts)} tables from {backup_file}")
    if not report.ok:
        click.echo(f"Audit chain BROKEN at event {report.broken_at_seq}: {report.problem}", err=True)
        raise SystemExit(1)
    click.echo(f"Audit chain verified: {report.verified_count} events")
