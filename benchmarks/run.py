"""Every benchmark in one command, printed as one table against DESIGN.md section 9's budgets.

Usage: python -m benchmarks.run [--quick]
Exits non-zero only when a figure could not be measured (a budget that is over is reported, not fatal).
"""

from __future__ import annotations

import argparse
import importlib
import traceback

from benchmarks.common import Figure, print_table


def suite(quick: bool) -> list[tuple[str, dict]]:
    events = 100_000 if quick else 1_000_000
    requests = 300 if quick else 2000
    trust = {"staff": 500, "devices": 2000, "asset_count": 5000, "seconds": 3.0} if quick else {}
    cpu_requests = 100 if quick else 500
    search = {"staff": 500, "devices": 2000, "runs": 20} if quick else {}
    booking_requests = 60 if quick else 200  # per week view; 500 cameras and 1,500 bookings either way
    plan = [
        ("benchmarks.cpu_bench", {"backend": "sqlite", "requests": cpu_requests}),
        ("benchmarks.cpu_bench", {"backend": "postgresql", "requests": cpu_requests}),
        ("benchmarks.server_bench", {"backend": "sqlite", "requests": requests}),
        ("benchmarks.server_bench", {"backend": "postgresql", "requests": requests}),
        ("benchmarks.permissions_bench", {"backend": "sqlite", "requests": requests}),
        ("benchmarks.permissions_bench", {"backend": "postgresql", "requests": requests}),
        ("benchmarks.push_bench", {"requests": requests // 2}),
        ("benchmarks.equipment_bench", {}),
        ("benchmarks.page_weight", {}),
        ("benchmarks.lighthouse", {"runs": 1 if quick else 3}),
        ("benchmarks.booking_week_bench", {"backend": "sqlite", "requests": booking_requests}),
        ("benchmarks.booking_week_bench", {"backend": "postgresql", "requests": booking_requests}),
        ("benchmarks.search_bench", {"backend": "sqlite", **search}),
        ("benchmarks.search_bench", {"backend": "postgresql", **search}),
        ("benchmarks.trust_scale", {"backend": "sqlite", **trust}),
        ("benchmarks.trust_scale", {"backend": "postgresql", **trust}),
        ("benchmarks.audit_scale", {"backend": "sqlite", "events": events}),
        ("benchmarks.audit_scale", {"backend": "postgresql", "events": events}),
    ]
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a first look")
    parser.add_argument("--only", default="", help="comma-separated module names to run (e.g. page_weight)")
    arguments = parser.parse_args()
    figures: list[Figure] = []
    failures: list[str] = []
    for module_name, kwargs in suite(arguments.quick):
        if arguments.only and module_name.rsplit(".", 1)[1] not in arguments.only.split(","):
            continue
        try:
            module = importlib.import_module(module_name)
            figures += module.measure(**kwargs)
        except Exception:  # noqa: BLE001  (report every benchmark that could not measure, then fail)
            failures.append(f"{module_name} {kwargs}:\n{traceback.format_exc()}")
    if figures:
        print_table(figures)
    for failure in failures:
        print("\nCOULD NOT MEASURE", failure)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
