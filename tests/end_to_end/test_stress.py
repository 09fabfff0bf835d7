"""Race stress: many updates on many threads, with cancel, close, wait and garbage collection
racing the callbacks that the fakes' own threads deliver.

Public API only: :class:`mpupdate.Client`, :class:`mpupdate.UpdateOperation`,
:func:`mpupdate.update`, and both fakes in ``"thread"`` delivery:
:class:`~mpupdate.fakes.FakeMpClient` (callbacks from Python threads) and
:class:`~mpupdate.fakes.native.NativeFakeMpClient` (callbacks from threads the C library creates,
which Python never created). What must hold, whatever the
interleaving:

- no exception but the documented ones (``start_update`` on a closed Client: ValueError; nothing
  from ``cancel``, ``close`` or ``wait``), and no misuse of the DLL (the fakes are strict: a
  double close, a use after close or a manager closed before its updates raises there);
- every result has an outcome the race allows (a cancel through the manager handle may cancel
  the Client's other updates too; nothing times out);
- when ``close()`` returns, on whichever thread, what it closes is closed in the DLL, also when
  another thread's close of the same object is still running;
- at the end every handle is closed (``assert_clean``, ``open_handles``) and no update is left
  registered for callbacks (``registered_updates``; the pytest plugin checks it again).

Every wait has a timeout, and a thread that does not finish in time fails the test (a deadlock)
instead of hanging it. The default run takes a few seconds on 2 cores (CI runs it also under
the sanitizers, ``.ci/sanitizers``); ``MPUPDATE_STRESS_ROUNDS=N`` (default 1) multiplies every
test's rounds for a longer run on demand::

    MPUPDATE_STRESS_ROUNDS=50 pytest tests/end_to_end/test_stress.py
"""

from __future__ import annotations

import gc
import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Callable, Optional, Union

import pytest

import mpupdate
from mpupdate import Outcome, UpdateOperation
from mpupdate.fakes import FakeMpClient, registered_updates
from mpupdate.fakes.native import NativeFakeMpClient
from mpupdate.fakes.native.build import unavailable_reason

ROUNDS = max(1, int(os.environ.get("MPUPDATE_STRESS_ROUNDS", "1")))
THREADS = 16
#: The longest any one wait, join or update may take before the test calls it a deadlock.
TIMEOUT = 30.0
#: The outcomes an update of a successful scenario may have when cancels and closes race it.
RACED = frozenset({Outcome.UPDATED, Outcome.CANCELLED})

Fake = Union[FakeMpClient, NativeFakeMpClient]
MakeFake = Callable[[str], Fake]

_NATIVE_UNAVAILABLE = unavailable_reason()


@pytest.fixture(params=["python", "native"])
def make_fake(request: pytest.FixtureRequest) -> Iterator[MakeFake]:
    """Make fakes in thread delivery: ``make_fake(scenario)``; the native one leaves the library
    reusable whatever happened (one NativeFakeMpClient at a time in a process)."""
    if request.param == "native" and _NATIVE_UNAVAILABLE is not None:
        pytest.skip(f"native fake: {_NATIVE_UNAVAILABLE}")
    native = request.param == "native"

    def make(scenario: str) -> Fake:
        if native:
            return NativeFakeMpClient(scenario, delivery="thread")
        return FakeMpClient(scenario, delivery="thread")

    try:
        yield make
    finally:
        if native and NativeFakeMpClient.in_use():
            NativeFakeMpClient.reset_library()


class Failures:
    """Unexpected exceptions and broken expectations from any thread, reported together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[str] = []

    def add(self, text: str) -> None:
        with self._lock:
            self.items.append(text)

    def check(self, condition: bool, text: str) -> None:
        if not condition:
            self.add(text)

    def guard(self, name: str, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # any thread's surprise fails the test
                self.add(f"{name}: {type(exc).__name__}: {exc}")

        return run

    def assert_none(self) -> None:
        assert not self.items, f"{len(self.items)} failure(s):\n" + "\n".join(self.items[:20])


def run_threads(
    failures: Failures, bodies: list[tuple[str, Callable[[], None]]], start_together: bool = True
) -> None:
    """Run each body on its own thread (released together by a barrier) and join them all, each
    within TIMEOUT; a thread still running then is recorded as a deadlock."""
    barrier = threading.Barrier(len(bodies)) if start_together else None

    def released(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if barrier is not None:
                barrier.wait(TIMEOUT)
            body()

        return run

    threads = [
        threading.Thread(target=failures.guard(name, released(body)), name=name, daemon=True)
        for name, body in bodies
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {TIMEOUT:g} s (a deadlock?): {stuck}"


def check_result(failures: Failures, where: str, operation: UpdateOperation) -> None:
    """The operation has ended, closed its handle, and its result has an outcome ``RACED``
    allows, ending with the COMPLETE that says so."""
    result = operation.result
    if result is None:
        failures.add(f"{where}: no result after close")
        return
    failures.check(operation.handle is None, f"{where}: the handle is still open after close")
    failures.check(result.outcome in RACED, f"{where}: outcome {result.outcome}")
    if result.outcome is Outcome.UPDATED:
        failures.check(result.hresult == 0, f"{where}: UPDATED with 0x{result.hresult:08X}")
        failures.check(
            bool(result.events) and result.events[-1].notify is mpupdate.Notify.SIGUPDATE_COMPLETE,
            f"{where}: UPDATED without a COMPLETE last",
        )


def act(operation: UpdateOperation, choice: int) -> None:
    """One of the ways a program ends an update, all racing the callbacks."""
    if choice == 0:
        operation.wait(TIMEOUT)
    elif choice == 1:
        operation.cancel()
        operation.wait(TIMEOUT)
    elif choice == 2:
        operation.close()
    elif choice == 3:
        for _ in operation.events(timeout=TIMEOUT):
            break  # stop consuming early; close() ends it
    else:
        operation.cancel()
        operation.cancel()  # a second cancel is a no-op, never an error
    operation.close()


def assert_clean(fake: Fake, registered: int) -> None:
    gc.collect()
    fake.assert_clean()
    assert fake.open_handles == {}
    assert registered_updates() <= registered


# -- many updates, many threads -----------------------------------------------------------------


def test_many_updates_on_one_client_from_16_threads(make_fake: MakeFake) -> None:
    fake = make_fake("updated-three-packages")
    registered = registered_updates()
    failures = Failures()
    rounds = 63 * ROUNDS  # 16 x 63 = 1,008 operations on one Client
    client = mpupdate.Client(fake)

    def worker(index: int) -> Callable[[], None]:
        def body() -> None:
            chooser = random.Random(index)
            for round_ in range(rounds):
                choice = chooser.randrange(5)
                operation = client.start_update()
                act(operation, choice)
                check_result(failures, f"thread {index} round {round_} action {choice}", operation)

        return body

    run_threads(failures, [(f"one-client-{i}", worker(i)) for i in range(THREADS)])
    client.close()
    failures.assert_none()
    assert_clean(fake, registered)


def test_many_clients_from_16_threads(make_fake: MakeFake) -> None:
    fake = make_fake("updated-three-packages")
    registered = registered_updates()
    failures = Failures()
    rounds = 63 * ROUNDS  # 16 x 63 = 1,008 Clients, an operation each

    def worker(index: int) -> Callable[[], None]:
        def body() -> None:
            chooser = random.Random(1000 + index)
            for round_ in range(rounds):
                choice = chooser.randrange(5)
                with mpupdate.Client(fake) as client:
                    operation = client.start_update()
                    act(operation, choice)
                check_result(failures, f"thread {index} round {round_} action {choice}", operation)

        return body

    run_threads(failures, [(f"client-{i}", worker(i)) for i in range(THREADS)])
    failures.assert_none()
    assert_clean(fake, registered)


def test_update_from_16_threads_at_once(make_fake: MakeFake) -> None:
    fake = make_fake("updated")
    registered = registered_updates()
    failures = Failures()
    results: list[mpupdate.UpdateResult] = []
    lock = threading.Lock()

    def body() -> None:
        for _ in range(3 * ROUNDS):
            result = mpupdate.update(backend=fake, timeout=TIMEOUT)
            with lock:
                results.append(result)

    run_threads(failures, [(f"update-{i}", body) for i in range(THREADS)])
    failures.assert_none()
    assert len(results) == THREADS * 3 * ROUNDS
    assert {result.outcome for result in results} == {Outcome.UPDATED}
    assert all(len(result.events) == 16 for result in results)
    assert_clean(fake, registered)


# -- one update, everything racing it ------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["hung", "updated-three-packages"])
def test_wait_cancel_and_two_closes_race_the_callbacks(make_fake: MakeFake, scenario: str) -> None:
    """Per round: one update, and four threads at once: wait(), cancel(), close(), close().
    Each close() returns only once the update handle is closed in the DLL."""
    fake = make_fake(scenario)
    registered = registered_updates()
    failures = Failures()
    for round_ in range(30 * ROUNDS):
        race_one_update(fake, failures, f"round {round_}")
    failures.assert_none()
    assert_clean(fake, registered)


def race_one_update(fake: Fake, failures: Failures, where: str) -> None:
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        update_handle = fake.updates[-1].handle

        def closer(name: str) -> None:
            operation.close()
            failures.check(
                update_handle not in fake.open_handles,
                f"{where}: {name} returned with the update handle still open",
            )

        def waiter() -> None:
            result = operation.wait(TIMEOUT)
            failures.check(result.outcome in RACED, f"{where}: wait gave {result}")

        run_threads(
            failures,
            [
                ("wait", waiter),
                ("cancel", operation.cancel),
                ("close-1", lambda: closer("close-1")),
                ("close-2", lambda: closer("close-2")),
            ],
        )
        check_result(failures, where, operation)


def test_client_close_races_start_update(make_fake: MakeFake) -> None:
    """Per round: threads start updates on one Client while another closes it. Each start either
    gives an update that the close then closes, or raises ValueError (the Client is closed); the
    manager is never closed before its updates."""
    fake = make_fake("hung")
    registered = registered_updates()
    failures = Failures()
    for round_ in range(10 * ROUNDS):
        race_start_and_close(fake, failures, f"round {round_}", starters=4)
    failures.assert_none()
    assert_clean(fake, registered)


def race_start_and_close(fake: Fake, failures: Failures, where: str, starters: int) -> None:
    client = mpupdate.Client(fake)
    started: list[UpdateOperation] = []
    lock = threading.Lock()

    def starter() -> None:
        for _ in range(3):
            try:
                operation = client.start_update()
            except ValueError:
                failures.check(client.closed, f"{where}: ValueError on an open Client")
                return
            with lock:
                started.append(operation)

    def closer() -> None:
        time.sleep(random.random() * 0.002)
        client.close()
        failures.check(
            fake.open_handles == {},
            f"{where}: Client.close() returned with {fake.open_handles} open",
        )

    run_threads(failures, [*((f"start-{i}", starter) for i in range(starters)), ("close", closer)])
    for operation in started:
        check_result(failures, where, operation)
    failures.guard(f"{where}: a second close", client.close)()  # nothing left to close


def test_two_client_closes_at_once_with_updates_running(make_fake: MakeFake) -> None:
    """Each Client.close() returns only once the manager and all its updates are closed, also
    the one that finds the other's close running."""
    fake = make_fake("hung")
    registered = registered_updates()
    failures = Failures()
    for round_ in range(10 * ROUNDS):
        race_two_client_closes(fake, failures, f"round {round_}")
    failures.assert_none()
    assert_clean(fake, registered)


def race_two_client_closes(fake: Fake, failures: Failures, where: str) -> None:
    client = mpupdate.Client(fake)
    operations = [client.start_update() for _ in range(3)]

    def closer(name: str) -> None:
        client.close()
        failures.check(
            fake.open_handles == {}, f"{where}: {name} returned with {fake.open_handles} open"
        )

    run_threads(
        failures, [("close-1", lambda: closer("close-1")), ("close-2", lambda: closer("close-2"))]
    )
    for operation in operations:
        check_result(failures, where, operation)
        failures.check(
            operation.result is None or operation.result.outcome is Outcome.CANCELLED,
            f"{where}: a hung update ended {operation.result}",
        )


# -- garbage collection ------------------------------------------------------------------------


def test_garbage_collection_races_the_callbacks(make_fake: MakeFake) -> None:
    """Updates dropped unclosed in reference cycles (their progress function holds them), so
    only the collector closes them, while callbacks arrive; and whole Clients dropped the same
    way, their manager handle collected with their updates (the manager must be closed last).

    Automatic collection is off meanwhile and a thread of its own collects (besides the workers,
    now and then): with the real DLL no Python runs on a delivering thread, but the fakes'
    delivering threads run their Python model, where an automatic pass could close an update
    "from inside the callback", which the fakes rightly refuse and MpClient never sees."""
    fake = make_fake("updated-three-packages")
    registered = registered_updates()
    failures = Failures()
    rounds = 4 * ROUNDS
    stop = threading.Event()

    def abandon(client: mpupdate.Client, consume: bool) -> None:
        holder: list[Optional[UpdateOperation]] = [None]
        operation = client.start_update(progress=lambda progress: holder)
        holder[0] = operation  # operation -> progress -> holder -> operation: a cycle
        if consume:
            for _ in operation.events(timeout=TIMEOUT):
                break

    def worker(index: int) -> Callable[[], None]:
        def body() -> None:
            for round_ in range(rounds):
                client = mpupdate.Client(fake)
                abandon(client, consume=bool((index + round_) % 2))
                abandon(client, consume=False)
                if round_ % 2:
                    client.close()  # closes what the collector has not
                # else: the Client goes with its updates, all to the collector
                if round_ % 3 == 2:
                    gc.collect()  # a worker collects too, racing the collector thread

        return body

    def collector() -> None:
        while not stop.is_set():
            gc.collect()
            time.sleep(0.001)

    collecting = threading.Thread(target=failures.guard("gc", collector), daemon=True)
    automatic = gc.isenabled()
    gc.disable()
    try:
        collecting.start()
        run_threads(failures, [(f"gc-worker-{i}", worker(i)) for i in range(THREADS)])
    finally:
        stop.set()
        collecting.join(TIMEOUT)
        if automatic:
            gc.enable()
    assert not collecting.is_alive()
    gc.collect()
    failures.assert_none()
    assert_clean(fake, registered)
