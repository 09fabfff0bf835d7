"""Record a real update as a trace, scrubbed of machine-specific values, and replay it.

Design. No Python may run on the DLL's threads, so the recorder does not wrap the callback: the
client's own callback (the compiled C capture) stays in ``MPCALLBACK_INFO`` untouched, and the
notifications are taken afterwards from :attr:`UpdateResult.events
<mpupdate.UpdateResult.events>`, where the client keeps every one with its FILETIME and its
MPSIGUPDATE_DATA. What the result does not hold comes from :class:`Recorder`, a backend that
wraps another one and passes every export through: each call's name, HRESULT and the argument
that matters (the update options, the control, the code asked about), the text
``MpErrorMessageFormat`` answered, and the moment an ABORT was sent. :func:`record` runs one
update through ``mpupdate.update()`` on a Recorder and turns both into a
:class:`~mpupdate.fakes.trace.Trace`:

- ``started_at`` is the SIGUPDATE_START's FILETIME; each notification's ``at`` is its FILETIME
  less START's, in seconds (never negative, never going backwards, so a clock step cannot make
  the trace unloadable);
- ``complete`` is the COMPLETE's time and hResult, except when the recorder's own ABORT ended the
  update (a timeout): then the update did not end by itself, so ``complete`` is null and the
  COMPLETE's delay after the ABORT is ``abort_latency``; the timeout is kept in ``recording``, and
  a replay with it ends TIMED_OUT the same way;
- a failing ``MpManagerOpen``/``MpUpdateStart`` becomes ``open_hresult``/``start_hresult``; the
  versions before and after are the ones the client queried; ``messages`` the DLL's own texts.

Every string is then scrubbed (:class:`Scrubber`) before anything is written. :func:`replay` runs
a trace on :class:`~mpupdate.fakes.FakeMpClient` (or the native fake) with the recorded options
and timeout.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Union

import mpupdate
from mpupdate._native import ffi
from mpupdate.backends import Backend, backend_clock, resolve_backend
from mpupdate.clock import Clock
from mpupdate.constants import E_ABORT, Control, Notify, Source, UpdateOption
from mpupdate.events import Event, read_utf16
from mpupdate.hresults import failed, to_unsigned
from mpupdate.results import Outcome, UpdateResult
from mpupdate.versions import VersionInfo

from .scenario import MAX_SECONDS, Scenario, ScenarioComplete, ScenarioNotification, SigUpdateData
from .trace import Trace, TraceCall

__all__ = ["Recorder", "Scrubber", "record", "replay", "trace_of"]

_ASYNC = int(UpdateOption.ASYNC)


class Recorder:
    """A backend that passes every export through to ``backend`` and records the calls.

    ``calls`` (:class:`~mpupdate.fakes.trace.TraceCall`, in order), ``messages`` (code -> the
    text MpErrorMessageFormat answered), ``options`` (the last MpUpdateStart's), ``aborted_at``
    (when the first accepted ABORT was sent, on the backend's clock). Its ``clock`` is the
    wrapped backend's, so the client waits on the fakes' virtual clock through it as well.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls: list[TraceCall] = []
        self.messages: dict[int, str] = {}
        self.options: Optional[int] = None
        self.aborted_at: Optional[datetime] = None
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return backend_clock(self.backend)

    def _note(self, name: str, hresult: Optional[int], argument: Optional[int] = None) -> None:
        with self._lock:
            self.calls.append(
                TraceCall(name, None if hresult is None else to_unsigned(hresult), argument)
            )

    def MpManagerOpen(self, dwReserved: int, phMpHandle: Any) -> int:
        hr = int(self.backend.MpManagerOpen(dwReserved, phMpHandle))
        self._note("MpManagerOpen", hr)
        return hr

    def MpUpdateStart(
        self, hMpHandle: Any, dwUpdateOptions: int, pCallbackInfo: Any, phUpdateHandle: Any
    ) -> int:
        self.options = int(dwUpdateOptions)
        hr = int(
            self.backend.MpUpdateStart(hMpHandle, dwUpdateOptions, pCallbackInfo, phUpdateHandle)
        )
        self._note("MpUpdateStart", hr, int(dwUpdateOptions))
        return hr

    def MpUpdateControl(self, hMpHandle: Any, control: int) -> int:
        sent = self.clock.now()
        hr = int(self.backend.MpUpdateControl(hMpHandle, control))
        self._note("MpUpdateControl", hr, int(control))
        if control == int(Control.ABORT) and not failed(to_unsigned(hr)):
            with self._lock:
                if self.aborted_at is None:
                    self.aborted_at = sent
        return hr

    def MpHandleClose(self, hMpHandle: Any) -> int:
        hr = int(self.backend.MpHandleClose(hMpHandle))
        self._note("MpHandleClose", hr)
        return hr

    def MpErrorMessageFormat(self, hMpHandle: Any, hr: int, ppszText: Any) -> int:
        result = int(self.backend.MpErrorMessageFormat(hMpHandle, hr, ppszText))
        self._note("MpErrorMessageFormat", result, to_unsigned(hr))
        if not failed(to_unsigned(result)) and ppszText[0] != ffi.NULL:
            text = read_utf16(ppszText[0], 0xFFFF)
            if text is not None:
                # The DLL ends its text with a line end, which a scenario's message leaves out
                # (the fakes add it back), so the replay answers exactly the same text.
                if text.endswith("\r\n"):
                    text = text[:-2]
                with self._lock:
                    self.messages[to_unsigned(hr)] = text
        return result

    def MpFreeMemory(self, pMemory: Any) -> None:
        self.backend.MpFreeMemory(pMemory)
        self._note("MpFreeMemory", None)

    def MpManagerVersionQuery(self, hMpHandle: Any, pInfo: Any) -> int:
        hr = int(self.backend.MpManagerVersionQuery(hMpHandle, pInfo))
        self._note("MpManagerVersionQuery", hr)
        return hr

    # -- the trace -----------------------------------------------------------------------------

    def trace(
        self,
        result: UpdateResult,
        name: str = "recorded",
        timeout: Optional[float] = None,
    ) -> Trace:
        """The (unscrubbed) trace of ``result``, the update run through this recorder."""
        return trace_of(result, self, name=name, timeout=timeout)


def _seconds(ticks: int) -> float:
    return min(max(ticks, 0) / 10_000_000, MAX_SECONDS)


def _notification(event: Event, at: float) -> ScenarioNotification:
    data = None
    if event.percent is not None:
        data = SigUpdateData(
            percent=event.percent,
            total_updates=event.total_updates or 0,
            current_index=event.current_index or 0,
            update_type=int(event.update_type or 0),
            stage=int(event.stage or 0),
            path=event.path,
        )
    return ScenarioNotification(
        at=at,
        notify=int(event.notify),
        hresult=event.hresult,
        data=data,
        callback_type=event.callback_type,
    )


def _call_hresult(recorder: Recorder, name: str) -> int:
    """The first failing HRESULT of ``name`` (0 if it never failed)."""
    for call in recorder.calls:
        if call.name == name and call.hresult is not None and failed(call.hresult):
            return call.hresult
    return 0


def _defaults() -> VersionInfo:
    return Scenario("defaults").versions_before


def trace_of(
    result: UpdateResult,
    recorder: Recorder,
    name: str = "recorded",
    timeout: Optional[float] = None,
) -> Trace:
    """The trace of an update: ``result`` (from ``mpupdate.update(backend=recorder, ...)``) and
    what ``recorder`` saw; see the module's docs for how each field is derived."""
    events = result.events
    start = next((e for e in events if e.notify is Notify.SIGUPDATE_START), None)
    base = start.filetime if start is not None else None
    started_at = start.timestamp if start is not None else result.started_at
    notifications: list[ScenarioNotification] = []
    complete_event: Optional[Event] = None
    latest = 0.0
    for event in events:
        if event is start or complete_event is not None:
            continue  # START is synthesized; nothing after COMPLETE belongs to the update
        at = latest if base is None else max(latest, _seconds(event.filetime - base))
        latest = at
        if event.notify is Notify.SIGUPDATE_COMPLETE:
            complete_event = event
            continue
        if event.notify is Notify.SIGUPDATE_START:
            continue  # a second START: an anomaly the scenario format cannot hold
        notifications.append(_notification(event, at))
    complete: Optional[ScenarioComplete] = None
    abort_latency = 0.0
    stopped = result.outcome in (Outcome.TIMED_OUT, Outcome.CANCELLED)
    if complete_event is not None:
        at = latest
        if (
            stopped
            and recorder.aborted_at is not None
            and to_unsigned(complete_event.hresult) == E_ABORT
        ):
            # Our ABORT ended it: it did not end by itself.
            sent = max(0.0, (recorder.aborted_at - started_at).total_seconds())
            abort_latency = min(max(0.0, at - sent), MAX_SECONDS - at)
        else:
            complete = ScenarioComplete(at, complete_event.hresult)
    before = result.versions_before or _defaults()
    after = result.versions_after or before
    scenario = Scenario(
        name=name,
        description=f"recorded {started_at.isoformat()}: {result.outcome.name}",
        notifications=tuple(notifications),
        complete=complete,
        open_hresult=_call_hresult(recorder, "MpManagerOpen"),
        start_hresult=_call_hresult(recorder, "MpUpdateStart"),
        abort_latency=abort_latency,
        started_at=started_at,
        versions_before=before,
        versions_after=after,
        messages=tuple(sorted(recorder.messages.items())),
    )
    options = recorder.options if recorder.options is not None else result.options
    return Trace(
        scenario=scenario,
        calls=tuple(recorder.calls),
        recorded_with=_recorded_with(before),
        options=options & ~_ASYNC,
        timeout=timeout,
        outcome=result.outcome.name,
    )


def _recorded_with(versions: VersionInfo) -> tuple[tuple[str, str], ...]:
    import platform

    return (
        ("mpupdate", mpupdate.__version__),
        ("python", platform.python_version()),
        ("os", platform.platform()),
        ("product", versions.product.version),
        ("engine", versions.engine.version),
    )


# -- scrubbing --------------------------------------------------------------------------------

_SID = re.compile(r"S-1-5-21(?:-\d+)+", re.IGNORECASE)
_PROFILE = re.compile(
    r"([\\/](?:Users|home|Documents and Settings)[\\/])([^\\/<>]+)", re.IGNORECASE
)
_TOO_COMMON = {"localhost", "root", "user", "users", "admin", "administrator", "system"}


class Scrubber:
    """Replaces machine-specific values in text by placeholders.

    From the environment: ``USERNAME``/``USER`` and :func:`getpass.getuser` -> ``<user>``,
    ``COMPUTERNAME``/``HOSTNAME`` and :func:`socket.gethostname` (and its first label) ->
    ``<host>``, ``USERDOMAIN``/``USERDNSDOMAIN`` -> ``<domain>``; by pattern: SIDs
    (``S-1-5-21-...``) -> ``<sid>`` and the folder after ``\\Users\\`` (or ``/home/``) ->
    ``<user>``. ``extra``: more values, a mapping value -> placeholder or an iterable of values
    (-> ``<redacted>``). Values are matched case-insensitively as whole words; values shorter
    than three characters and a few common words (``localhost``, ``admin``...) are left alone,
    since replacing them would maul the text.
    """

    def __init__(
        self,
        extra: Union[Mapping[str, str], Iterable[str]] = (),
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}

        def add(value: Optional[str], placeholder: str) -> None:
            if not value:
                return
            value = value.strip()
            if len(value) < 3 or value.lower() in _TOO_COMMON:
                return
            values.setdefault(value.lower(), placeholder)

        for key in ("USERDOMAIN", "USERDNSDOMAIN"):
            add(env.get(key), "<domain>")
        for key in ("USERNAME", "USER"):
            add(env.get(key), "<user>")
        for key in ("COMPUTERNAME", "HOSTNAME"):
            add(env.get(key), "<host>")
        if environ is None:
            add(_getuser(), "<user>")
            host = _gethostname()
            add(host, "<host>")
            if host:
                add(host.split(".")[0], "<host>")
        if isinstance(extra, Mapping):
            for value, placeholder in extra.items():
                add(value, placeholder)
        else:
            for value in extra:
                add(value, "<redacted>")
        self.values = values
        ordered = sorted(values, key=len, reverse=True)  # the longest first: a FQDN before a label
        self._pattern = (
            re.compile(
                r"(?<![A-Za-z0-9])(?:"
                + "|".join(re.escape(v) for v in ordered)
                + r")(?![A-Za-z0-9])",
                re.IGNORECASE,
            )
            if ordered
            else None
        )

    def scrub(self, text: str) -> str:
        text = _SID.sub("<sid>", text)
        if self._pattern is not None:
            text = self._pattern.sub(lambda m: self.values[m.group().lower()], text)
        return _PROFILE.sub(_profile, text)

    def scrub_json(self, value: Any) -> Any:
        """``value`` (parsed JSON) with every string scrubbed, keys included."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        return value

    def scrub_trace(self, trace: Trace) -> Trace:
        return Trace.from_dict(self.scrub_json(trace.to_dict()), "<scrubbed trace>")


def _profile(match: re.Match[str]) -> str:
    name = match.group(2)
    if name.lower() in ("public", "default", "all users", "default user"):
        return match.group()
    return match.group(1) + "<user>"


def _getuser() -> Optional[str]:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name anywhere (getpass raises OSError or KeyError)
        return None


def _gethostname() -> Optional[str]:
    import socket

    try:
        return socket.gethostname()
    except OSError:
        return None


# -- recording and replaying --------------------------------------------------------------------


def record(
    out: Union[str, Path, None] = None,
    *,
    backend: Union[Backend, str, None] = None,
    source: Source = Source.DEFAULT,
    timeout: Optional[float] = None,
    options: Union[UpdateOption, int, None] = None,
    name: str = "recorded",
    scrub: Union[bool, Scrubber] = True,
) -> tuple[Trace, UpdateResult]:
    """Run one update on ``backend`` (as :func:`mpupdate.update` resolves it) through a
    :class:`Recorder`; return its trace (scrubbed unless ``scrub=False``; a :class:`Scrubber`
    to choose the values) and the result, and write the trace to ``out`` if given."""
    recorder = Recorder(resolve_backend(backend))
    result = mpupdate.update(
        source=source, timeout=timeout, backend=recorder, options=options, check=False
    )
    trace = recorder.trace(result, name=name, timeout=timeout)
    if scrub is not False:
        scrubber = scrub if isinstance(scrub, Scrubber) else Scrubber()
        trace = scrubber.scrub_trace(trace)
    if out is not None:
        trace.dump(out)
    return trace, result


def replay(
    trace: Union[Trace, str, Path],
    delivery: str = "timed",
    native: bool = False,
    timeout: Optional[float] = None,
) -> UpdateResult:
    """Run ``trace`` (a Trace or a trace file) on the Python fake, or the native one, with its
    recorded options and timeout (``timeout`` overrides it); the result, never raising for a
    failed update."""
    if not isinstance(trace, Trace):
        trace = Trace.load(trace)
    fake: Backend
    if native:
        from .native import NativeFakeMpClient

        fake = NativeFakeMpClient(trace.scenario, delivery=delivery)
    else:
        from .dll import FakeMpClient

        fake = FakeMpClient(trace.scenario, delivery=delivery)
    return mpupdate.update(
        backend=fake,
        options=trace.options,
        timeout=trace.timeout if timeout is None else timeout,
        check=False,
    )
