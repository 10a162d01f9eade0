"""`make mutation-ci`: mutmut over the CI modules, with only the CI modules' own test files.

mutmut runs every file in [tool.mutmut] pytest_add_cli_args_test_selection once before the first mutant
(to learn which tests cover which function), so each module added for `make mutation` would lengthen
CI's run too. CI names its own, smaller selection in [tool.lanyard.mutation] ci_tests; this runs
`mutmut run` with that selection in place of the full one, and passes the other arguments through.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from mutmut import configuration
from mutmut.__main__ import cli

ROOT = Path(__file__).resolve().parent.parent


def ci_tests() -> list[str]:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["lanyard"]["mutation"]
    tests = list(settings["ci_tests"])
    missing = [path for path in tests if not (ROOT / path).is_file()]
    if not tests or missing:
        raise SystemExit(f"[tool.lanyard.mutation] ci_tests: no such test file {missing}" if missing else "ci_tests is empty")
    return tests


def main(argv: list[str]) -> None:
    configuration.config().pytest_add_cli_args_test_selection = ci_tests()
    cli(["run", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
