"""Search indexes for a large trust: the office's device register search and the staff search.

SQLite: FTS5 tables with the trigram tokenizer (a quoted phrase is a case-insensitive substring match),
kept in step by triggers. ``users_search`` indexes users' names and emails as external content (rowid =
users.id); ``devices_search`` stores each device's make, model, serial and IMEIs (joined by spaces) under
rowid = personal_devices.id, refreshed whenever the device or one of its IMEIs changes.
PostgreSQL: ``pg_trgm`` GIN indexes (without a pending list) on the expressions the searches compare, so
``LIKE '%...%'`` is answered from them.

A later batch migration on ``users``, ``personal_devices`` or ``registered_imeis`` recreates the table on
SQLite and so drops these triggers: it must create them again (``create_sqlite_triggers`` below).

Revision ID: 0019_search
Revises: 0018_bookings
Create Date: 2026-12-01 00:00:00

"""
from alembic import op


revision = '0019_search'
down_revision = '0018_bookings'
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = {
    'ix_users_display_name_trgm': ('users', 'lower(display_name)'),
    'ix_users_email_trgm': ('users', 'lower(email)'),
    'ix_personal_devices_make_trgm': ('personal_devices', 'lower(make)'),
    'ix_personal_devices_model_trgm': ('personal_devices', 'lower(model)'),
    'ix_personal_devices_serial_trgm': ('personal_devices', 'lower(serial)'),
    'ix_registered_imeis_imei_trgm': ('registered_imeis', 'imei'),
}


def refresh_device(device_id: str) -> str:
    """SQL that rewrites one device's row in devices_search from the tables (nothing if it is gone)."""
    return f"""
        DELETE FROM devices_search WHERE rowid = {device_id};
        INSERT INTO devices_search (rowid, make, model, serial, imeis)
        SELECT d.id, d.make, d.model, d.serial,
               coalesce((SELECT group_concat(i.imei, ' ') FROM registered_imeis i WHERE i.device_id = d.id), '')
        FROM personal_devices d WHERE d.id = {device_id};"""


SQLITE_TRIGGERS = {
    'users_search_after_insert': """
        AFTER INSERT ON users BEGIN
            INSERT INTO users_search (rowid, display_name, email) VALUES (new.id, new.display_name, new.email);
        END""",
    # External content: the index is told the old values to remove, exactly as they were.
    'users_search_after_update': """
        AFTER UPDATE OF id, display_name, email ON users BEGIN
            INSERT INTO users_search (users_search, rowid, display_name, email)
                VALUES ('delete', old.id, old.display_name, old.email);
            INSERT INTO users_search (rowid, display_name, email) VALUES (new.id, new.display_name, new.email);
        END""",
    'users_search_after_delete': """
        AFTER DELETE ON users BEGIN
            INSERT INTO users_search (users_search, rowid, display_name, email)
                VALUES ('delete', old.id, old.display_name, old.email);
        END""",
    'devices_search_after_insert': f"AFTER INSERT ON personal_devices BEGIN {refresh_device('new.id')} END",
    'devices_search_after_update': f"""
        AFTER UPDATE OF id, make, model, serial ON personal_devices BEGIN
            DELETE FROM devices_search WHERE rowid = old.id;
            {refresh_device('new.id')}
        END""",
    'devices_search_after_delete': """
        AFTER DELETE ON personal_devices BEGIN
            DELETE FROM devices_search WHERE rowid = old.id;
        END""",
    'devices_search_imei_after_insert': f"""
        AFTER INSERT ON registered_imeis WHEN new.device_id IS NOT NULL BEGIN {refresh_device('new.device_id')} END""",
    'devices_search_imei_after_update': f"""
        AFTER UPDATE OF imei, device_id ON registered_imeis BEGIN
            {refresh_device('old.device_id')}
            {refresh_device('new.device_id')}
        END""",
    'devices_search_imei_after_delete': f"""
        AFTER DELETE ON registered_imeis WHEN old.device_id IS NOT NULL BEGIN {refresh_device('old.device_id')} END""",
}


def create_sqlite_triggers() -> None:
    for name, body in SQLITE_TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            "CREATE VIRTUAL TABLE users_search USING fts5("
            "display_name, email, content='users', content_rowid='id', tokenize='trigram')"
        )
        op.execute("INSERT INTO users_search (users_search) VALUES ('rebuild')")
        op.execute("CREATE VIRTUAL TABLE devices_search USING fts5(make, model, serial, imeis, tokenize='trigram')")
        op.execute(
            "INSERT INTO devices_search (rowid, make, model, serial, imeis) "
            "SELECT d.id, d.make, d.model, d.serial, "
            "coalesce((SELECT group_concat(i.imei, ' ') FROM registered_imeis i WHERE i.device_id = d.id), '') "
            "FROM personal_devices d"
        )
        create_sqlite_triggers()
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for name, (table, expression) in TRIGRAM_INDEXES.items():
        # fastupdate off: a new row goes into the index at once, never into a pending list that every
        # search would read row by row (and that the planner prices as a reason to scan the table)
        # until a vacuum merges it.
        op.execute(f'CREATE INDEX {name} ON {table} USING gin ({expression} gin_trgm_ops) WITH (fastupdate = off)')


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS devices_search")
        op.execute("DROP TABLE IF EXISTS users_search")
        return
    for name in TRIGRAM_INDEXES:
        op.execute(f'DROP INDEX IF EXISTS {name}')
    # The extension stays: other objects in the database may have come to use it.
