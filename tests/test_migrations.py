"""Migrations: upgrade from empty on each backend, models match them, and downgrade to empty works."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from app.extensions import db


def test_the_test_database_is_at_the_newest_revision(app):
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    scripts = app.extensions["migrate"].migrate.get_config().get_main_option("script_location")
    from alembic.script import ScriptDirectory

    assert set(current) == set(ScriptDirectory(scripts).get_heads())


def test_models_match_the_migrations(app):
    """No pending autogenerate: every model change comes with its migration."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_downgrade_to_empty_and_upgrade_again(app):
    downgrade(revision="base")
    with db.engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    assert tables == set()
    upgrade(revision="heads")
    with db.engine.connect() as connection:
        assert "audit_events" in sa.inspect(connection).get_table_names()


def test_the_audit_guards_come_with_the_migration(app):
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "sqlite":
            names = set(connection.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            assert {"audit_events_no_update", "audit_events_no_delete"} <= names
        else:
            names = set(connection.scalars(sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
            assert {"audit_events_no_change", "audit_events_no_truncate"} <= names
