"""Client (the manager handle) and UpdateOperation (one update handle).

Each MPHANDLE is owned by one :class:`~mpupdate.handles.OwnedHandle` (see :mod:`mpupdate.handles`):
the Client owns the manager handle, each UpdateOperation its update handle, and each is closed
exactly once, never on the callback thread.

Waiting happens in Python: :meth:`Client.start_update` starts with the ASYNC option and the
operation waits on a condition through the backend's clock
(:func:`~mpupdate.backends.backend_clock`), so timeouts and Ctrl-C work. On expiry, interrupt, a
raising progress function or a strict-mode violation, the operation sends ABORT, closes its handle
(MpClient then cancels and waits for the update) and reports ``TIMED_OUT`` or ``CANCELLED``.

The one-call façade, :func:`mpupdate.update`, is in :mod:`mpupdate.api`.
"""

from __future__ import annotations

import collections.abc
import threading
import weakref
from collections import deque
from collections.abc import Generator

from . import _native
from ._native import ffi
from .backends import Backend, backend_clock, resolve_backend
from .clock import Clock
from .constants import (
    E_ABORT,
    E_FAIL,
    E_HANDLE,
    E_INVALIDARG,
    E_TIMEOUT,
    Control,
    Notify,
    Source,
    UpdateOption,
)
from .errors import MpError, ProtocolError, Step, error_for
from .events import Event, read_utf16
from .handles import HandleKind, OwnedHandle
from .hresults import describe, failed, format_hresult, message_for, to_signed, to_unsigned
from .machine import Phase, Progress, UpdateMachine
from .results import Outcome, UpdateResult, outcome_of
from .versions import VersionInfo

__all__ = ["Client", "ProgressFunction", "UpdateOperation", "update_flags"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Union

ProgressFunction = collections.abc.Callable[[Progress], "Any"]
"""Called on the caller's thread after every event; raising cancels the update."""


def _check(step: Step, hresult: int, client: Optional[Client] = None) -> None:
    if failed(hresult):
        # Without a manager handle MpErrorMessageFormat cannot answer [BIN]: the system's text
        # (Windows) or the offline table's, as message_for chooses.
        message = client.error_message(hresult) if client is not None else message_for(hresult)
        raise error_for(step, hresult, message)


_DWORD_MAX = 0xFFFFFFFF


def update_flags(source: Source, options: Union[UpdateOption, int, None], blocking: bool) -> int:
    """``dwUpdateOptions``: ``options`` (default PROGRESS), source bit, ASYNC unless blocking.

    Raises TypeError or ValueError naming the argument for a source that is not a
    :class:`~mpupdate.Source`, or options that are not an int (an UpdateOption combination) in
    the DWORD range, before anything is called."""
    if not isinstance(source, Source):
        raise TypeError(f"source must be a mpupdate.Source, not {type(source).__name__}")
    if options is None:
        options = UpdateOption.PROGRESS
    elif not isinstance(options, int) or isinstance(options, bool):
        raise TypeError(
            f"options must be UpdateOption flags or an int (a DWORD), not {type(options).__name__}"
        )
    elif not 0 <= options <= _DWORD_MAX:
        raise ValueError(f"options must be a DWORD, 0 to 0x{_DWORD_MAX:X}, not {options:#x}")
    flags = int(options) | int(source.option)
    return flags if blocking else flags | int(UpdateOption.ASYNC)


def check_timeout(timeout: object, name: str = "timeout") -> Optional[float]:
    """``timeout`` as seconds: None (no limit) or a finite number >= 0; TypeError or ValueError
    naming ``name`` otherwise (a NaN would wait forever, an infinity is what None says)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(timeout).__name__}")
    seconds = float(timeout)
    if not 0 <= seconds < float("inf"):
        raise ValueError(
            f"{name} must be a finite number of seconds >= 0 (None for no limit), not {timeout!r}"
        )
    return seconds


def check_progress(progress: object) -> None:
    """TypeError naming ``progress`` unless it is None or callable."""
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be a function taking a Progress, or None, not {type(progress).__name__}"
        )


class Client:
    """An open MpClient manager handle (``MpManagerOpen`` ... ``MpHandleClose``).

    ``backend``: None (``MPUPDATE_BACKEND``, else the real DLL on Windows), a string such as
    ``"fake:already-current"`` or ``"dll:C:\\path\\MpClient.dll"``, or a backend object (for
    example a :class:`mpupdate.fakes.FakeMpClient`). See :func:`mpupdate.backends.resolve_backend`.
    """

    def __init__(self, backend: Union[Backend, str, None] = None) -> None:
        self.backend: Backend = resolve_backend(backend)
        #: What waiting and timestamps run on: the backend's own clock, else the system's.
        self.clock: Clock = backend_clock(self.backend)
        self._abort_handle: Optional[HandleKind] = None
        self._operations: weakref.WeakSet[UpdateOperation] = weakref.WeakSet()
        # Held by start_update and close: no update starts on a manager being closed, and the
        # manager is closed only after every update started on it.
        self._lock = threading.RLock()
        out = ffi.new("MPHANDLE *")
        hr = to_unsigned(self.backend.MpManagerOpen(0, out))
        _check(Step.MP_MANAGER_OPEN, hr)
        self._handle = OwnedHandle(self.backend, out[0], HandleKind.MANAGER)

    @property
    def handle(self) -> Any:
        """The manager MPHANDLE (cffi cdata). Do not close it yourself."""
        if self._handle.closed:
            raise ValueError("this Client is closed; open a new one")
        return self._handle.handle

    @property
    def open_handle(self) -> Any:
        """The manager MPHANDLE, or None once the Client is closed (or closing)."""
        return None if self._handle.closed else self._handle.handle

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def own_update_handle(
        self, handle: Any, after_close: Callable[[], None], keep_alive: Any
    ) -> OwnedHandle:
        """The owner of an update handle this manager started: closed once, and before the
        manager (also when the two are closed on different threads, or at interpreter exit)."""
        return OwnedHandle(
            self.backend, handle, HandleKind.UPDATE, after_close, keep_alive, parent=self._handle
        )

    @property
    def abort_handle(self) -> Optional[HandleKind]:
        """Which handle ``MpUpdateControl(ABORT)`` accepted last, once known; None before.

        A :class:`~mpupdate.handles.HandleKind` (equal to ``"manager"`` or ``"update"``); the next
        :meth:`UpdateOperation.cancel` tries that kind first. May be set, to a kind or its text.
        """
        return self._abort_handle

    @abort_handle.setter
    def abort_handle(self, kind: Union[HandleKind, str, None]) -> None:
        try:
            self._abort_handle = None if kind is None else HandleKind(kind)
        except ValueError:
            raise ValueError(
                f"abort_handle must be 'manager', 'update' or None, not {kind!r}"
            ) from None

    def close(self) -> None:
        """Close every operation still open (cancelling running ones), then the manager handle.

        Safe from any thread and more than once: a :meth:`start_update` running on another
        thread finishes first (its update is then closed too); a later one raises ValueError.
        A second close waits for the first to finish."""
        with self._lock:
            for operation in list(self._operations):
                operation.close()
            self._handle.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<mpupdate.Client {state} backend={self.backend!r}>"

    def version(self) -> VersionInfo:
        """The component versions (``MpManagerVersionQuery``)."""
        info = ffi.new("MPVERSION_INFO *")
        hr = to_unsigned(self.backend.MpManagerVersionQuery(self.handle, info))
        _check(Step.MP_MANAGER_VERSION_QUERY, hr, self)
        return VersionInfo.from_struct(info)

    def error_message(self, hresult: int) -> str:
        """The text for an HRESULT: ``MpErrorMessageFormat`` where it answers, else the system's
        (FormatMessageW, on Windows, for system codes), else our table (see
        :func:`~mpupdate.errors.message_for`)."""
        dll_text: Optional[str] = None
        if not self.closed:
            text = ffi.new("uint16_t **")
            hr = int(self.backend.MpErrorMessageFormat(self.handle, to_signed(hresult), text))
            try:
                if not failed(hr) and text[0] != ffi.NULL:
                    dll_text = read_utf16(text[0], 0xFFFF)
            finally:
                if text[0] != ffi.NULL:
                    self.backend.MpFreeMemory(text[0])
        return message_for(hresult, dll_text)

    def start_update(
        self,
        source: Source = Source.DEFAULT,
        options: Union[UpdateOption, int, None] = None,
        strict: bool = False,
        progress: Optional[ProgressFunction] = None,
        blocking: bool = False,
    ) -> UpdateOperation:
        """Start a signature update; returns at once (unless ``blocking``) with its operation.

        ``options`` (UpdateOption flags or a raw int; default PROGRESS) are combined with the
        source's bit and, unless ``blocking``, ASYNC. ``blocking=True`` uses the DLL's synchronous
        mode: the call returns when the update has finished; no timeout or Ctrl-C can stop it.
        ``progress`` is called with a :class:`Progress` after every event, on the thread that
        consumes the events (``events()`` / ``wait()``). ``strict=True`` raises
        :class:`~mpupdate.ProtocolError` on any notification that breaks the grammar.

        Raises an :class:`~mpupdate.MpError` subclass when ``MpUpdateStart`` fails, TypeError or
        ValueError (naming the argument) for a bad one, before anything is called, and
        ValueError once the Client is closed.
        """
        flags = update_flags(source, options, blocking)
        check_progress(progress)
        with self._lock:
            if self.closed:
                raise ValueError("this Client is closed; open a new one")
            operation = UpdateOperation(self, source, flags, strict, progress)
            self._operations.add(operation)  # only operations that hold a handle need closing
        return operation


_MESSAGES = {
    Outcome.UPDATED: "Signatures updated.",
    Outcome.ALREADY_CURRENT: "No update was needed: the signatures are already current.",
}


class _DeadlinePassed(Exception):
    pass


#: What MpUpdateControl answers to a handle of the wrong kind: E_HANDLE from 4.18.1909.6 [BIN],
#: E_INVALIDARG from newer DLLs (seen for MpHandleClose; assumed here [GUESS]).
_WRONG_HANDLE_KIND = frozenset({E_HANDLE, E_INVALIDARG})


class UpdateOperation:
    """One update: its handle, its events, its result.

    Made by :meth:`Client.start_update`; constructing one starts the update (``MpUpdateStart``
    with ``options``, the final ``dwUpdateOptions``), as constructing a Client opens the manager.
    Use as a context manager; leaving the block closes the handle (aborting the update first if
    it is still running). Events are consumed by :meth:`events` or :meth:`wait` on one thread.
    """

    def __init__(
        self,
        client: Client,
        source: Source,
        options: int,
        strict: bool,
        progress: Optional[ProgressFunction],
    ) -> None:
        self.client = client
        self.source = source
        self.options = options
        self.strict = strict
        self._progress_function = progress
        self._machine = UpdateMachine(strict=strict, options=options)
        self._sink = _native.Sink()
        self._pending: deque[Event] = deque()  # taken from the sink, not yet fed
        self._handle: Optional[OwnedHandle] = None
        self._events: list[Event] = []
        self._result: Optional[UpdateResult] = None
        # One consuming thread at a time; that thread may consume again from inside (wait() with
        # an events() iterator held, or wait() in the progress function).
        self._consume_lock = threading.RLock()
        self._reporting = False  # inside the progress function: nested consumption reports none
        # Guards the machine, the event list and the result: the consumer feeds them while
        # close() (perhaps on another thread) may drain and finish.
        self._state = threading.RLock()
        #: Which handle MpUpdateControl(ABORT) accepted for this update, once one did.
        self.abort_handle: Optional[HandleKind] = None
        self.versions_before: Optional[VersionInfo] = None
        self.started_at = client.clock.now()  # set again just before MpUpdateStart
        self._start()

    # -- starting -------------------------------------------------------------------------

    def _start(self) -> None:
        client, sink = self.client, self._sink
        self.versions_before = self._versions("before")
        info = ffi.new("MPCALLBACK_INFO *")
        info.pfnCallbackFunction = _native.CALLBACK
        info.CallbackContext = sink.token
        out = ffi.new("MPHANDLE *")
        self.started_at = client.clock.now()
        try:
            hr = to_unsigned(client.backend.MpUpdateStart(client.handle, self.options, info, out))
            _check(Step.MP_UPDATE_START, hr, client)
        except BaseException:
            sink.close()
            raise
        if out[0] == ffi.NULL:
            sink.close()
            self._machine.note("MpUpdateStart succeeded but returned a NULL update handle")
        else:
            self._handle = client.own_update_handle(out[0], sink.close, info)

    # -- state ----------------------------------------------------------------------------

    @property
    def handle(self) -> Any:
        """The update MPHANDLE (cffi cdata), or None once closed."""
        if self._handle is None or self._handle.closed:
            return None
        return self._handle.handle

    @property
    def result(self) -> Optional[UpdateResult]:
        """The result once the update has ended, else None."""
        return self._result

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def percent(self) -> int:
        """Overall progress so far, 0-100."""
        return self._machine.percent

    @property
    def phase(self) -> Phase:
        """The :class:`~mpupdate.Phase` so far."""
        return self._machine.phase

    # -- consuming ------------------------------------------------------------------------

    def events(self, timeout: Optional[float] = None) -> Generator[Event, None, None]:
        """Yield events until the terminal SIGUPDATE_COMPLETE (included).

        ``timeout`` bounds the whole iteration in seconds (a finite number >= 0, or None; checked
        now). When it expires the update is aborted and closed and the iteration ends;
        :attr:`result` is then ``TIMED_OUT``. Leaving the loop early does not cancel the update.
        The consuming thread may call :meth:`wait` while it holds the iterator (or from the
        progress function): that call takes the remaining events, and the iterator then ends.
        """
        check_timeout(timeout)
        return self._event_stream(timeout)

    def _event_stream(self, timeout: Optional[float]) -> Generator[Event, None, None]:
        for batch in self._batches(timeout, one=True):
            yield from batch

    def wait(self, timeout: Optional[float] = None) -> UpdateResult:
        """Wait for the update to end and return its :class:`UpdateResult`.

        On timeout (a finite number of seconds >= 0, or None) the update is aborted and the
        result is ``TIMED_OUT``. Ctrl-C aborts the update, closes its handle and re-raises
        KeyboardInterrupt (:attr:`result` is then ``CANCELLED``); an exception from the progress
        function is re-raised the same way. Called from the progress function (or with an
        :meth:`events` iterator held on this thread) it takes the remaining events itself,
        without calling the progress function again for them.
        """
        for _ in self._batches(timeout, one=False):
            pass
        assert self._result is not None
        return self._result

    def _batches(self, timeout: Optional[float], one: bool) -> Generator[list[Event], None, None]:
        """The consumer's loop: the events fed so far, a batch at a time (one event at a time
        when ``one``), until the update ends; stops it on the deadline, Ctrl-C or an error."""
        timeout = check_timeout(timeout)
        if not self._consume_lock.acquire(blocking=False):
            raise RuntimeError("another thread is already consuming this update's events")
        try:
            deadline = None if timeout is None else self.client.clock.monotonic() + timeout
            while self._result is None:
                try:
                    fed = self._step(deadline, one)
                except _DeadlinePassed:
                    self._stop(Outcome.TIMED_OUT, timeout)
                    return
                except BaseException:
                    self._stop(Outcome.CANCELLED)
                    raise
                if not fed:
                    return
                yield fed
        finally:
            self._consume_lock.release()

    def _step(self, deadline: Optional[float], one: bool) -> list[Event]:
        """Feed the next event (``one``) or every event that has arrived (unless a progress
        function waits for each) through the machine; wait for some first if none has. Returns
        the events fed, in order, or [] once the update has ended."""
        sink, clock, pending = self._sink, self.client.clock, self._pending
        report = None if self._reporting else self._progress_function
        one = one or report is not None
        while True:
            with self._state:  # close() may run on another thread: one of us takes each event
                if self._result is not None:
                    return []
                if not pending:
                    pending.extend(sink.take())
                    self._take_problems()
                if pending:
                    fed = self._feed(pending, one)
                    progress = None if report is None else self._machine.progress(fed[0])
                    break
                if self.handle is None:
                    self._conclude(None, None)  # the handle was closed: nothing more can come
                    return []
            remaining = None if deadline is None else deadline - clock.monotonic()
            if remaining is not None and remaining <= 0:
                raise _DeadlinePassed
            clock.wait(sink, remaining)
        if report is not None and progress is not None:  # outside _state: it may call us
            self._reporting = True
            try:
                report(progress)
            finally:
                self._reporting = False
        return fed

    def _feed(self, pending: deque[Event], one: bool) -> list[Event]:
        """Apply pending events (one, or up to the terminal COMPLETE); with ``_state`` held."""
        machine, record = self._machine, self._events.append
        fed: list[Event] = []
        while pending:
            event = pending.popleft()
            record(event)
            fed.append(event)
            machine.apply(event)  # strict mode raises here, the event applied
            if machine.complete is not None:
                self._conclude(None, None)
                break
            if one:
                break
        return fed

    def _take_problems(self) -> None:
        # Noted (and so logged) here, on the consumer's thread: never on the DLL's.
        for problem in self._sink.take_problems():
            self._machine.note(problem)

    # -- cancelling and closing -----------------------------------------------------------

    def cancel(self) -> None:
        """Ask MpClient to abort the update (``MpUpdateControl(ABORT)``); does not wait.

        The docs name the update handle, the shipped DLL wants the manager handle: the handle that
        worked last time is tried first (the update handle at first), the other when the first is
        refused as the wrong kind, with E_HANDLE (4.18.1909.6) or E_INVALIDARG (newer DLLs);
        :attr:`abort_handle` (and the client's) records which one worked. Aborting through the
        manager handle aborts what MpClient runs for that manager: every update started on this
        Client, not only this one [BIN: the control is per manager in 4.18.1909.6].

        A no-op once the update has ended, or is being closed (also on another thread: the
        close is waited for, never raced), or when the DLL refuses the abort because the update
        ended meanwhile (its COMPLETE has arrived). Otherwise raises
        :class:`~mpupdate.MpError` (for example AccessDeniedError: aborting needs administrator
        rights) if both handles refuse.
        """
        with self._state:  # a close on another thread finishes first; the handle stays valid
            if self._result is not None or self._machine.done or self.handle is None:
                return
            hr = self._send_abort()
            if failed(hr) and not self._completed_meanwhile():
                _check(Step.MP_UPDATE_CONTROL, hr, self.client)

    def _completed_meanwhile(self) -> bool:
        """Whether a COMPLETE has arrived, fed or not yet (with ``_state`` held)."""
        self._pending.extend(self._sink.take())
        return self._machine.done or any(
            event.notify is Notify.SIGUPDATE_COMPLETE for event in self._pending
        )

    def _send_abort(self) -> int:
        kinds = [HandleKind.UPDATE, HandleKind.MANAGER]
        if self.client.abort_handle is HandleKind.MANAGER:
            kinds.reverse()
        hr = E_HANDLE
        for kind in kinds:
            handle = self.handle if kind is HandleKind.UPDATE else self.client.open_handle
            if handle is None:
                continue
            hr = to_unsigned(self.client.backend.MpUpdateControl(handle, int(Control.ABORT)))
            if hr in _WRONG_HANDLE_KIND:
                continue
            if not failed(hr):
                self.abort_handle = kind
                self.client.abort_handle = kind
            return hr
        return hr

    def close(self) -> None:
        """Close the update handle (once); a running update is aborted first and ends CANCELLED."""
        if self._result is None:
            self._stop(Outcome.CANCELLED)
        elif self._handle is not None:
            self._handle.close()

    def __enter__(self) -> UpdateOperation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._result.outcome.name if self._result else self._machine.phase.name
        return f"<mpupdate.UpdateOperation {state} {self.percent}%>"

    def _stop(self, outcome: Outcome, timeout: Optional[float] = None) -> None:
        """End a running update early: abort, close, drain what arrived, build the result."""
        with self._state:
            if self._result is not None:
                return
            pending: Optional[BaseException] = None
            if self.handle is not None and not self._machine.done:
                try:
                    hr = self._send_abort()
                    if failed(hr) and hr != E_ABORT:
                        self._machine.note(f"MpUpdateControl(ABORT) failed: {format_hresult(hr)}")
                except KeyboardInterrupt as exc:  # finish the clean-up first, then re-raise
                    pending = exc
            try:
                self._conclude(outcome, timeout)
            finally:
                if pending is not None:
                    raise pending

    def _close_handle(self) -> None:
        if self._handle is not None:
            hr = self._handle.close()
            if failed(hr):
                self._machine.note(f"MpHandleClose(update handle) failed: {format_hresult(hr)}")
        self._sink.wake()  # a consumer waiting on another thread sees the handle closed

    def _drain(self) -> None:
        """Feed what arrived before the handle closed, without the progress function."""
        late = list(self._pending)
        self._pending.clear()
        late.extend(self._sink.take())
        self._take_problems()
        for event in late:
            self._events.append(event)
            try:
                self._machine.feed(event)
            except ProtocolError as exc:  # ending anyway: keep it as an anomaly
                self._machine.note(str(exc))

    def _conclude(self, forced: Optional[Outcome], timeout: Optional[float]) -> None:
        """Close, take what arrived meanwhile, and settle the result (with ``_state`` held).

        ``forced`` (TIMED_OUT or CANCELLED, when we stopped the update) is the outcome unless
        COMPLETE reported more than "aborted": an update that finished before the abort took
        effect did finish. Ctrl-C during the close is re-raised once the result is settled.
        """
        pending: Optional[BaseException] = None
        try:
            self._close_handle()
        except KeyboardInterrupt as exc:
            pending = exc
        self._drain()
        complete = self._machine.complete
        if forced is not None and (
            complete is None or outcome_of(complete.hresult) is Outcome.CANCELLED
        ):
            if forced is Outcome.TIMED_OUT:
                message = f"The update did not finish within {timeout:g} s and was aborted."
                self._result = self._build(forced, E_TIMEOUT, message)
            else:
                self._result = self._build(forced, E_ABORT, "The update was cancelled.")
        elif complete is not None:
            self._result = self._build(outcome_of(complete.hresult), complete.hresult)
        else:
            self._machine.note("the update ended without SIGUPDATE_COMPLETE")
            self._result = self._build(Outcome.FAILED, E_FAIL)
        if pending is not None:
            raise pending

    def _versions(self, when: str) -> Optional[VersionInfo]:
        """The client's versions ``when`` ("before"/"after") the update; None, noted as an
        anomaly, where the query fails."""
        try:
            return self.client.version()
        except MpError as exc:
            self._machine.note(f"versions {when} the update unavailable: {exc.name}")
            return None

    def _build(self, outcome: Outcome, hresult: int, message: Optional[str] = None) -> UpdateResult:
        machine, client = self._machine, self.client
        if message is None:
            message = _MESSAGES.get(outcome) or client.error_message(hresult)
        versions_after = None
        if not client.closed:
            versions_after = self._versions("after")
        return UpdateResult(
            outcome=outcome,
            hresult=hresult,
            message=message,
            reboot_required=machine.reboot_required,
            events=tuple(self._events),
            anomalies=tuple(machine.anomalies),
            source=self.source,
            options=self.options,
            started_at=self.started_at,
            finished_at=client.clock.now(),
            versions_before=self.versions_before,
            versions_after=versions_after,
            hint=None
            if outcome in (Outcome.UPDATED, Outcome.ALREADY_CURRENT)
            else describe(hresult).hint,
        )
