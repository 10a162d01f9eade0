"""Fixtures: a fresh, migrated database per test on every backend asked for, signed-in clients, a clock.

Each test gets its own database copied from a template made once per run by the real migrations: a
file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL. The backends come from
--databases or LANYARD_TEST_DATABASES (default: both; an empty list is a usage error). A backend that
was asked for and cannot be reached is an error, not a skip, so CI can never pass without PostgreSQL.
`make test` (tools/test_prereqs.py) points LANYARD_TEST_PG at a server it found or started.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import clock, create_app
from app.extensions import db

PG_ADMIN_URL = os.environ.get("LANYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def pytest_addoption(parser):
    parser.addoption(
        "--databases",
        default=os.environ.get("LANYARD_TEST_DATABASES", "sqlite,postgresql"),
        help="comma-separated backends to run database tests on (sqlite, postgresql)",
    )


BACKENDS = ("sqlite", "postgresql")


def databases(config) -> list[str]:
    """The backends asked for; an empty or unknown list is a usage error, never a run that tests nothing."""
    value = config.getoption("--databases")
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise pytest.UsageError(
            "--databases (or LANYARD_TEST_DATABASES) is empty: name sqlite, postgresql or both (sqlite,postgresql)"
        )
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise pytest.UsageError(f"--databases: unknown backend {', '.join(unknown)} (use sqlite, postgresql or both)")
    return names


def pytest_configure(config):
    databases(config)


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("LANYARD_SKIP_BROWSER") == "1":
        terminalreporter.write_sep("=", "BROWSER JOURNEYS NOT RUN: LANYARD_SKIP_BROWSER=1", yellow=True, bold=True)


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        backends = databases(metafunc.config)
        if "tests/browser" in str(metafunc.definition.path) or metafunc.definition.get_closest_marker("sqlite_only"):
            backends = [b for b in backends if b == "sqlite"] or ["sqlite"]
        metafunc.parametrize("backend", backends, scope="session")


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def _pg_execute(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql)


def _migrated(url: str, instance: Path) -> None:
    app = create_app(_test_config(url, instance))
    with app.app_context():
        upgrade(revision="head")  # one head only: a second one fails here, as `flask db upgrade` would
        db.engine.dispose()


def _test_config(url: str, instance: Path) -> dict:
    return {
        "TESTING": True,
        "LANYARD_ENV": "testing",
        "SECRET_KEY": "test-" + uuid.uuid4().hex,
        "SQLALCHEMY_DATABASE_URI": url,
        "INSTANCE_PATH": str(instance),
        "BASE_URL": "https://lanyard.test",
        "SESSION_COOKIE_SECURE": False,
        "HSTS": True,
        "SERVER_NAME": None,
        "JSON_LOGS": False,
    }


@pytest.fixture(scope="session")
def template_database(backend, tmp_path_factory):
    """A database migrated from empty once per run; each test copies it."""
    instance = tmp_path_factory.mktemp(f"instance-{backend}")
    if backend == "sqlite":
        path = instance / "template.db"
        _migrated(f"sqlite:///{path}", instance)
        yield {"backend": "sqlite", "path": path, "instance": instance}
        return
    try:
        _pg_execute("SELECT 1")
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL was asked for (--databases) but is not reachable at {PG_ADMIN_URL}: {error}. "
            "Start it, or run with --databases=sqlite to test SQLite only.",
            pytrace=False,
        )
    name = f"lanyard_tpl_{uuid.uuid4().hex[:12]}"
    _pg_execute(f'CREATE DATABASE "{name}"')
    _migrated(_pg_url(name).replace("postgresql://", "postgresql+psycopg://"), instance)
    yield {"backend": "postgresql", "name": name, "instance": instance}
    _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(template_database, tmp_path):
    if template_database["backend"] == "sqlite":
        path = tmp_path / "lanyard.db"
        shutil.copyfile(template_database["path"], path)
        yield f"sqlite:///{path}"
        return
    name = f"lanyard_test_{uuid.uuid4().hex[:12]}"
    _pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database["name"]}"')
    yield _pg_url(name).replace("postgresql://", "postgresql+psycopg://")
    _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as in production: its own `g` and database session.

    The test's own session is rolled back around every request, so what the test reads afterwards is
    what the request committed, never a shared identity map that would hide transaction bugs.
    """

    def open(self, *args, **kwargs):
        db.session.rollback()
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.rollback()
        return response


@pytest.fixture
def app(database_url, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    application = create_app(_test_config(database_url, instance))
    application.test_client_class = IsolatedClient
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


class Clock:
    """A controllable clock: tests move time instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.astimezone(UTC)


@pytest.fixture
def frozen_clock():
    controlled = Clock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    clock.set_source(controlled)
    yield controlled
    clock.set_source(None)


def csrf_token(client, path: str = "/sign-in") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_META.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)
