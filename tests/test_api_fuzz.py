"""Schemathesis against the running app's OpenAPI description, with a personal API token, all checks.

The app is served by a real WSGI server on 127.0.0.1 and fuzzed with the schemathesis command line;
whatever it finds is a bug to fix, not to exclude.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.database import write_intent
from app.extensions import db
from app.models import Role
from app.services import api_tokens
from tests.browser.conftest import LiveServer
from tests.factories import make_device, make_user

pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def fuzzed_server(template_database, tmp_path):
    database = tmp_path / "fuzz.db"
    shutil.copyfile(template_database["path"], database)
    instance = tmp_path / "fuzz-instance"
    instance.mkdir()
    server = LiveServer(database, instance).start()
    with server.app_context():
        person = make_user(Role.APPROVER, Role.OFFICE, Role.ADMIN, name="Fuzz Tester")
        make_device(person)
        with write_intent():
            _token, secret = api_tokens.create_token(db.session, person, "schemathesis")
            db.session.commit()
    yield server, secret
    server.stop()
    with server.app_context():
        db.engine.dispose()


def test_schemathesis_finds_nothing(fuzzed_server, tmp_path):
    server, secret = fuzzed_server
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(Path(__file__).parent / "schemathesis.toml"),
        "run",
        f"{server.url}/api/v1/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        os.environ.get("LANYARD_FUZZ_EXAMPLES", "30"),
        "--header",
        f"Authorization: Bearer {secret}",
        "--generation-deterministic",
        "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path, check=False)  # noqa: S603
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
