"""How an update ended: :class:`Outcome`, :class:`Anomaly` and :class:`UpdateResult`.

Plain values, shared by the state machine (which decides the outcome and keeps the anomalies),
the client (which builds the result) and the errors (an :class:`~mpupdate.UpdateError` carries
the result). Below all three, so each imports it and it imports none of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Optional

from .constants import E_ABORT, S_FALSE, Source
from .hresults import failed, format_hresult

if TYPE_CHECKING:  # annotations only; neither module imports this one
    from .events import Event
    from .versions import VersionInfo

__all__ = ["Anomaly", "Outcome", "UpdateResult", "outcome_of"]


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


@dataclass(frozen=True)
class Anomaly:
    """Something the update did that the grammar does not expect (kept, never swallowed)."""

    position: Optional[int]
    """Index of the event in the update's event list; None when not tied to one event."""
    message: str

    def __str__(self) -> str:
        where = "" if self.position is None else f"event {self.position}: "
        return where + self.message


@dataclass(frozen=True)
class UpdateResult:
    """How an update ended, with everything that was seen on the way."""

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
    versions_before: Optional[VersionInfo] = None
    versions_after: Optional[VersionInfo] = None
    hint: Optional[str] = None

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
