"""Time as the update machinery sees it: a seam so the fake can run updates on a virtual clock.

The client waits for notifications through a :class:`Clock`. The real DLL (and the fake in its
``immediate`` and ``thread`` modes) uses :data:`SYSTEM_CLOCK`; the fake's ``timed`` mode supplies a
virtual clock whose ``wait`` advances virtual time instead of sleeping, so timeouts are tested
without wall-clock delays. A backend advertises its clock with a ``clock`` attribute.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Optional, Protocol
else:  # typing's would import re (and typing) at start-up
    from ._classes import Protocol


class Waitable(Protocol):
    """What a Clock waits on: a ``threading.Condition``, or an update's notification queue
    (:class:`mpupdate._native.Sink`, which waits in C without the GIL)."""

    def acquire(self) -> bool: ...

    def release(self) -> None: ...

    def wait(self, timeout: Optional[float] = None) -> bool: ...


class Clock(Protocol):
    """What the client needs from time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def wait(self, condition: Waitable, timeout: Optional[float]) -> None:
        """Wait on ``condition`` (held by the caller) for a notify or ``timeout`` seconds.

        May return early (spuriously); callers re-check their predicate and deadline.
        """


#: On Windows, before CPython 3.14, Ctrl-C cannot interrupt a lock wait (CPython gh-74157 /
#: gh-125541): waiting in slices lets KeyboardInterrupt through within this many seconds.
_WAIT_SLICE: Optional[float] = 0.25 if sys.platform == "win32" else None


class SystemClock:
    """The machine's clocks; waiting is ``Condition.wait`` (in slices on Windows, for Ctrl-C)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        from datetime import datetime, timezone  # on first use: not needed to import mpupdate

        return datetime.now(timezone.utc)

    def wait(self, condition: Waitable, timeout: Optional[float]) -> None:
        if _WAIT_SLICE is not None and (timeout is None or timeout > _WAIT_SLICE):
            timeout = _WAIT_SLICE  # the caller re-checks its predicate and deadline
        condition.wait(timeout)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()
