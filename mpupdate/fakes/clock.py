"""A virtual clock: time moves only when told, so timing tests never sleep.

The fake's ``timed`` delivery schedules each notification on a :class:`VirtualClock`. The client
waits through the backend's clock (see :mod:`mpupdate.clock`); this clock's :meth:`wait` does not
block but jumps to the next scheduled moment (firing what is due, on the waiting thread) or to
the caller's deadline, whichever comes first. A test can also move time itself with
:meth:`advance`.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from mpupdate.clock import Waitable

__all__ = ["DEFAULT_START", "SteppingClock", "Timer", "VirtualClock", "VirtualClockStall"]

#: Where virtual wall time starts unless told otherwise.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime.max.replace(tzinfo=timezone.utc)


class VirtualClockStall(RuntimeError):
    """Waiting without a timeout on a virtual clock with nothing scheduled: a hang."""


class Timer:
    """A scheduled call; :meth:`cancel` prevents it if it has not fired."""

    __slots__ = ("cancelled", "function", "when")

    def __init__(self, when: float, function: Callable[[], object]) -> None:
        self.when = when
        self.function = function
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SteppingClock:
    """What a virtual clock does with its timeline; subclasses say where the timeline lives.

    A subclass provides :meth:`monotonic`, :meth:`next_deadline` and :meth:`advance_to`;
    this class turns them into wall time, stepping, and the client's non-blocking :meth:`wait`.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        self._start = start

    def monotonic(self) -> float:
        """Virtual seconds since the clock was made."""
        raise NotImplementedError

    def next_deadline(self) -> Optional[float]:
        """When the next scheduled thing happens, or None."""
        raise NotImplementedError

    def advance_to(self, when: float) -> None:
        """Move time to ``when`` (no-op if already past), firing what is due, in order."""
        raise NotImplementedError

    def now(self) -> datetime:
        """Virtual wall time; it stops at the calendar's end (``datetime.max``, UTC) if virtual
        time is moved past it (a huge or infinite timeout), instead of raising OverflowError."""
        try:
            return self._start + timedelta(seconds=self.monotonic())
        except (OverflowError, ValueError):  # past datetime.max (or timedelta's range)
            return _LATEST

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing everything due on the way, in order."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self.advance_to(self.monotonic() + seconds)

    def run_until(self, done: Callable[[], bool]) -> None:
        """Fire timers one moment at a time until ``done()``; VirtualClockStall if none left."""
        while not done():
            moment = self.next_deadline()
            if moment is None:
                raise VirtualClockStall(
                    "nothing is scheduled on the virtual clock but the work is not done: it would "
                    "never finish (does the scenario have a COMPLETE?)"
                )
            self.advance_to(moment)

    def wait(self, condition: Waitable, timeout: Optional[float]) -> None:
        """The client's wait: jump to the next timer or to the deadline instead of sleeping."""
        condition.release()
        try:
            moment = self.next_deadline()
            deadline = None if timeout is None else self.monotonic() + timeout
            if moment is None and deadline is None:
                raise VirtualClockStall(
                    "waiting without a timeout, and nothing is scheduled on the virtual clock: in "
                    "real time this would hang forever. Pass a timeout, or make the scenario end."
                )
            if moment is not None and (deadline is None or moment <= deadline):
                self.advance_to(moment)
            else:
                assert deadline is not None
                self.advance_to(deadline)
        finally:
            condition.acquire()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(t={self.monotonic():g}s, now={self.now().isoformat()})"


class VirtualClock(SteppingClock):
    """Monotonic seconds from 0 and a UTC wall time from ``start``; both move together."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        super().__init__(start)
        self._now = 0.0
        self._lock = threading.RLock()
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def call_at(self, when: float, function: Callable[[], object]) -> Timer:
        """Run ``function`` when virtual time reaches ``when`` (on the thread that moves time)."""
        timer = Timer(when, function)
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._sequence), timer))
        return timer

    def call_later(self, delay: float, function: Callable[[], object]) -> Timer:
        return self.call_at(self._now + delay, function)

    def next_deadline(self) -> Optional[float]:
        with self._lock:
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            return self._timers[0][0] if self._timers else None

    def advance_to(self, when: float) -> None:
        while True:
            with self._lock:
                if self._timers and self._timers[0][0] <= when:
                    moment, _, timer = heapq.heappop(self._timers)
                    self._now = max(self._now, moment)
                else:
                    self._now = max(self._now, when)
                    return
            if not timer.cancelled:
                timer.function()
