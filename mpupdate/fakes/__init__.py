"""The double of MpClient.dll, for testing update automation on any OS.

``FakeMpClient`` is a backend with the DLL's exports that replays a :class:`Scenario` and calls
the binding back through its real compiled callback. Use it wherever ``mpupdate`` takes a
backend::

    from mpupdate.fakes import FakeMpClient
    fake = FakeMpClient("network-failure", delivery="timed")
    result = mpupdate.update(backend=fake, check=False)
    assert result.outcome is mpupdate.Outcome.FAILED
    fake.assert_clean()

``scenarios`` is the built-in library (``scenarios.names()``, ``scenarios.get(name)``).
"""

from __future__ import annotations

from . import scenarios
from .clock import VirtualClock, VirtualClockStall
from .dll import FakeCall, FakeHang, FakeMpClient, FakeUpdate, FakeViolation
from .scenario import (
    Scenario,
    ScenarioComplete,
    ScenarioError,
    ScenarioNotification,
    SigUpdateData,
)

__all__ = [
    "FakeCall",
    "FakeHang",
    "FakeMpClient",
    "FakeUpdate",
    "FakeViolation",
    "Scenario",
    "ScenarioComplete",
    "ScenarioError",
    "ScenarioNotification",
    "SigUpdateData",
    "VirtualClock",
    "VirtualClockStall",
    "scenarios",
]
