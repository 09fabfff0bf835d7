"""What one notification costs on its way from the DLL to the caller, and what it keeps in memory.

Run on demand (not part of the test suite):  python benchmarks/bench_notifications.py [count]

It replays a scenario of ``count`` DOWNLOAD_PROGRESS notifications (with data and a path) and
times, per notification:

- ``callback``: inside a blocking MpUpdateStart with immediate delivery, so only the delivery
  runs: the native fake's C loop -> compiled extern "Python" trampoline -> registry lookup ->
  decode into a frozen Event -> queue. (With the Python fake, the fake's own Python code that
  builds each MPCALLBACK_DATA is included, so that row is an upper bound.)
- ``end to end``: mpupdate.update() with ASYNC, as programs call it: delivery plus the caller's
  thread taking each event from the queue and feeding the state machine.

and the memory a finished UpdateResult holds per event (tracemalloc).
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from typing import Any, Callable

import mpupdate
from mpupdate.fakes import FakeMpClient, Scenario
from mpupdate.fakes.scenario import ScenarioComplete, ScenarioNotification, SigUpdateData

#: Notifications besides the progress ones: START, search x2, download start/complete,
#: install start/complete, COMPLETE.
EXTRA = 8
PATH = r"C:\Windows\SoftwareDistribution\Download\Install\am_delta_patch_1.419.135.0.exe"


def scenario(count: int) -> Scenario:
    """A grammatical update whose download reports progress ``count`` times."""
    N = mpupdate.Notify

    def item(at: float, notify: mpupdate.Notify, percent: int = 0, stage: int = 2) -> Any:
        return ScenarioNotification(
            at, int(notify), 0, SigUpdateData(percent, 1, 0, 2, stage, PATH)
        )

    middle = [
        ScenarioNotification(0.0, int(N.SIGUPDATE_SEARCH_START)),
        item(0.0, N.SIGUPDATE_SEARCH_COMPLETE, 100, 1),
        item(0.0, N.SIGUPDATE_DOWNLOAD_START),
        *(item(i * 0.001, N.SIGUPDATE_DOWNLOAD_PROGRESS, i * 100 // count) for i in range(count)),
        item(count * 0.001, N.SIGUPDATE_DOWNLOAD_COMPLETE, 100),
        item(count * 0.001, N.SIGUPDATE_INSTALL_START, 0, 3),
        item(count * 0.001, N.SIGUPDATE_INSTALL_COMPLETE, 100, 3),
    ]
    return Scenario("bench", notifications=tuple(middle), complete=ScenarioComplete(count * 0.001))


def best_of(runs: int, work: Callable[[], float]) -> float:
    return min(work() for _ in range(runs))


def per_event_callback(make: Callable[[], Any], count: int) -> float:
    def once() -> float:
        with mpupdate.Client(make()) as client:
            started = time.perf_counter()
            operation = client.start_update(blocking=True)  # every callback runs in here
            elapsed = time.perf_counter() - started
            operation.wait()
            operation.close()
        return elapsed / (count + EXTRA)

    return best_of(5, once)


def per_event_end_to_end(make: Callable[[], Any], count: int) -> float:
    def once() -> float:
        backend = make()
        started = time.perf_counter()
        result = mpupdate.update(backend=backend, strict=True)
        elapsed = time.perf_counter() - started
        assert len(result.events) == count + EXTRA
        return elapsed / (count + EXTRA)

    return best_of(5, once)


def bytes_per_event(make: Callable[[], Any], count: int) -> float:
    backend = make()
    gc.collect()
    tracemalloc.start()
    result = mpupdate.update(backend=backend)
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(result.events) == count + EXTRA
    return held / len(result.events)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    drawn = scenario(count)
    makers: dict[str, Callable[[], Any]] = {
        "python fake": lambda: FakeMpClient(drawn, delivery="immediate"),
    }
    try:
        from mpupdate.fakes.native import NativeFakeMpClient

        makers["native fake"] = lambda: NativeFakeMpClient(drawn, delivery="immediate")
    except Exception as exc:  # no compiler here: report and go on
        print(f"(native fake unavailable: {exc})")
    print(f"Python {sys.version.split()[0]}, {count} notifications with data, best of 5")
    print(f"{'backend':<12} {'callback':>12} {'end to end':>12} {'memory':>14}")
    for name, make in makers.items():
        callback = per_event_callback(make, count)
        end_to_end = per_event_end_to_end(make, count)
        memory = bytes_per_event(make, count)
        print(
            f"{name:<12} {callback * 1e9:>9.0f} ns {end_to_end * 1e9:>9.0f} ns "
            f"{memory:>8.0f} B/event"
        )


if __name__ == "__main__":
    main()
