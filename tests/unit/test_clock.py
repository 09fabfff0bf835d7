"""The system clock's wait."""

from __future__ import annotations

import threading

import pytest

from mpupdate import clock


def test_waiting_without_timeout_returns_after_a_slice_where_slicing_is_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On Windows the wait is sliced so Ctrl-C gets through; the caller re-checks and waits again.
    monkeypatch.setattr(clock, "_WAIT_SLICE", 0.01)
    condition = threading.Condition()
    with condition:
        clock.SYSTEM_CLOCK.wait(condition, None)  # returns (nothing notifies it) instead of hanging


def test_the_slice_is_only_on_windows() -> None:
    import sys

    assert (clock._WAIT_SLICE is not None) is (sys.platform == "win32")
