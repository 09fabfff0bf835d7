"""The lanes of the conformance suite: one set of tests, three implementations of the DLL.

- ``python-fake``: :class:`mpupdate.fakes.FakeMpClient`, called from Python.
- ``native-fake``: the C library of ``mpupdate/fakes/native`` loaded by the real backend
  (``DllBackend``), so the compiled module, the loader and callbacks from foreign threads are
  exercised.
- ``real``: ``MpClient.dll`` itself. Only on Windows with ``--run-real``; skipped, with the
  reason, everywhere else. Tests that need a scripted scenario skip this lane, saying so.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, Optional

import pytest

from mpupdate.backends import Backend, DllBackend
from mpupdate.fakes import FakeMpClient

LANES = [
    "python-fake",
    "native-fake",
    pytest.param("real", marks=pytest.mark.real),
]


class Lane:
    """Makes the backends of one lane and knows what it can do."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.made: list[Backend] = []

    @property
    def scripted(self) -> bool:
        """True for the fakes, which replay a scenario; the real DLL does what the service does."""
        return self.kind != "real"

    def require_scripted(self) -> None:
        if not self.scripted:
            pytest.skip("needs a scripted scenario; the real DLL does what the service does")

    def backend(
        self, scenario: str = "updated", delivery: str = "thread", **options: Any
    ) -> Backend:
        """A backend for this lane; ``scenario``/``delivery`` apply to the fakes only."""
        if self.kind == "python-fake":
            backend: Backend = FakeMpClient(scenario, delivery=delivery, **options)
        elif self.kind == "native-fake":
            from mpupdate.fakes.native import NativeFakeMpClient

            backend = NativeFakeMpClient(scenario, delivery=delivery, **options)
        else:
            backend = DllBackend()
        self.made.append(backend)
        return backend

    def assert_clean(self, backend: Optional[Backend]) -> None:
        """The fakes can tell whether every handle was closed; the real DLL cannot."""
        if backend is not None and self.scripted:
            backend.assert_clean()  # type: ignore[attr-defined]


@pytest.fixture(params=LANES)
def lane(request: pytest.FixtureRequest) -> Iterator[Lane]:
    kind = request.param
    if kind == "real":
        if sys.platform != "win32":
            pytest.skip(f"real lane: needs Windows with Microsoft Defender; this is {sys.platform}")
        if not request.config.getoption("--run-real"):
            pytest.skip("real lane: opt in with --run-real (it runs real signature updates)")
    if kind == "native-fake":
        from mpupdate.fakes.native.build import unavailable_reason

        why = unavailable_reason()
        if why is not None:
            pytest.skip(f"native-fake lane: {why}")
    lane = Lane(kind)
    try:
        yield lane
        for backend in lane.made:
            lane.assert_clean(backend)
    finally:
        if kind == "native-fake":
            from mpupdate.fakes.native import NativeFakeMpClient

            if NativeFakeMpClient.in_use():
                NativeFakeMpClient.reset_library()  # do not let one failure spill into the next
