"""The timed jobs: the cron command, the embedded scheduler thread and its lock between processes."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from app import create_app
from app.extensions import db
from app.models import Role
from app.scheduler import SCHEDULER_LOCK, run_timed_jobs, start_scheduler
from app.services import permissions
from tests.conftest import _test_config
from tests.factories import make_device, make_user
from tests.permission_factories import ask, committed, fresh, make_area


@pytest.fixture
def approved(app, frozen_clock):
    head = make_user(Role.APPROVER)
    staff = make_user()
    asked = ask(staff, make_area(make_user(Role.ADMIN)), make_device(staff))
    return committed(permissions.decide, head, asked.id, "approve")


def test_run_jobs_command_expires_and_is_idempotent(app, approved, frozen_clock):
    runner = app.test_cli_runner()
    early = runner.invoke(args=["permissions", "run-jobs"])
    assert early.exit_code == 0 and early.output.strip() == "Expired 0, escalated 0, emergency reviews overdue 0."
    frozen_clock.advance(hours=1)
    first = runner.invoke(args=["permissions", "run-jobs"])
    assert first.output.strip() == "Expired 1, escalated 0, emergency reviews overdue 0."
    assert (
        runner.invoke(args=["permissions", "run-jobs"]).output.strip() == "Expired 0, escalated 0, emergency reviews overdue 0."
    )
    assert fresh(approved).status == "expired"


def test_a_tick_is_skipped_while_another_process_holds_the_lock(app, approved, frozen_clock, database_url):
    frozen_clock.advance(hours=1)
    if db.engine.dialect.name != "postgresql":
        assert run_timed_jobs(db.session)["permissions"].expired == 1  # SQLite: BEGIN IMMEDIATE serialises ticks
        return
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (SCHEDULER_LOCK,))
        assert run_timed_jobs(db.session) is None
        other.execute("SELECT pg_advisory_unlock(%s)", (SCHEDULER_LOCK,))
    assert fresh(approved).status == "approved"
    assert run_timed_jobs(db.session)["permissions"].expired == 1


def test_the_scheduler_thread_runs_the_jobs(app, approved, frozen_clock):
    frozen_clock.set(datetime(2026, 11, 25, 11, 0, tzinfo=UTC))
    app.config["LANYARD_SCHEDULER_SECONDS"] = 0.02
    stop = start_scheduler(app)
    try:
        for _ in range(250):  # up to 5 s, checking every 20 ms
            if fresh(approved).status == "expired":
                break
            stop.wait(0.02)
    finally:
        stop.set()
    assert fresh(approved).status == "expired"


def test_the_scheduler_starts_only_outside_tests_and_when_enabled(tmp_path, database_url):
    def hooks(**overrides) -> list[str]:
        application = create_app({**_test_config(database_url, tmp_path), **overrides})
        names = [f.__name__ for f in application.before_request_funcs.get(None, [])]
        with application.app_context():
            db.engine.dispose()
        return names

    assert "start_scheduler_once" not in hooks()
    assert "start_scheduler_once" in hooks(TESTING=False, LANYARD_SCHEDULER=True)
    assert "start_scheduler_once" not in hooks(TESTING=False, LANYARD_SCHEDULER=False)
