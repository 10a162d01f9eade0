"""The search indexes only the migrations create (``0019_search``), named here so autogenerate leaves them be.

SQLite answers the office's register search and the staff search from FTS5 tables with the trigram
tokenizer (a phrase query is a case-insensitive substring match), kept in step with their tables by
triggers; PostgreSQL from ``pg_trgm`` GIN indexes on the searched expressions, which ``LIKE '%...%'``
uses. Neither is a model: SQLAlchemy cannot describe a virtual table, and Alembic's comparison of
expression indexes with operator classes is not reliable, so ``include_object`` below keeps them out of
``flask db migrate`` and of ``tests/test_migrations.py``.
"""

from __future__ import annotations

# SQLite: the people search (rowid = users.id, external content) and the device search (rowid =
# personal_devices.id; make, model, serial and the device's IMEIs joined by spaces).
FTS_TABLES = ("users_search", "devices_search")
# FTS5 keeps each table's index in shadow tables named after it.
FTS_SHADOW_SUFFIXES = ("_data", "_idx", "_content", "_docsize", "_config")
# PostgreSQL: GIN trigram indexes on the expressions the searches compare.
TRIGRAM_INDEXES = (
    "ix_users_display_name_trgm",
    "ix_users_email_trgm",
    "ix_personal_devices_make_trgm",
    "ix_personal_devices_model_trgm",
    "ix_personal_devices_serial_trgm",
    "ix_registered_imeis_imei_trgm",
)


def is_search_index(name: str | None) -> bool:
    """A table or index that belongs to the search indexes."""
    if not name:
        return False
    if name in TRIGRAM_INDEXES or name in FTS_TABLES:
        return True
    return any(name == table + suffix for table in FTS_TABLES for suffix in FTS_SHADOW_SUFFIXES)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's ``include_object``: compare everything but the search indexes the migration owns."""
    return not (reflected and type_ in {"table", "index"} and is_search_index(name))
