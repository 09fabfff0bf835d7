"""A pure state machine over Events: phase, overall progress, outcome, anomalies.

No I/O, no threads, no clock: :class:`UpdateMachine` is fed :class:`~mpupdate.Event` values one by
one (on the caller's thread) and answers what the update looks like so far. Its outcome and
anomalies are values of :mod:`mpupdate.results` (:class:`Outcome`, :class:`Anomaly`, and the
:class:`UpdateResult` the client builds), re-exported here.

**Lenient** (the default, for production): any order is accepted, because the real order of the
middle notifications has never been observed; the first SIGUPDATE_COMPLETE is terminal; data may
be missing. Everything the grammar below would reject is recorded as an :class:`Anomaly` (and
logged), never swallowed. **Strict** (``strict=True``, for tests) raises
:class:`~mpupdate.ProtocolError` at the first violation.

The grammar (MPCLIENT.md section 4, the documented order; our best guess)::

    START SEARCH_START SEARCH_COMPLETE [SOFTWARE_UPDATE_AVAILABLE]
      (DOWNLOAD_START DOWNLOAD_PROGRESS* DOWNLOAD_COMPLETE
       INSTALL_START INSTALL_PROGRESS* INSTALL_COMPLETE)*
      [REBOOT_REQUIRED] [REQUEST_PROCESSED] COMPLETE

plus: INTERNAL_FAILURE may come anywhere after START, and then only COMPLETE may follow; a COMPLETE
carrying a failure (or E_ABORT) may come anywhere after START; a successful COMPLETE only where the
grammar ends. Strict mode also wants MPSIGUPDATE_DATA on the *_PROGRESS notifications, percentages
of at most 100, package indexes below the package count that never go back, and known numbers.
"""

from __future__ import annotations

import enum

from . import _log
from ._classes import Frozen
from .constants import (
    PROGRESS_NOTIFICATIONS,
    S_FALSE,
    S_OK,
    CallbackType,
    Notify,
    UpdateOption,
)
from .errors import ProtocolError
from .hresults import failed, format_hresult
from .results import Anomaly, Outcome, UpdateResult, outcome_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

    from .events import Event

    #: The grammar's states: the last grammatical notification, or "begin" (before START) or
    #: "failure" (after INTERNAL_FAILURE).
    _State = Union[Notify, str]

__all__ = ["Anomaly", "Outcome", "Phase", "Progress", "UpdateMachine", "UpdateResult"]


class Phase(enum.Enum):
    """Where an update is, as far as its notifications tell."""

    NOT_STARTED = "not started"
    STARTED = "started"
    SEARCHING = "searching"
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    FINISHING = "finishing"
    DONE = "done"


class Progress(Frozen):
    """What a progress function receives after every event. Immutable.

    ``percent``: overall progress 0-100; never goes backwards; 100 only when the update
    succeeded. ``phase``: the :class:`Phase`. ``event``: the event just applied. ``package``:
    the 1-based number of the package being handled, when known. ``packages``: how many packages
    the update handles, when known.
    """

    __match_args__ = ("percent", "phase", "event", "package", "packages")
    __slots__ = __match_args__

    percent: int
    phase: Phase
    event: Event
    package: Optional[int]
    packages: Optional[int]

    def __init__(
        self,
        percent: int,
        phase: Phase,
        event: Event,
        package: Optional[int] = None,
        packages: Optional[int] = None,
    ) -> None:
        assign = object.__setattr__
        assign(self, "percent", percent)
        assign(self, "phase", phase)
        assign(self, "event", event)
        assign(self, "package", package)
        assign(self, "packages", packages)


N = Notify
_STATE_NAMES: dict[_State, str] = {
    "begin": "the start of the update",
    "failure": "INTERNAL_FAILURE",
    **{n: n.name for n in Notify},
}
# Grammar states are the last grammatical notification; "begin" before START, "failure" after
# INTERNAL_FAILURE. Each maps to the notifications that may follow it.
_FOLLOWS: dict[_State, frozenset[Notify]] = {
    "begin": frozenset({N.SIGUPDATE_START}),
    N.SIGUPDATE_START: frozenset({N.SIGUPDATE_SEARCH_START}),
    N.SIGUPDATE_SEARCH_START: frozenset({N.SIGUPDATE_SEARCH_COMPLETE}),
    N.SIGUPDATE_SEARCH_COMPLETE: frozenset(
        {
            N.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE,
            N.SIGUPDATE_DOWNLOAD_START,
            N.SIGUPDATE_REBOOT_REQUIRED,
            N.SIGUPDATE_REQUEST_PROCESSED,
            N.SIGUPDATE_COMPLETE,
        }
    ),
    N.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE: frozenset(
        {
            N.SIGUPDATE_DOWNLOAD_START,
            N.SIGUPDATE_REBOOT_REQUIRED,
            N.SIGUPDATE_REQUEST_PROCESSED,
            N.SIGUPDATE_COMPLETE,
        }
    ),
    N.SIGUPDATE_DOWNLOAD_START: frozenset(
        {N.SIGUPDATE_DOWNLOAD_PROGRESS, N.SIGUPDATE_DOWNLOAD_COMPLETE}
    ),
    N.SIGUPDATE_DOWNLOAD_PROGRESS: frozenset(
        {N.SIGUPDATE_DOWNLOAD_PROGRESS, N.SIGUPDATE_DOWNLOAD_COMPLETE}
    ),
    N.SIGUPDATE_DOWNLOAD_COMPLETE: frozenset({N.SIGUPDATE_INSTALL_START}),
    N.SIGUPDATE_INSTALL_START: frozenset(
        {N.SIGUPDATE_INSTALL_PROGRESS, N.SIGUPDATE_INSTALL_COMPLETE}
    ),
    N.SIGUPDATE_INSTALL_PROGRESS: frozenset(
        {N.SIGUPDATE_INSTALL_PROGRESS, N.SIGUPDATE_INSTALL_COMPLETE}
    ),
    N.SIGUPDATE_INSTALL_COMPLETE: frozenset(
        {
            N.SIGUPDATE_DOWNLOAD_START,
            N.SIGUPDATE_REBOOT_REQUIRED,
            N.SIGUPDATE_REQUEST_PROCESSED,
            N.SIGUPDATE_COMPLETE,
        }
    ),
    N.SIGUPDATE_REBOOT_REQUIRED: frozenset({N.SIGUPDATE_REQUEST_PROCESSED, N.SIGUPDATE_COMPLETE}),
    N.SIGUPDATE_REQUEST_PROCESSED: frozenset({N.SIGUPDATE_COMPLETE}),
    "failure": frozenset({N.SIGUPDATE_COMPLETE}),
    N.SIGUPDATE_COMPLETE: frozenset(),
}

_PHASES = {
    N.SIGUPDATE_START: Phase.STARTED,
    N.SIGUPDATE_SEARCH_START: Phase.SEARCHING,
    N.SIGUPDATE_SEARCH_COMPLETE: Phase.SEARCHING,
    N.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE: Phase.SEARCHING,
    N.SIGUPDATE_DOWNLOAD_START: Phase.DOWNLOADING,
    N.SIGUPDATE_DOWNLOAD_PROGRESS: Phase.DOWNLOADING,
    N.SIGUPDATE_DOWNLOAD_COMPLETE: Phase.DOWNLOADING,
    N.SIGUPDATE_INSTALL_START: Phase.INSTALLING,
    N.SIGUPDATE_INSTALL_PROGRESS: Phase.INSTALLING,
    N.SIGUPDATE_INSTALL_COMPLETE: Phase.INSTALLING,
    N.SIGUPDATE_REBOOT_REQUIRED: Phase.FINISHING,
    N.SIGUPDATE_REQUEST_PROCESSED: Phase.FINISHING,
}

# Overall progress: 0-10 % searching, 10-95 % the packages (each half download, half install),
# 95 % finishing, 100 % a successful COMPLETE. Within a package, where each notification starts.
_SEARCH_DONE = 10.0
_PACKAGES_SPAN = 85.0
_PACKAGE_FRACTION = {
    N.SIGUPDATE_DOWNLOAD_START: 0.0,
    N.SIGUPDATE_DOWNLOAD_COMPLETE: 0.5,
    N.SIGUPDATE_INSTALL_START: 0.5,
    N.SIGUPDATE_INSTALL_COMPLETE: 1.0,
}
_FIXED_PERCENT = {
    N.SIGUPDATE_SEARCH_START: 2.0,
    N.SIGUPDATE_SEARCH_COMPLETE: _SEARCH_DONE,
    N.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE: _SEARCH_DONE,
    N.SIGUPDATE_REBOOT_REQUIRED: 95.0,
    N.SIGUPDATE_REQUEST_PROCESSED: 95.0,
}
_IN_PACKAGE = frozenset(
    {
        N.SIGUPDATE_DOWNLOAD_START,
        N.SIGUPDATE_DOWNLOAD_PROGRESS,
        N.SIGUPDATE_DOWNLOAD_COMPLETE,
        N.SIGUPDATE_INSTALL_START,
        N.SIGUPDATE_INSTALL_PROGRESS,
    }
)
_NEEDS_DATA = frozenset({N.SIGUPDATE_DOWNLOAD_PROGRESS, N.SIGUPDATE_INSTALL_PROGRESS})


_COMPLETE = N.SIGUPDATE_COMPLETE
_SIGUPDATE = int(CallbackType.SIGUPDATE)
_SPECIAL = frozenset({N.INTERNAL_FAILURE, N.CALL_COMPLETE})
_PROGRESS_OPTION = int(UpdateOption.PROGRESS)
_UPDATED = (Outcome.UPDATED, Outcome.ALREADY_CURRENT)


class UpdateMachine:
    """Follows one update's events. Pure: feed it events, read its state.

    ``feed`` returns the :class:`Progress` after the event; ``apply`` does the same work without
    building one. After the first SIGUPDATE_COMPLETE, :attr:`done` is True and :attr:`outcome` is
    set; later events only add anomalies. ``options`` are the ``dwUpdateOptions`` of the update
    (a *_PROGRESS notification without the PROGRESS option is a violation).
    """

    def __init__(self, strict: bool = False, options: int = _PROGRESS_OPTION) -> None:
        self.strict = strict
        self.options = int(options)
        self.phase = Phase.NOT_STARTED
        self.percent = 0
        self.package: Optional[int] = None
        self.packages: Optional[int] = None
        self.reboot_required = False
        self.complete: Optional[Event] = None
        self.anomalies: list[Anomaly] = []
        self.count = 0
        self._grammar: _State = "begin"
        self._failure: Optional[int] = None
        self._violations: list[ProtocolError] = []
        self._progress_allowed = bool(self.options & _PROGRESS_OPTION)

    @property
    def done(self) -> bool:
        """True once a SIGUPDATE_COMPLETE was fed."""
        return self.complete is not None

    @property
    def outcome(self) -> Optional[Outcome]:
        """The outcome COMPLETE reported, or None before it."""
        return None if self.complete is None else outcome_of(self.complete.hresult)

    def note(self, message: str, position: Optional[int] = None) -> None:
        """Record an anomaly that is not a grammar violation (lenient and strict alike)."""
        anomaly = Anomaly(position, message)
        _log.warning("mpupdate: %s", anomaly)
        self.anomalies.append(anomaly)

    def feed(self, event: Event) -> Progress:
        """Take the next event; in strict mode raise ProtocolError if it breaks the grammar.

        The event is applied before the error is raised, so the state stays true to what the
        DLL sent: a COMPLETE that breaks the grammar still ends the update.
        """
        self.apply(event)
        return self.progress(event)

    def apply(self, event: Event) -> None:
        """:meth:`feed` without building the :class:`Progress` (the client's path when no
        progress function waits for one)."""
        position = self.count
        self.count = position + 1
        if self.complete is not None:
            self._violation(position, event, "nothing", f"{event.name} after SIGUPDATE_COMPLETE")
        else:
            self._check(position, event)
            self._apply(event)
        if self._violations:
            violations, self._violations = self._violations, []
            raise violations[0]

    def progress(self, event: Event) -> Progress:
        """The :class:`Progress` now, ``event`` being the last one applied."""
        return Progress(self.percent, self.phase, event, self.package, self.packages)

    def _apply(self, event: Event) -> None:
        notify = event.notify
        if notify is _COMPLETE:
            self.complete = event
            self.phase = Phase.DONE
            if outcome_of(event.hresult) in _UPDATED:
                self.percent = 100
        elif type(notify) is Notify:
            self.phase = _PHASES.get(notify, self.phase)
            if notify is N.SIGUPDATE_REBOOT_REQUIRED and not event.hresult & 0x80000000:
                self.reboot_required = True
            self._advance(event)

    def _advance(self, event: Event) -> None:
        notify = event.notify
        if event.percent is not None and notify in _IN_PACKAGE:
            total = event.total_updates or 1  # data present: total and index are ints
            self.packages = total
            self.package = min(event.current_index or 0, total - 1) + 1
        fixed = _FIXED_PERCENT.get(notify)  # type: ignore[call-overload]
        if fixed is not None:
            value: float = fixed
        elif notify in _IN_PACKAGE or notify is N.SIGUPDATE_INSTALL_COMPLETE:
            total = self.packages or 1
            index = (self.package or 1) - 1
            percent = min(event.percent or 0, 100) / 100.0
            if notify is N.SIGUPDATE_DOWNLOAD_PROGRESS:
                fraction = 0.5 * percent
            elif notify is N.SIGUPDATE_INSTALL_PROGRESS:
                fraction = 0.5 + 0.5 * percent
            else:
                fraction = _PACKAGE_FRACTION[notify]  # type: ignore[index]
            value = _SEARCH_DONE + _PACKAGES_SPAN * (index + fraction) / total
        else:
            return
        percent_now = int(value) if value < 99 else 99
        if percent_now > self.percent:
            self.percent = percent_now

    def _check(self, position: int, event: Event) -> None:
        notify = event.notify
        if event.callback_type != _SIGUPDATE:
            self._violation(
                position,
                event,
                "MPCALLBACK_TYPE SIGUPDATE (6)",
                f"{event.name} has callback type {event.callback_type}; its data was not read",
            )
        if type(notify) is not Notify:
            self._violation(
                position, event, "a known notification", f"unknown notification {event.name}"
            )
            return
        if notify in _SPECIAL:
            if self._grammar == "begin":
                self._violation(position, event, "SIGUPDATE_START", f"{event.name} before START")
            if notify is N.INTERNAL_FAILURE:
                self._failure = event.hresult
                self._grammar = "failure"
            else:
                self._violation(position, event, "an update notification", f"{event.name}")
            return
        allowed = _FOLLOWS[self._grammar]
        if notify not in allowed and not (
            notify is _COMPLETE and self._grammar != "begin" and failed(event.hresult)
        ):
            expected = " or ".join(sorted(n.name for n in allowed)) or "nothing"
            previous = _STATE_NAMES.get(self._grammar, str(self._grammar))
            self._violation(position, event, expected, f"{event.name} after {previous}")
        if notify is _COMPLETE:
            self._check_complete(position, event)
        self._grammar = notify
        if event.percent is not None or notify in _NEEDS_DATA:
            self._check_data(position, event)
        elif notify in PROGRESS_NOTIFICATIONS and not self._progress_allowed:
            self._violation(
                position, event, "no progress", f"{event.name} without the PROGRESS option"
            )

    def _check_complete(self, position: int, event: Event) -> None:
        if self._failure is not None and not failed(event.hresult):
            self._violation(
                position,
                event,
                "a failing COMPLETE",
                f"COMPLETE reports {format_hresult(event.hresult)} after INTERNAL_FAILURE "
                f"{format_hresult(self._failure)}",
            )
        if event.hresult not in (S_OK, S_FALSE) and not failed(event.hresult):
            self._violation(
                position,
                event,
                "S_OK, S_FALSE or a failure",
                f"COMPLETE with unusual success code {format_hresult(event.hresult)}",
            )

    def _check_data(self, position: int, event: Event) -> None:
        notify = event.notify
        if notify in PROGRESS_NOTIFICATIONS and not self._progress_allowed:
            self._violation(
                position, event, "no progress", f"{event.name} without the PROGRESS option"
            )
        if event.percent is None:
            if notify in _NEEDS_DATA:
                self._violation(position, event, "MPSIGUPDATE_DATA", f"{event.name} without data")
            return
        total, index = event.total_updates, event.current_index
        assert total is not None and index is not None
        if event.percent > 100:
            self._violation(position, event, "at most 100 %", f"{event.percent} % in {event.name}")
        if total and index >= total:
            self._violation(
                position, event, f"an index below {total}", f"package index {index} of {total}"
            )
        if notify in _IN_PACKAGE and self.package is not None and index + 1 < self.package:
            self._violation(
                position,
                event,
                f"package index {self.package - 1} or later",
                f"package index went back to {index}",
            )

    def _violation(self, position: int, event: Event, expected: str, message: str) -> None:
        if self.strict:  # raised by apply() once the event is applied
            self._violations.append(
                ProtocolError(
                    f"event {position}: {message} (expected {expected})", event, position, expected
                )
            )
        else:
            self.note(f"{message} (expected {expected})", position)
