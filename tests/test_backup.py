"""Backups that restore: a busy SQLite database is copied live, restored into a new one and verified."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app import create_app
from app.database import write_intent
from app.extensions import db
from app.operations.backup import back_up, count_rows, sqlite_path
from app.services import devices
from app.services.audit import verify_chain
from tests.conftest import _test_config
from tests.factories import make_imei, make_user

pytestmark = pytest.mark.sqlite_only


def test_a_busy_database_backs_up_restores_and_verifies(app, tmp_path):
    owners = [make_user().id for _ in range(3)]
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        with app.app_context():
            n = 0
            while not stop.is_set() and n < 400:
                with write_intent():
                    owner = db.session.get(devices.User, owners[n % 3])
                    devices.register_device(
                        db.session, owner, devices.DeviceDetails(kind="smartphone", make="M", model=str(n), imei1=make_imei())
                    )
                    db.session.commit()
                written.append(n)
                n += 1
            db.session.remove()

    writers = [threading.Thread(target=keep_writing) for _ in range(2)]
    for writer in writers:
        writer.start()
    while len(written) < 40:
        stop.wait(0.01)
    backup = back_up(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "backup.db")
    stop.set()
    for writer in writers:
        writer.join(timeout=60)
    assert 0 < backup.table_counts["personal_devices"] < len(written) + 1

    restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
    (tmp_path / "restored.db").touch()
    restored_instance = tmp_path / "restored-instance"
    restored_instance.mkdir()
    restored_app = create_app(_test_config(restored_url, restored_instance))
    runner = restored_app.test_cli_runner()
    result = runner.invoke(args=["restore", str(tmp_path / "backup.db"), "--yes"])
    assert result.exit_code == 0, result.output
    assert "Audit chain verified" in result.output
    with restored_app.app_context():
        counts = count_rows(db.session)
        report = verify_chain(db.session)
        registered = db.session.scalar(sa.select(sa.func.count()).select_from(devices.PersonalDevice))
        db.engine.dispose()
    assert counts == backup.table_counts
    assert report.ok and report.verified_count == backup.table_counts["audit_events"]
    assert registered == backup.table_counts["personal_devices"]


def test_backup_command_refuses_postgresql_and_explains(app):
    with pytest.raises(ValueError, match="pg_dump"):
        sqlite_path("postgresql+psycopg://postgres@127.0.0.1/lanyard")


def test_restore_needs_confirmation_and_a_sound_file(app, tmp_path):
    runner = app.test_cli_runner()
    backup_file = tmp_path / "b.db"
    assert runner.invoke(args=["backup", "--to", str(backup_file)]).exit_code == 0
    refused = runner.invoke(args=["restore", str(backup_file)])
    assert refused.exit_code == 1 and "--yes" in refused.output
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 100)
    result = runner.invoke(args=["restore", str(broken), "--yes"])
    assert result.exit_code == 1 and "nothing was restored" in result.output
