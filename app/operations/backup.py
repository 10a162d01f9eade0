"""Backups of the embedded SQLite database with SQLite's online backup API.

The online backup copies a consistent snapshot while the app keeps serving and writing. PostgreSQL
is backed up with its own tools (`pg_dump -Fc`, see README).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class BackupResult:
    path: Path
    table_counts: dict[str, int]


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise ValueError("flask backup copies the embedded SQLite database; back up PostgreSQL with pg_dump -Fc.")
    return Path(url.database)


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        names = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        ]
        return {name: connection.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in sorted(names)}  # noqa: S608


def back_up(database_url: str, target: Path, heads_file: Path | None = None) -> BackupResult:
    """Copy a consistent snapshot of the live database (and the published audit heads) to ``target``."""
    source_path = sqlite_path(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(f"{target} already exists; choose a new name.")
    source = sqlite3.connect(source_path, timeout=30)
    destination = sqlite3.connect(target)
    try:
        with destination:
            source.backup(destination, pages=1024)
    finally:
        destination.close()
        source.close()
    if heads_file is not None and heads_file.exists():
        shutil.copyfile(heads_file, target.with_suffix(".audit-heads.jsonl"))
    return BackupResult(target, table_counts(target))


def restore(backup: Path, database_url: str, heads_file: Path | None = None) -> BackupResult:
    """Replace the database with a backup. The app must be stopped: this is a whole-file restore."""
    destination_path = sqlite_path(database_url)
    if not backup.exists():
        raise FileNotFoundError(f"No backup at {backup}.")
    try:
        with sqlite3.connect(f"file:{backup}?mode=ro", uri=True) as check:
            sound = check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        sound = False
    if not sound:
        raise ValueError(f"{backup} is not a sound SQLite database; nothing was restored.")
    for suffix in ("-wal", "-shm"):
        Path(f"{destination_path}{suffix}").unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    destination = sqlite3.connect(destination_path)
    try:
        with destination:
            source.backup(destination)
    finally:
        destination.close()
        source.close()
    saved_heads = backup.with_suffix(".audit-heads.jsonl")
    if heads_file is not None and saved_heads.exists():
        shutil.copyfile(saved_heads, heads_file)
    return BackupResult(destination_path, table_counts(destination_path))


def count_rows(session: Session) -> dict[str, int]:
    """Row counts through the app's own connection (either database)."""
    names = sa.inspect(session.get_bind()).get_table_names()
    return {name: session.scalar(sa.select(sa.func.count()).select_from(sa.table(name))) or 0 for name in sorted(names)}
