"""A pytest plugin for mutation runs only (`-p tests.mutation_plugin`, set in [tool.mutmut] in pyproject.toml).

mutmut starts a fresh pytest session for every mutant, and each session would migrate its SQLite template
database from empty again (tens of seconds on a busy machine, most of a mutant's time). This keeps one
migrated template per version of migrations/ in the temporary directory and copies it instead. The tests
themselves are unchanged: each still gets its own copy of a database the real migrations made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cached_migrations(migrate):
    cache = Path(tempfile.gettempdir()) / f"lanyard-mutation-{os.getuid()}-{_fingerprint()}.db"

    def migrated(url: str, instance: Path) -> None:
        if not url.startswith("sqlite:///"):
            migrate(url, instance)
            return
        target = Path(url.removeprefix("sqlite:///"))
        if not cache.exists():
            migrate(url, instance)
            partial = cache.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(target, partial)
            partial.replace(cache)  # atomic: a half-written cache is never read
            return
        shutil.copyfile(cache, target)

    return migrated


def pytest_sessionstart(session) -> None:
    conftest = sys.modules.get("tests.conftest")
    if conftest is not None and not getattr(conftest._migrated, "mutation_cached", False):
        conftest._migrated = _cached_migrations(conftest._migrated)
        conftest._migrated.mutation_cached = True
