"""Migrations: one chain with one head, files named in chain order, upgrade from empty on each backend,
models match them (enum CHECK constraints included), and downgrade to empty works."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from app.extensions import db
from app.models.checks import ENUM_CHECKS
from app.models.search_index import FTS_TABLES, TRIGRAM_INDEXES, include_object

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
NUMBERED = re.compile(r"(\d{4})_[a-z0-9_]+\.py")


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def _chain() -> list:
    """The revisions from base to head (walk_revisions goes head to base)."""
    return list(reversed(list(_scripts().walk_revisions("base", "heads"))))


def test_there_is_exactly_one_head():
    """A second head passes `upgrade heads` but breaks `flask db upgrade` in production: re-chain it."""
    heads = _scripts().get_heads()
    assert len(heads) == 1, (
        f"migrations have {len(heads)} heads {sorted(heads)}: point the newer one's down_revision at the other "
        "(the current head is what `flask db heads` printed before it was added)"
    )
    assert len(_scripts().get_bases()) == 1


def test_file_names_sort_in_chain_order():
    """Reading migrations/versions top to bottom reads the chain; ids stay as deployed databases know them."""
    chain = [Path(revision.path).name for revision in _chain()]
    on_disk = sorted(path.name for path in (MIGRATIONS / "versions").glob("*.py"))
    assert chain == on_disk
    numbers = [NUMBERED.fullmatch(name).group(1) if NUMBERED.fullmatch(name) else name for name in on_disk]
    assert all(number.isdigit() for number in numbers), f"name each file NNNN_what.py: {on_disk}"
    assert len(set(numbers)) == len(numbers), f"two files share a number: {on_disk}"


def test_the_test_database_is_at_the_head(app):
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    assert list(current) == [_scripts().get_current_head()]


def test_models_match_the_migrations(app):
    """No pending autogenerate: every model change comes with its migration."""
    with db.engine.connect() as connection:
        # The search indexes (0019_search) exist only in the migration: compared by their own test below.
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include_object})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def _database_check_values(connection, table: str, name: str) -> set[str]:
    """The values a named CHECK constraint in the migrated database allows (autogenerate ignores CHECKs)."""
    if connection.dialect.name == "sqlite":
        create = connection.scalar(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"), {"t": table})
        found = re.search(rf"CONSTRAINT {name} CHECK \((.*?)\)(?:,|\s*\)$|\s*\n)", create, re.S)
        text = found.group(1) if found else ""
    else:
        text = (
            connection.scalar(
                sa.text(
                    "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                    "WHERE t.relname = :t AND c.conname = :n"
                ),
                {"t": table, "n": name},
            )
            or ""
        )
    assert text, f"no CHECK constraint {name} on {table}"
    return set(re.findall(r"'([^']*)'", text))


def test_enum_checks_in_the_database_allow_exactly_the_enum_values(app):
    """Each enum's CHECK in the migrated database lists the StrEnum's values, no more and no fewer."""
    assert len(ENUM_CHECKS) >= 12
    with db.engine.connect() as connection:
        for check in ENUM_CHECKS:
            table = check.table.name
            assert _database_check_values(connection, table, check.name) == {item.value for item in check.info["enum"]}, (
                table,
                check.name,
            )


def test_downgrade_to_empty_and_upgrade_again(app):
    downgrade(revision="base")
    with db.engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    assert tables == set()
    upgrade(revision="head")
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


def test_the_search_indexes_come_with_the_migration(app):
    """SQLite: the FTS5 tables and the triggers that keep them in step; PostgreSQL: the trigram indexes."""
    with db.engine.connect() as connection:
        if db.engine.dialect.name == "sqlite":
            tables = set(connection.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")))
            assert set(FTS_TABLES) <= tables
            triggers = set(connection.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            assert {name for name in triggers if "_search_" in name} == {
                "users_search_after_insert",
                "users_search_after_update",
                "users_search_after_delete",
                "devices_search_after_insert",
                "devices_search_after_update",
                "devices_search_after_delete",
                "devices_search_imei_after_insert",
                "devices_search_imei_after_update",
                "devices_search_imei_after_delete",
            }
        else:
            indexes = set(connection.scalars(sa.text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_trgm'")))
            assert indexes == set(TRIGRAM_INDEXES)
