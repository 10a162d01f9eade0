"""`make mutation` / `make mutation-ci`: `mutmut run` over some modules, with only those modules' own tests.

mutmut first runs every file in [tool.mutmut] pytest_add_cli_args_test_selection (to learn which tests
cover which function) and then each mutant against the covering tests among them. With one selection for
every module, a run of one small module paid for the whole selection's pass, and CI's run grew with each
module added for `make mutation`. Each module therefore names its tests in [tool.lanyard.mutation.tests];
this runs `mutmut run` with the union of the chosen modules' tests in place of the full selection.

usage: python tools/mutation_run.py [--ci | MODULE ...] -- [mutmut run arguments]
"""

from __future__ import annotations

import sys
from pathlib import Path

from mutmut import configuration
from mutmut.__main__ import cli

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutation_report import ROOT, _tool_config, ci_modules, configured_modules, module_path  # noqa: E402


def tests_for(modules: list[str]) -> list[str]:
    """The union of the modules' tests, in order; every module must name existing test files."""
    named = _tool_config().get("lanyard", {}).get("mutation", {}).get("tests", {})
    selection: list[str] = []
    for module in modules:
        tests = named.get(module)
        if not tests:
            raise SystemExit(f"[tool.lanyard.mutation.tests] names no tests for {module}")
        missing = [path for path in tests if not (ROOT / path).is_file()]
        if missing:
            raise SystemExit(f"[tool.lanyard.mutation.tests] {module}: no such test file {', '.join(missing)}")
        selection += [path for path in tests if path not in selection]
    return selection


def main(argv: list[str]) -> None:
    at = argv.index("--") if "--" in argv else len(argv)
    ours, theirs = argv[:at], argv[at + 1 :]
    modules = ci_modules() if ours == ["--ci"] else [module_path(name) for name in ours] or configured_modules()
    configuration.config().pytest_add_cli_args_test_selection = tests_for(modules)
    cli(["run", *theirs])


if __name__ == "__main__":
    main(sys.argv[1:])
