"""CHECK constraints built from the StrEnums, so an enum's values are written once.

``enum_check("status", DeviceStatus, name="known_status")`` renders ``status IN ('active', ...)`` in the
enum's order, exactly as the migrations wrote these constraints by hand, so the SQL (and the
constraint's name, ``ck_<table>_<name>`` by the metadata's naming convention) stays what deployed
databases have. Adding a value to an enum still needs a migration that recreates the constraint:
autogenerate does not compare CHECK constraints, but ``tests/test_migrations.py`` compares each one in
the migrated database with its enum.
"""

from __future__ import annotations

import enum

import sqlalchemy as sa

ENUM_CHECKS: list[sa.CheckConstraint] = []


def enum_values_sql(values: type[enum.StrEnum]) -> str:
    """``'a', 'b', 'c'``: the enum's values as SQL string literals, in declaration order."""
    for item in values:
        if "'" in item.value:
            raise ValueError(f"{values.__name__}.{item.name} has a quote in its value")
    return ", ".join(f"'{item.value}'" for item in values)


def enum_check(column: str, values: type[enum.StrEnum], *, name: str, nullable: bool = False) -> sa.CheckConstraint:
    """A CHECK that ``column`` holds one of the enum's values (or NULL when ``nullable``)."""
    condition = f"{column} IN ({enum_values_sql(values)})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    check = sa.CheckConstraint(condition, name=name, info={"enum": values, "column": column})
    ENUM_CHECKS.append(check)
    return check
