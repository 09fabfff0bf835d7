"""The handle lifecycle as a Hypothesis state machine, against a model, on both fakes.

Rules: open a Client, start an update on it, cancel it, wait for it (bounded), close it, close it
again, close the Client (twice), start on a closed Client, iterate an update's events from a
second thread while this one consumes. The model says what each must do (succeed, be a no-op,
raise which error); the invariants say what must always hold: the fake saw no misuse (it is
strict: a double close or a use after close raises there and is recorded), the fake's open
handles are exactly the model's, and nothing is registered for callbacks beyond the model's
running updates.

Timed delivery on the fake's virtual clock: waits jump in virtual time, so nothing sleeps.
"""

from __future__ import annotations

import threading
from typing import Any, Optional, Union

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import mpupdate
from mpupdate.fakes import FakeMpClient, registered_updates
from mpupdate.fakes.native import NativeFakeMpClient
from mpupdate.fakes.native.build import unavailable_reason
from mpupdate.machine import Outcome

Fake = Union[FakeMpClient, NativeFakeMpClient]
SCENARIOS = ["updated", "hung", "network-failure", "already-current"]


class Lifecycle(RuleBasedStateMachine):
    """Subclassed below once per fake kind (``make`` builds the fake)."""

    make: Any = FakeMpClient
    clients = Bundle("clients")
    operations = Bundle("operations")

    def __init__(self) -> None:
        super().__init__()
        self.fakes: list[Fake] = []
        self.open_clients: set[int] = set()  # id() of the model's open clients
        self.running: set[int] = set()  # id() of operations whose handle is open
        self.all_clients: list[mpupdate.Client] = []
        self.all_operations: list[mpupdate.UpdateOperation] = []
        self.baseline = registered_updates()

    # -- rules ----------------------------------------------------------------------------------

    @initialize(scenario=st.sampled_from(SCENARIOS))
    def make_fake(self, scenario: str) -> None:
        # One fake per run, every Client on it (the native fake serves one scenario at a time).
        self.fakes.append(self.make(scenario, delivery="timed"))

    @rule(target=clients)
    def open_client(self) -> mpupdate.Client:
        client = mpupdate.Client(self.fakes[0])
        self.all_clients.append(client)
        self.open_clients.add(id(client))
        return client

    @rule(target=operations, client=clients)
    def start(self, client: mpupdate.Client) -> Optional[mpupdate.UpdateOperation]:
        if id(client) not in self.open_clients:
            with pytest.raises(ValueError, match="this Client is closed"):
                client.start_update()
            return None
        operation = client.start_update()
        self.all_operations.append(operation)
        self.running.add(id(operation))
        return operation

    @rule(operation=operations)
    def cancel(self, operation: Optional[mpupdate.UpdateOperation]) -> None:
        if operation is None:
            return
        operation.cancel()  # never raises here: an ended or closed update makes it a no-op

    @rule(operation=operations, timeout=st.sampled_from([0.0, 0.5, 30.0]))
    def wait(self, operation: Optional[mpupdate.UpdateOperation], timeout: float) -> None:
        if operation is None:
            return
        result = operation.wait(timeout)
        assert result is operation.result and result.outcome in set(Outcome)
        assert operation.handle is None  # an update that has a result has its handle closed
        self.running.discard(id(operation))

    @rule(operation=operations)
    def close(self, operation: Optional[mpupdate.UpdateOperation]) -> None:
        if operation is None:
            return
        operation.close()
        operation.close()  # a second close is a no-op
        assert operation.handle is None and operation.result is not None
        self.running.discard(id(operation))

    @rule(client=clients)
    def close_client(self, client: mpupdate.Client) -> None:
        client.close()
        client.close()
        self.open_clients.discard(id(client))
        for operation in self.all_operations:
            if operation.client is client:
                assert operation.handle is None and operation.result is not None
                self.running.discard(id(operation))

    @precondition(lambda self: bool(self.running))
    @rule(operation=operations)
    def two_consumers(self, operation: Optional[mpupdate.UpdateOperation]) -> None:
        if operation is None or operation.result is not None:
            return
        iterator = operation.events(30.0)
        errors: list[BaseException] = []
        next(iterator, None)  # this thread consumes now

        def other() -> None:
            try:
                next(operation.events(30.0), None)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(30.0)
        iterator.close()
        if not operation.done:  # the other thread was refused while we held the iterator
            assert [str(e) for e in errors] == [
                "another thread is already consuming this update's events"
            ]
        else:  # the one event this thread took ended it: concluded, its handle closed
            assert operation.handle is None
            self.running.discard(id(operation))

    # -- invariants -----------------------------------------------------------------------------

    @invariant()
    def no_misuse_and_handles_as_modelled(self) -> None:
        for operation in self.all_operations:  # a result exactly when the handle is closed
            assert (operation.result is None) == (operation.handle is not None)
        for fake in self.fakes:
            assert fake.violations == []
        open_updates = sum(
            1 for fake in self.fakes for kind in fake.open_handles.values() if kind == "update"
        )
        open_managers = sum(
            1 for fake in self.fakes for kind in fake.open_handles.values() if kind == "manager"
        )
        assert open_managers == len(self.open_clients)
        assert open_updates == len(self.running)
        assert registered_updates() - self.baseline == len(self.running)

    def teardown(self) -> None:
        try:
            for client in self.all_clients:
                client.close()
            for fake in self.fakes:
                fake.assert_clean()
        finally:
            if self.make is NativeFakeMpClient and NativeFakeMpClient.in_use():
                NativeFakeMpClient.reset_library()


SETTINGS = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class PythonFakeLifecycle(Lifecycle):
    make = FakeMpClient


TestPythonFakeLifecycle = PythonFakeLifecycle.TestCase
TestPythonFakeLifecycle.settings = SETTINGS


class NativeFakeLifecycle(Lifecycle):
    make = NativeFakeMpClient


_WHY = unavailable_reason()
TestNativeFakeLifecycle = pytest.mark.skipif(
    _WHY is not None, reason=f"compiles the native fake: {_WHY}"
)(NativeFakeLifecycle.TestCase)
TestNativeFakeLifecycle.settings = SETTINGS
