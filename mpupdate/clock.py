"""Time as the update machinery sees it: a seam so the fake can run updates on a virtual clock.

The client waits for notifications through a :class:`Clock`. The real DLL (and the fake in its
``immediate`` and ``thread`` modes) uses :data:`SYSTEM_CLOCK`; the fake's ``timed`` mode supplies a
virtual clock whose ``wait`` advances virtual time instead of sleeping, so timeouts are tested
without wall-clock delays. A backend advertises its clock with a ``clock`` attribute.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Optional, Protocol


class Clock(Protocol):
    """What the client needs from time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def wait(self, condition: threading.Condition, timeout: Optional[float]) -> None:
        """Wait on ``condition`` (held by the caller) for a notify or ``timeout`` seconds.

        May return early (spuriously); callers re-check their predicate and deadline.
        """


class SystemClock:
    """The machine's clocks; waiting is ``Condition.wait``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def wait(self, condition: threading.Condition, timeout: Optional[float]) -> None:
        condition.wait(timeout)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
