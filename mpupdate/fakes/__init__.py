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
``tracking()`` collects the fakes made in a block, and ``registered_updates()`` counts the
updates still registered for callbacks: what a test harness checks at the end of each test.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from . import scenarios
    from .clock import VirtualClock, VirtualClockStall
    from .dll import (
        DeliveryEngine,
        FakeCall,
        FakeHang,
        FakeMpClient,
        FakeUpdate,
        FakeViolation,
        PreparedNotification,
        tracking,
    )
    from .scenario import (
        Scenario,
        ScenarioComplete,
        ScenarioError,
        ScenarioNotification,
        SigUpdateData,
    )

#: Where each name lives. They are imported on first use (PEP 562), so that importing a module of
#: this package (the pytest plugin, loaded into every pytest run once mpupdate is installed)
#: costs nothing until a fake is asked for.
_LAZY = {
    "scenarios": ".scenarios",
    "VirtualClock": ".clock",
    "VirtualClockStall": ".clock",
    **dict.fromkeys(
        (
            "DeliveryEngine",
            "FakeCall",
            "FakeHang",
            "FakeMpClient",
            "FakeUpdate",
            "FakeViolation",
            "PreparedNotification",
            "tracking",
        ),
        ".dll",
    ),
    **dict.fromkeys(
        ("Scenario", "ScenarioComplete", "ScenarioError", "ScenarioNotification", "SigUpdateData"),
        ".scenario",
    ),
}

__all__ = [
    "DeliveryEngine",
    "FakeCall",
    "FakeHang",
    "FakeMpClient",
    "FakeUpdate",
    "FakeViolation",
    "PreparedNotification",
    "Scenario",
    "ScenarioComplete",
    "ScenarioError",
    "ScenarioNotification",
    "SigUpdateData",
    "VirtualClock",
    "VirtualClockStall",
    "registered_updates",
    "scenarios",
    "tracking",
]


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(where, __name__)
    value = module if name == "scenarios" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def registered_updates() -> int:
    """How many updates are registered to receive callbacks in this process right now.

    Every update the client starts registers until its operation is closed; a test that ends
    with more than it began with left an operation open (the pytest plugin checks this).
    """
    from mpupdate import _native

    return _native.registry_size()
