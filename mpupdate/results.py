"""How an update ended: :class:`Outcome`, :class:`Anomaly` and :class:`UpdateResult`.

Plain values, shared by the state machine (which decides the outcome and keeps the anomalies),
the client (which builds the result) and the errors (an :class:`~mpupdate.UpdateError` carries
the result). Below all three, so each imports it and it imports none of them.
"""

from __future__ import annotations

import enum

from ._classes import Frozen
from .constants import E_ABORT, S_FALSE, Source
from .hresults import failed, format_hresult

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only (neither events nor versions imports this module)
    from datetime import datetime, timedelta
    from typing import Optional

    from .events import Event
    from .versions import VersionInfo

__all__ = ["Anomaly", "Attempt", "Outcome", "UpdateResult", "outcome_of"]


class Outcome(enum.Enum):
    """How an update ended."""

    UPDATED = "updated"
    """COMPLETE reported success: new signatures are installed."""
    ALREADY_CURRENT = "already current"
    """COMPLETE reported S_FALSE: no update was needed."""
    FAILED = "failed"
    """The update (or the call that starts it) reported a failure."""
    CANCELLED = "cancelled"
    """The update was aborted (COMPLETE with E_ABORT, ``cancel()``, Ctrl-C, a raising hook)."""
    TIMED_OUT = "timed out"
    """The timeout expired first; the update was aborted."""


class Anomaly(Frozen):
    """Something the update did that the grammar does not expect (kept, never swallowed).

    Immutable; equal when the fields are.
    """

    __match_args__ = ("position", "message")
    __slots__ = __match_args__

    position: Optional[int]
    """Index of the event in the update's event list; None when not tied to one event."""
    message: str

    def __init__(self, position: Optional[int], message: str) -> None:
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "message", message)

    def __str__(self) -> str:
        where = "" if self.position is None else f"event {self.position}: "
        return where + self.message


class Attempt(Frozen):
    """One source tried by an update given several (``mpupdate.update(source=[...])``).

    Immutable; equal when the fields are. ``hresult`` unsigned; ``duration`` in seconds, on the
    backend's clock.
    """

    __match_args__ = ("source", "outcome", "hresult", "message", "duration")
    __slots__ = __match_args__

    source: Source
    outcome: Outcome
    hresult: int
    message: str
    duration: float

    def __init__(
        self, source: Source, outcome: Outcome, hresult: int, message: str, duration: float
    ) -> None:
        field = object.__setattr__
        field(self, "source", source)
        field(self, "outcome", outcome)
        field(self, "hresult", hresult)
        field(self, "message", message)
        field(self, "duration", duration)

    def __str__(self) -> str:
        return f"{self.source.name}: {self.outcome.name} {format_hresult(self.hresult)}"


class UpdateResult(Frozen):
    """How an update ended, with everything that was seen on the way.

    Immutable; equal when the fields are. :meth:`replace` makes a changed copy.
    """

    __match_args__ = (
        "outcome",
        "hresult",
        "message",
        "reboot_required",
        "events",
        "anomalies",
        "source",
        "options",
        "started_at",
        "finished_at",
        "versions_before",
        "versions_after",
        "hint",
        "attempts",
    )
    __slots__ = __match_args__

    outcome: Outcome
    hresult: int
    """Unsigned. COMPLETE's hResult, the failing call's, or ERROR_TIMEOUT (0x800705B4)."""
    message: str
    reboot_required: bool
    events: tuple[Event, ...]
    anomalies: tuple[Anomaly, ...]
    source: Source
    options: int
    """The ``dwUpdateOptions`` actually passed to ``MpUpdateStart``."""
    started_at: datetime
    finished_at: datetime
    versions_before: Optional[VersionInfo]
    versions_after: Optional[VersionInfo]
    hint: Optional[str]
    attempts: tuple[Attempt, ...]
    """Every source tried, in order, when the update was given several (the result is the last
    attempt's); empty for a single source."""

    def __init__(
        self,
        outcome: Outcome,
        hresult: int,
        message: str,
        reboot_required: bool,
        events: tuple[Event, ...],
        anomalies: tuple[Anomaly, ...],
        source: Source,
        options: int,
        started_at: datetime,
        finished_at: datetime,
        versions_before: Optional[VersionInfo] = None,
        versions_after: Optional[VersionInfo] = None,
        hint: Optional[str] = None,
        attempts: tuple[Attempt, ...] = (),
    ) -> None:
        field = object.__setattr__
        field(self, "outcome", outcome)
        field(self, "hresult", hresult)
        field(self, "message", message)
        field(self, "reboot_required", reboot_required)
        field(self, "events", events)
        field(self, "anomalies", anomalies)
        field(self, "source", source)
        field(self, "options", options)
        field(self, "started_at", started_at)
        field(self, "finished_at", finished_at)
        field(self, "versions_before", versions_before)
        field(self, "versions_after", versions_after)
        field(self, "hint", hint)
        field(self, "attempts", attempts)

    @property
    def ok(self) -> bool:
        """True for UPDATED and ALREADY_CURRENT."""
        return self.outcome in (Outcome.UPDATED, Outcome.ALREADY_CURRENT)

    @property
    def duration(self) -> timedelta:
        return self.finished_at - self.started_at

    def __str__(self) -> str:
        text = f"{self.outcome.name} {format_hresult(self.hresult)}: {self.message}"
        if self.reboot_required:
            text += " (reboot required)"
        return text


def outcome_of(hresult: int) -> Outcome:
    """The outcome a SIGUPDATE_COMPLETE with this hResult (signed or unsigned) means."""
    hresult &= 0xFFFFFFFF
    if hresult == S_FALSE:
        return Outcome.ALREADY_CURRENT
    if hresult == E_ABORT:
        return Outcome.CANCELLED
    if failed(hresult):
        return Outcome.FAILED
    return Outcome.UPDATED
