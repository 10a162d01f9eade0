"""The systemd units for the three production processes: systemd itself accepts them, and each stops its
whole process group, runs unprivileged and writes only the instance folder.

`systemd-analyze verify` is required where LANYARD_REQUIRE_SYSTEMD=1 (CI): missing, it fails the run.
Elsewhere a missing systemd-analyze skips the verification with a loud reason in the summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
VERIFY = UNITS / "verify"
EXPECTED = {
    "lanyard.service": "/srv/lanyard/.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app",
    "lanyard-push.service": "/srv/lanyard/.venv/bin/flask --app wsgi push-worker",
    "lanyard-mail.service": "/srv/lanyard/.venv/bin/flask --app wsgi mail-worker",
    "lanyard-scheduler.service": "/srv/lanyard/.venv/bin/flask --app wsgi scheduler",
}


def _settings(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _verify(directory: Path) -> subprocess.CompletedProcess:
    if shutil.which("systemd-analyze") is None:
        message = "systemd-analyze is not installed (apt-get install systemd)"
        if os.environ.get("LANYARD_REQUIRE_SYSTEMD") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip("SYSTEMD UNITS NOT VERIFIED: " + message)
    return subprocess.run(["bash", str(VERIFY), str(directory)], capture_output=True, text=True, timeout=120, check=False)  # noqa: S603, S607


def test_systemd_accepts_the_units():
    result = _verify(UNITS)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in EXPECTED)


def test_the_verification_fails_on_a_mistake(tmp_path):
    for unit in UNITS.glob("*.service"):
        shutil.copy(unit, tmp_path / unit.name)
    broken = tmp_path / "lanyard-scheduler.service"
    broken.write_text(broken.read_text().replace("KillMode=mixed", "KillMode=group"))
    result = _verify(tmp_path)
    assert result.returncode != 0
    assert "kill mode" in result.stderr.lower()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_unit_stops_its_process_group_unprivileged_and_hardened(name):
    unit = _settings(name)
    assert unit["ExecStart"] == [EXPECTED[name]]
    assert unit["KillMode"][-1] in {"mixed", "control-group"}
    assert unit["User"] == ["lanyard"] and unit.get("DynamicUser", ["no"]) == ["no"]
    assert unit["Restart"] == ["always"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert unit[key] == [value], (name, key)
    assert unit["ReadWritePaths"] == ["/srv/lanyard/instance"]
    assert "LANYARD_INSTANCE_PATH=/srv/lanyard/instance" in unit["Environment"][0]


def test_every_unit_is_in_the_folder_and_named_in_the_readme():
    assert {unit.name for unit in UNITS.glob("*.service")} == set(EXPECTED)
    readme = (UNITS.parent.parent / "README.md").read_text()
    assert all(f"deploy/systemd/{name}" in readme for name in EXPECTED)
