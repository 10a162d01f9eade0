"""Running several clients at the same moment, for the race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


def race(targets: Iterable[Callable[[], None]], *, start_within: float = 20, finish_within: float = 120) -> None:
    """Start every target at the same moment (a barrier), each in its own thread, and wait for all; an
    exception in any of them, or one that never finishes, fails the test."""
    targets = list(targets)
    barrier = threading.Barrier(len(targets))
    failures: list[BaseException] = []

    def run(target) -> None:
        try:
            barrier.wait(timeout=start_within)
            target()
        except BaseException as error:  # noqa: BLE001  (reported to the main thread below)
            failures.append(error)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=finish_within)
        assert not thread.is_alive(), "a client never finished"
    assert not failures, failures
