"""Print the mutation score per module from mutmut's results, and fail when a module is under the target.

Run after `mutmut run` (`make mutation` does both): python tools/mutation_report.py [module ...]

A module is a dotted name or a path (app.services.imei or app/services/imei.py); with none, every module
in [tool.mutmut] only_mutate is reported. A module too large to finish is limited to the functions that
protect people, named in [tool.lanyard.mutation] functions in pyproject.toml (a method as Class.method); only those functions' mutants
are run and counted. `--patterns` prints the mutmut mutant patterns for the modules (the Makefile runs
`mutmut run` with them); `--ci` means the modules in [tool.lanyard.mutation] ci. For each module it reads
mutants/<path>.meta, which mutmut writes with an exit code per mutant, and counts:

- killed: a test failed (or timed out, or the type checker refused the mutant);
- survived: every test that covers the mutated function passed, or no test covers it;
- equivalent: a survivor listed in tests/mutation_equivalents.toml with the reason no test can tell it
  apart from the original (the entry also quotes the text the mutant adds, `change`, or deletes,
  `removed`, so a stale entry is not trusted);
- not run: mutmut has not checked it yet.

Score = killed / (killed + survived), equivalents left out. The exit code is 1 when any module is under
the target (90% unless --target says otherwise), has mutants not run, or has no results at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
KILLED = {1, 3, 36, 37, 24, -24, 152, 255}  # test failure, pytest internal error, timeouts, type check
SURVIVED = {0, 5, 33}  # tests passed, or no test covers the function


@dataclass
class ModuleScore:
    module: str
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: int = 0
    not_run: int = 0
    other: list[str] = field(default_factory=list)

    @property
    def scored(self) -> int:
        return self.killed + len(self.survived)

    @property
    def score(self) -> float | None:
        return None if self.scored == 0 else 100.0 * self.killed / self.scored


def module_path(name: str) -> str:
    if name.endswith(".py"):
        return name
    return name.replace(".", "/") + ".py"


def _tool_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]


def configured_modules() -> list[str]:
    return list(_tool_config()["mutmut"]["only_mutate"])


def ci_modules() -> list[str]:
    return list(_tool_config().get("lanyard", {}).get("mutation", {}).get("ci", []))


def limited_functions() -> dict[str, list[str]]:
    """Modules mutated only in some functions: {path: [function, ...]} from [tool.lanyard.mutation]."""
    return dict(_tool_config().get("lanyard", {}).get("mutation", {}).get("functions", {}))


def dotted(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def mangled(name: str) -> str:
    """mutmut's name for a function (x_<function>) or, written Class.method, a method (xǁClassǁmethod)."""
    owner, _, method = name.rpartition(".")
    return f"x\u01c1{owner}\u01c1{method}" if owner else f"x_{name}"


def mutant_patterns(path: str, functions: dict[str, list[str]]) -> list[str]:
    """mutmut's names for a module's mutants are <dotted module>.<mangled function>__mutmut_<n>."""
    if path not in functions:
        return [f"{dotted(path)}.*"]
    return [f"{dotted(path)}.{mangled(name)}__mutmut_*" for name in functions[path]]


def in_scope(mutant: str, path: str, functions: dict[str, list[str]]) -> bool:
    if path not in functions:
        return True
    return any(mutant.startswith(f"{dotted(path)}.{mangled(name)}__mutmut_") for name in functions[path])


def load_equivalents() -> dict[str, dict]:
    if not EQUIVALENTS.exists():
        return {}
    entries = tomllib.loads(EQUIVALENTS.read_text("utf-8")).get("equivalent", [])
    found = {}
    for entry in entries:
        if not entry.get("mutant") or not entry.get("reason") or not (entry.get("change") or entry.get("removed")):
            raise SystemExit(f"{EQUIVALENTS}: every entry needs mutant, change (or removed) and reason: {entry}")
        found[entry["mutant"]] = entry
    return found


def mutant_diff(mutant: str, path: str) -> str:
    """The diff mutmut shows for ``mutant`` (read from mutants/, as `mutmut show` does)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    return get_diff_for_mutant(mutant, path=Path(path))


def score_module(
    path: str, equivalents: dict[str, dict], stale: list[str], functions: dict[str, list[str]] | None = None
) -> ModuleScore | None:
    meta = ROOT / "mutants" / (path + ".meta")
    if not meta.exists():
        return None
    exit_codes = json.loads(meta.read_text("utf-8"))["exit_code_by_key"]
    result = ModuleScore(path)
    for mutant, code in sorted(exit_codes.items()):
        if not in_scope(mutant, path, functions or {}):
            continue
        if code is None:
            result.not_run += 1
        elif code in KILLED:
            result.killed += 1
        elif code in SURVIVED:
            entry = equivalents.get(mutant)
            if entry is not None and _still_matches(entry, path):
                result.equivalent += 1
            else:
                if entry is not None:
                    stale.append(mutant)
                result.survived.append(mutant)
        else:
            result.other.append(f"{mutant} (exit code {code})")
            result.survived.append(mutant)
    return result


def _still_matches(entry: dict, path: str) -> bool:
    """An entry counts only while the mutant it names still makes the change it quotes."""
    diff = mutant_diff(entry["mutant"], path).splitlines()
    added = [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]
    removed = [line[1:].strip() for line in diff if line.startswith("-") and not line.startswith("---")]
    if entry.get("change") and not any(entry["change"].strip() in line for line in added):
        return False
    return not entry.get("removed") or any(entry["removed"].strip() in line for line in removed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="dotted names or paths; default: [tool.mutmut] only_mutate")
    parser.add_argument("--target", type=float, default=90.0, help="lowest score allowed, in percent (default 90)")
    parser.add_argument("--list-survivors", action="store_true", help="name every surviving mutant")
    parser.add_argument("--patterns", action="store_true", help="print the mutmut mutant patterns and stop")
    parser.add_argument("--ci", action="store_true", help="the modules CI runs ([tool.lanyard.mutation] ci)")
    args = parser.parse_args(argv)

    import os

    os.chdir(ROOT)  # mutmut reads its configuration and mutants/ from the working directory
    paths = [module_path(name) for name in args.modules] or (ci_modules() if args.ci else configured_modules())
    functions = limited_functions()
    if args.patterns:
        print(" ".join(f'"{pattern}"' for path in paths for pattern in mutant_patterns(path, functions)))
        return 0
    equivalents = load_equivalents()
    stale: list[str] = []
    failing = []
    print(f"{'module':40} {'killed':>7} {'survived':>8} {'equiv.':>6} {'not run':>7} {'score':>7}")
    for path in paths:
        result = score_module(path, equivalents, stale, functions)
        if result is None:
            print(f"{path:40} no results: run `make mutation MODULES={path}` first")
            failing.append(path)
            continue
        score = result.score
        shown = "-" if score is None else f"{score:.1f}%"
        label = f"{path} (some functions)" if path in functions else path
        print(f"{label:40} {result.killed:7} {len(result.survived):8} {result.equivalent:6} {result.not_run:7} {shown:>7}")
        if result.not_run or score is None or score < args.target:
            failing.append(path)
        if args.list_survivors or (score is not None and score < args.target):
            for mutant in result.survived:
                print(f"    survived: {mutant}   (mutmut show {mutant})")
        for line in result.other:
            print(f"    unusual result: {line}")
    for mutant in stale:
        print(f"stale entry in {EQUIVALENTS.name}: {mutant} no longer makes the quoted change; check it again")
    if failing:
        print(f"\nUnder {args.target:g}% (or incomplete): {', '.join(failing)}")
        return 1
    print(f"\nEvery module at or above {args.target:g}% of non-equivalent mutants killed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
