"""`make test`'s prerequisites (tools/test_prereqs.py): the throwaway PostgreSQL cluster really starts,
answers and is removed, on its own port and never the machine's own server; and what was asked for is read
as pytest will read it. No database fixture here: these tests make their own server.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests import conftest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("test_prereqs_tool", ROOT / "tools" / "test_prereqs.py")
prereqs = sys.modules.setdefault("test_prereqs_tool", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(prereqs)


def _closed_port() -> int:
    port = prereqs.free_port()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return port


@pytest.fixture(scope="module")
def bindir():
    found = prereqs.server_bindir()
    assert found is not None, "the PostgreSQL server binaries are not installed (apt-get install postgresql)"
    return found


def test_the_server_binaries_are_found_without_naming_a_version(bindir):
    for program in ("initdb", "pg_ctl", "postgres"):
        assert os.access(bindir / program, os.X_OK)


def test_a_throwaway_cluster_starts_answers_and_is_removed(bindir):
    port = prereqs.free_port()
    assert port != 5432
    cluster = prereqs.start_cluster(bindir, port=port)
    try:
        assert cluster.folder.is_dir()
        assert prereqs.reachable(cluster.url)
        with psycopg.connect(cluster.url, connect_timeout=5, autocommit=True) as connection:
            data_directory = connection.execute("SHOW data_directory").fetchone()[0]
            assert Path(data_directory).resolve() == cluster.data.resolve(), "connected to another server"
            assert connection.execute("SHOW port").fetchone()[0] == str(port)
            assert connection.execute("SHOW fsync").fetchone()[0] == "off"
            assert connection.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0] is True
            connection.execute("CREATE DATABASE lanyard_probe")  # what the fixtures do: CREATE DATABASE ... TEMPLATE
            owner = connection.execute(
                "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'lanyard_probe'"
            )
            assert owner.fetchone()[0] == "postgres"
        if os.geteuid() == 0:
            assert cluster.user in prereqs.UNPRIVILEGED_USERS, "as root the server runs as an unprivileged user"
            assert (cluster.data / "PG_VERSION").stat().st_uid != 0
    finally:
        cluster.stop()
    assert not cluster.folder.exists(), "the throwaway cluster's folder was left behind"
    assert not prereqs.reachable(cluster.url, timeout=1), "the throwaway server is still running"


def test_a_cluster_that_cannot_start_is_cleaned_up(bindir, monkeypatch):
    made = []
    real_mkdtemp = prereqs.tempfile.mkdtemp
    monkeypatch.setattr(prereqs.tempfile, "mkdtemp", lambda **kwargs: made.append(real_mkdtemp(**kwargs)) or made[-1])
    with socket.socket() as taken:  # the port is in use: the server cannot bind it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match="did not start"):
            prereqs.start_cluster(bindir, port=taken.getsockname()[1], attempts=1)
    assert len(made) == 1
    assert not Path(made[0]).exists(), "a cluster that failed to start left its folder behind"


def test_a_closed_port_is_not_reachable():
    assert prereqs.reachable(f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres", timeout=1) is False


@pytest.mark.parametrize(
    ("args", "environ", "expected"),
    [
        ([], {}, ["sqlite", "postgresql"]),
        (["-n", "2"], {"LANYARD_TEST_DATABASES": "sqlite"}, ["sqlite"]),
        (["--databases=postgresql", "tests/test_imei.py"], {"LANYARD_TEST_DATABASES": "sqlite"}, ["postgresql"]),
        (["--databases", "sqlite"], {}, ["sqlite"]),
        (["--databases="], {}, []),
    ],
)
def test_the_databases_asked_for_are_read_as_pytest_reads_them(args, environ, expected):
    assert prereqs.databases_asked(args, environ) == expected


def test_a_missing_package_as_a_non_root_user_stops_with_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(prereqs, "can_apt", lambda: False)
    with pytest.raises(prereqs.MissingPrerequisite) as stopped:
        prereqs.require(lambda: None, "postgresql", "no PostgreSQL server is installed")
    assert stopped.value.code == 2
    assert "\n" not in stopped.value.line
    assert "apt-get install postgresql" in stopped.value.line


def test_the_browser_is_not_asked_for_when_skipped_explicitly(monkeypatch):
    monkeypatch.setattr(prereqs, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setattr(prereqs, "can_apt", lambda: False)
    prereqs.ensure_chromium({"LANYARD_SKIP_BROWSER": "1"})
    with pytest.raises(prereqs.MissingPrerequisite) as stopped:
        prereqs.ensure_chromium({})
    assert "apt-get install chromium" in stopped.value.line
    assert "LANYARD_SKIP_BROWSER=1" in stopped.value.line


class _Config:
    def __init__(self, value: str) -> None:
        self.value = value

    def getoption(self, name: str) -> str:
        assert name == "--databases"
        return self.value


@pytest.mark.parametrize(("value", "message"), [("", "is empty"), (" , ", "is empty"), ("sqlite,mysql", "unknown backend mysql")])
def test_an_empty_or_unknown_database_list_is_a_usage_error(value, message):
    with pytest.raises(pytest.UsageError, match=message):
        conftest.databases(_Config(value))
    assert conftest.databases(_Config(" postgresql , sqlite")) == ["postgresql", "sqlite"]


def test_an_empty_database_variable_is_a_usage_error():
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", "tests/test_imei.py", "-p", "no:randomly", "-n", "0", "-q"],
        cwd=ROOT,
        env={**os.environ, "LANYARD_TEST_DATABASES": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "is empty" in result.stderr
