"""The application factory and its configuration."""

from __future__ import annotations

import sqlalchemy as sa

from app import create_app
from app.config import settings_from_environment
from app.extensions import db
from tests.conftest import csrf_token
from tests.factories import make_user, sign_in


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = settings_from_environment(tmp_path)["SECRET_KEY"]
    assert len(first) >= 64
    assert settings_from_environment(tmp_path)["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_sqlite_in_the_instance_folder_by_default_and_postgres_urls_use_psycopg(tmp_path, monkeypatch):
    monkeypatch.delenv("LANYARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert settings_from_environment(tmp_path)["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'lanyard.db'}"
    monkeypatch.setenv("LANYARD_DATABASE_URL", "postgres://u@h/db")
    assert settings_from_environment(tmp_path)["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_sqlite_connections_get_the_pragmas(app):
    if db.engine.dialect.name != "sqlite":
        assert db.engine.dialect.name == "postgresql"
        return
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_writes_from_requests_take_the_write_lock_first(app):
    """On SQLite a POST reads its session in a plain BEGIN and writes only inside BEGIN IMMEDIATE; a GET never
    takes the write lock (app/database.py: the write lock covers the write only)."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    client = app.test_client()
    sign_in(client, make_user())
    token = csrf_token(client, "/devices")
    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        client.get("/devices")
        reads = list(statements)
        statements.clear()
        client.post("/devices/new", data={"csrf_token": token, "kind": "camera", "make": "Canon", "model": "G7"})
        writes = list(statements)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    if db.engine.dialect.name == "sqlite":
        assert reads[0] == "BEGIN" and "BEGIN IMMEDIATE" not in reads
        assert writes[0] == "BEGIN", "authentication reads outside the write lock"
        assert "BEGIN IMMEDIATE" in writes
        locked = False
        for statement in writes:
            if statement.startswith("BEGIN"):
                locked = statement == "BEGIN IMMEDIATE"
            elif statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                assert locked, f"written outside BEGIN IMMEDIATE: {statement[:60]}"
    else:
        assert reads and writes


def test_the_factory_accepts_overrides(tmp_path):
    app = create_app(
        {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 40, "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    )
    assert app.config["TESTING"] is True
    assert app.instance_path == str(tmp_path)
