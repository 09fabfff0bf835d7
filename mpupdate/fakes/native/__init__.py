"""NativeFakeMpClient: the fake DLL as a real shared library, for running the compiled path.

:class:`~mpupdate.fakes.FakeMpClient` sits below the binding but is still Python. This fake is C
(``mpfake.c``, built on demand by :func:`build_native_fake`): the project's compiled module
dlopens it through :class:`mpupdate.backends.DllBackend` exactly as it loads MpClient.dll, calls
its exports, and receives callbacks the library makes from C — in ``"thread"`` delivery from
pthreads Python never created. It behaves as FakeMpClient does (same HRESULTs, handles, call log,
violations, timestamps), so both can be run against the same tests and compared event for event::

    from mpupdate.fakes.native import NativeFakeMpClient
    fake = NativeFakeMpClient("network-failure", delivery="thread")
    result = mpupdate.update(backend=fake, check=False)
    fake.assert_clean()

The library is global to the process (one MpClient library per process, see DllBackend), so one
scenario is configured at a time: making a NativeFakeMpClient reconfigures it, and is refused
while handles of the previous one are still open. The previous instance keeps a snapshot of its
records (calls, violations, updates) and refuses further calls.

Needs a C compiler and a source checkout; not part of the installed package's run time.
"""

from __future__ import annotations

import atexit
import importlib
import threading
import warnings
import weakref
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional, Union

from mpupdate.backends import EXPORTS, DllBackend, MpClientOverrideWarning
from mpupdate.clock import SYSTEM_CLOCK, Clock
from mpupdate.constants import HRESULTS
from mpupdate.filetime import datetime_to_filetime

from .. import dll, scenarios
from ..clock import SteppingClock
from ..dll import (
    ABORT_HANDLES,
    DELIVERY_MODES,
    FakeCall,
    FakeHang,
    FakeViolation,
    assert_clean,
    check_modes,
    utf16_buffer,
)
from ..scenario import Scenario
from .build import NativeFakeBuildError, build_native_fake

__all__ = [
    "NativeFakeBuildError",
    "NativeFakeMpClient",
    "NativeUpdate",
    "NativeVirtualClock",
    "build_native_fake",
    "native_library",
]

HERE = Path(__file__).resolve().parent

#: The control API numbers the exports in mpupdate.backends.EXPORTS order.
FUNCTIONS = EXPORTS
_WORKER_STATES = ("none", "running", "finished", "joined")
_ABI_VERSION = 1
_STRUCTS = (
    "mpfake_notification",
    "mpfake_message",
    "mpfake_scenario",
    "mpfake_call_record",
    "mpfake_update_record",
)


class NativeLibrary:
    """The built library, loaded twice over: as the MpClient backend and for its control API.

    ``backend`` is the :class:`DllBackend` (the project's compiled module calling the exports);
    ``ffi``/``lib`` an ABI-mode cffi view of the same file for ``mpfake_*`` (dlopen of the same
    path gives the same library, so the state is shared).
    """

    def __init__(self, path: Path) -> None:
        cffi: Any = importlib.import_module("cffi")
        self.path = path
        with warnings.catch_warnings():
            # Asking for the native fake is the explicit choice the warning is there to announce.
            warnings.simplefilter("ignore", MpClientOverrideWarning)
            self.backend = DllBackend(str(path))
        types = resources.files("mpupdate._cdef").joinpath("mpclient_types.h")
        self.ffi: Any = cffi.FFI()
        self.ffi.cdef(types.read_text(encoding="utf-8"))
        self.ffi.cdef((HERE / "mpfake_control.h").read_text(encoding="utf-8"))
        self.lib: Any = self.ffi.dlopen(str(path))
        version = int(self.lib.mpfake_abi_version())
        if version != _ABI_VERSION:
            raise NativeFakeBuildError(
                f"{path} speaks control API version {version}, this module {_ABI_VERSION}"
            )
        for which, name in enumerate(_STRUCTS):
            built, declared = int(self.lib.mpfake_sizeof(which)), self.ffi.sizeof(name)
            if built != declared:
                raise NativeFakeBuildError(
                    f"{path}: sizeof({name}) is {built} in the library but {declared} in "
                    "mpfake_control.h as cffi reads it; rebuild"
                )
        # No callback may reach a finalizing interpreter: stop the workers at exit.
        atexit.register(self.lib.mpfake_quiesce)

    def string(self, pointer: Any) -> str:
        if pointer == self.ffi.NULL:
            return ""
        return str(self.ffi.string(pointer).decode("utf-8", "replace"))

    def last_error(self) -> str:
        return self.string(self.lib.mpfake_last_error())

    def utf16(self, text: str) -> Any:
        return utf16_buffer(self.ffi, text)


_library: Optional[NativeLibrary] = None
_library_lock = threading.Lock()
_active: Optional[weakref.ReferenceType[NativeFakeMpClient]] = None


def native_library(cache_dir: Union[str, Path, None] = None) -> NativeLibrary:
    """Build (or reuse) and load the native fake; the same object for the whole process."""
    global _library
    with _library_lock:
        if _library is None:
            _library = NativeLibrary(build_native_fake(cache_dir))
        return _library


# -- virtual time -------------------------------------------------------------------------------


class NativeVirtualClock(SteppingClock):
    """The library's virtual time, as a :class:`mpupdate.clock.Clock`; works like VirtualClock.

    Waiting does not block: it jumps to the next scheduled notification (delivering what is due,
    on the waiting thread) or to the caller's deadline, whichever comes first.
    """

    def __init__(self, library: NativeLibrary, start: datetime) -> None:
        super().__init__(start)
        self._library = library

    def monotonic(self) -> float:
        return float(self._library.lib.mpfake_now())

    def next_deadline(self) -> Optional[float]:
        when = self._library.ffi.new("double *")
        return float(when[0]) if self._library.lib.mpfake_next_due(when) else None

    def advance_to(self, when: float) -> None:
        self._library.lib.mpfake_advance_to(float(when))


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NativeUpdate:
    """What the native fake knows about one update it ran (a snapshot)."""

    handle: int
    manager: int
    options: int
    context: int
    start: float
    last_at: float
    wall_filetime: int
    delivered: tuple[int, ...]
    """The notification numbers delivered, in order."""
    aborted: bool
    completed: bool
    complete_hresult: Optional[int]
    worker: str
    """``"none"`` (immediate, timed), ``"running"``, ``"finished"`` or ``"joined"``."""

    @property
    def running(self) -> bool:
        return not self.completed


@dataclass(frozen=True)
class _Snapshot:
    calls: tuple[FakeCall, ...]
    violations: tuple[str, ...]
    updates: tuple[NativeUpdate, ...]
    open_handles: dict[int, str]
    outstanding_allocations: int
    live_workers: int


def _read_calls(library: NativeLibrary) -> list[FakeCall]:
    ffi, lib = library.ffi, library.lib
    count = int(lib.mpfake_call_count())
    records = ffi.new("mpfake_call_record[]", max(count, 1))
    copied = int(lib.mpfake_calls(0, records, count))
    calls = []
    for record in records[0:copied]:
        function = FUNCTIONS[record.function] if record.function < len(FUNCTIONS) else "?"
        args = tuple(int(record.args[i]) for i in range(record.arg_count))
        hresult = int(record.hresult) if record.has_hresult else None
        thread = f"mpfake-update-{int(record.thread):X}" if record.thread else "caller"
        calls.append(FakeCall(function, args, hresult, thread))
    return calls


def _read_updates(library: NativeLibrary) -> list[NativeUpdate]:
    ffi, lib = library.ffi, library.lib
    record = ffi.new("mpfake_update_record *")
    updates = []
    for index in range(int(lib.mpfake_update_count())):
        if not lib.mpfake_update(index, record):
            break
        count = int(lib.mpfake_update_delivered(index, ffi.NULL, 0))
        notify = ffi.new("uint32_t[]", max(count, 1))
        count = min(count, int(lib.mpfake_update_delivered(index, notify, count)))
        updates.append(
            NativeUpdate(
                handle=int(record.handle),
                manager=int(record.manager),
                options=int(record.options),
                context=int(record.context),
                start=float(record.start),
                last_at=float(record.last_at),
                wall_filetime=int(record.wall_filetime),
                delivered=tuple(int(n) for n in notify[0:count]),
                aborted=bool(record.aborted),
                completed=bool(record.completed),
                complete_hresult=int(record.complete_hresult) if record.completed else None,
                worker=_WORKER_STATES[record.worker]
                if record.worker < len(_WORKER_STATES)
                else "?",
            )
        )
    return updates


def _read_open_handles(library: NativeLibrary) -> dict[int, str]:
    ffi, lib = library.ffi, library.lib
    count = int(lib.mpfake_open_handle_count())
    values = ffi.new("uint64_t[]", max(count, 1))
    kinds = ffi.new("uint32_t[]", max(count, 1))
    count = min(count, int(lib.mpfake_open_handles(values, kinds, count)))
    return {int(values[i]): "manager" if kinds[i] == 0 else "update" for i in range(count)}


def _read_violations(library: NativeLibrary) -> list[str]:
    lib = library.lib
    return [
        library.string(lib.mpfake_violation(i)) for i in range(int(lib.mpfake_violation_count()))
    ]


# -- the fake -----------------------------------------------------------------------------------


class NativeFakeMpClient:
    """The native fake DLL replaying a :class:`Scenario`; a backend like FakeMpClient.

    ``scenario``: a Scenario, a built-in scenario name or a path to a scenario file.
    ``delivery``: ``"immediate"``, ``"thread"`` (callbacks from the library's own pthreads) or
    ``"timed"`` (on the library's virtual clock, :attr:`clock`). ``strict``: raise
    :class:`FakeViolation` after a call that recorded a violation (recorded either way).
    ``abort_handle``: which handle MpUpdateControl accepts (``"manager"``, ``"update"``,
    ``"either"``). ``cache_dir``: where to build the library on first use in the process (see
    :func:`build_native_fake`); later instances reuse the library already loaded.

    Raises RuntimeError if the previous NativeFakeMpClient still has open handles.
    """

    def __init__(
        self,
        scenario: Union[Scenario, str, Path] = "updated",
        delivery: str = "immediate",
        strict: bool = True,
        abort_handle: str = "manager",
        cache_dir: Union[str, Path, None] = None,
    ) -> None:
        global _active
        check_modes(delivery, abort_handle)
        self.scenario = scenarios.load_any(scenario)
        self.delivery = delivery
        self.strict = strict
        self.abort_handle = abort_handle
        library = native_library(cache_dir)
        self._library = library
        self._lib = library.lib
        self._backend = library.backend
        self.path = library.path
        self._snapshot: Optional[_Snapshot] = None
        self.virtual_clock = NativeVirtualClock(library, self.scenario.started_at)
        #: The clock the client waits on: the library's virtual time, except in ``thread`` mode
        #: where real threads deliver.
        self.clock: Clock = SYSTEM_CLOCK if delivery == "thread" else self.virtual_clock
        with _library_lock:
            open_handles = _read_open_handles(library)
            if open_handles:
                previous = _active() if _active is not None else None
                owner = repr(previous) if previous is not None else "a previous configuration"
                raise RuntimeError(
                    f"the native fake is still in use by {owner}: handle(s) "
                    + ", ".join(f"0x{value:X} ({kind})" for value, kind in open_handles.items())
                    + " are open. Only one scenario can be configured at a time in a process; "
                    "close them first, or call NativeFakeMpClient.reset_library() to discard "
                    "that state"
                )
            previous = _active() if _active is not None else None
            if previous is not None:
                previous._retire()
            self._configure()
            _active = weakref.ref(self)
        if dll._tracker is not None:  # checked clean after the test by the pytest plugin
            dll._tracker.append(self)

    def __repr__(self) -> str:
        return f"NativeFakeMpClient({self.scenario.name!r}, delivery={self.delivery!r})"

    def _configure(self) -> None:
        library, scenario = self._library, self.scenario
        ffi = library.ffi
        keep: list[Any] = []
        notifications = ffi.new("mpfake_notification[]", max(len(scenario.notifications), 1))
        for target, item in zip(notifications, scenario.notifications):
            target.at = item.at
            target.notify = item.notify
            target.hresult = item.hresult & 0xFFFFFFFF
            target.callback_type = item.callback_type
            if item.data is not None:
                target.has_data = 1
                target.percent = item.data.percent
                target.total_updates = item.data.total_updates
                target.current_index = item.data.current_index
                target.update_type = item.data.update_type
                target.stage = item.data.stage
                if item.data.path is not None:
                    path = library.utf16(item.data.path)
                    keep.append(path)
                    target.path = path
        # The scenario's own texts first, then the offline table (FakeMpClient's order).
        table: dict[int, str] = {}
        for code, text in (*scenario.messages, *((c, i.message) for c, i in HRESULTS.items())):
            table.setdefault(code & 0xFFFFFFFF, text)
        messages = ffi.new("mpfake_message[]", max(len(table), 1))
        for target, (code, text) in zip(messages, table.items()):
            buffer = library.utf16(text)
            keep.append(buffer)
            target.code = code
            target.text = buffer
        config = ffi.new("mpfake_scenario *")
        config.notifications = notifications
        config.notification_count = len(scenario.notifications)
        config.messages = messages
        config.message_count = len(table)
        scenario.versions_before.to_struct(config.versions_before)
        scenario.versions_after.to_struct(config.versions_after)
        config.has_complete = scenario.complete is not None
        if scenario.complete is not None:
            config.complete_at = scenario.complete.at
            config.complete_hresult = scenario.complete.hresult & 0xFFFFFFFF
        config.open_hresult = scenario.open_hresult & 0xFFFFFFFF
        config.start_hresult = scenario.start_hresult & 0xFFFFFFFF
        config.abort_latency = scenario.abort_latency
        config.base_filetime = datetime_to_filetime(scenario.started_at)
        config.delivery = DELIVERY_MODES.index(self.delivery)
        config.abort_handle = ABORT_HANDLES.index(self.abort_handle)
        if self._lib.mpfake_configure(config) != 0:
            raise RuntimeError(f"the native fake refused the scenario: {library.last_error()}")

    def _retire(self) -> None:
        """Keep this instance's records before another configuration replaces them."""
        if self._snapshot is None:
            self._snapshot = self._take_snapshot()

    def _take_snapshot(self) -> _Snapshot:
        library = self._library
        return _Snapshot(
            calls=tuple(_read_calls(library)),
            violations=tuple(_read_violations(library)),
            updates=tuple(_read_updates(library)),
            open_handles=_read_open_handles(library),
            outstanding_allocations=int(library.lib.mpfake_outstanding_allocations()),
            live_workers=int(library.lib.mpfake_live_workers()),
        )

    @staticmethod
    def reset_library(cache_dir: Union[str, Path, None] = None) -> None:
        """Discard the library's state (open handles included): stop its workers, forget all.

        For recovering after a test left handles open; the previous instance keeps a snapshot.
        """
        global _active
        library = native_library(cache_dir)
        with _library_lock:
            previous = _active() if _active is not None else None
            if previous is not None:
                previous._retire()
            _active = None
            if library.lib.mpfake_reset() != 0:
                raise RuntimeError(f"the native fake could not reset: {library.last_error()}")

    # -- introspection -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """False once another NativeFakeMpClient (or reset_library) has replaced this one."""
        return self._snapshot is None

    @property
    def calls(self) -> list[FakeCall]:
        """Every call into the exports, in order (thread: ``"caller"`` or the worker's name)."""
        if self._snapshot is not None:
            return list(self._snapshot.calls)
        return _read_calls(self._library)

    def calls_to(self, function: str) -> list[FakeCall]:
        return [call for call in self.calls if call.function == function]

    def call_count(self, function: str) -> int:
        """How many times ``function`` was called (cheaper than ``len(calls_to(...))``)."""
        if self._snapshot is not None:
            return len(self.calls_to(function))
        return int(self._lib.mpfake_calls_to(FUNCTIONS.index(function)))

    @property
    def violations(self) -> list[str]:
        if self._snapshot is not None:
            return list(self._snapshot.violations)
        return _read_violations(self._library)

    def clear_violations(self) -> None:
        """Forget the violations recorded so far (for a test that provoked them on purpose)."""
        self._check_active()
        self._lib.mpfake_clear_violations()

    @property
    def updates(self) -> list[NativeUpdate]:
        """Every update started, in order, as snapshots."""
        if self._snapshot is not None:
            return list(self._snapshot.updates)
        return _read_updates(self._library)

    @property
    def open_handles(self) -> dict[int, str]:
        """Open handles as ``{value: "manager" | "update"}``."""
        if self._snapshot is not None:
            return dict(self._snapshot.open_handles)
        return _read_open_handles(self._library)

    @property
    def outstanding_allocations(self) -> int:
        """Buffers returned by MpErrorMessageFormat and not yet given to MpFreeMemory."""
        if self._snapshot is not None:
            return self._snapshot.outstanding_allocations
        return int(self._lib.mpfake_outstanding_allocations())

    @property
    def live_workers(self) -> int:
        """Worker threads that have not finished."""
        if self._snapshot is not None:
            return self._snapshot.live_workers
        return int(self._lib.mpfake_live_workers())

    def assert_clean(self) -> None:
        """Raise AssertionError naming every open handle, unfreed buffer and violation."""
        assert_clean(
            "NativeFakeMpClient",
            self.violations,
            self.open_handles,
            self.outstanding_allocations,
            [update.handle for update in self.updates if update.worker == "running"],
        )

    # -- test controls -------------------------------------------------------------------------

    def hold(self, index: int) -> None:
        """In thread delivery, make workers wait before delivering plan item ``index`` (0 is the
        synthesized START) until :meth:`release_holds` or an abort of their update."""
        self._check_active()
        self._lib.mpfake_set_hold(index)

    def release_holds(self) -> None:
        self._lib.mpfake_release_holds()

    def wait_held(self, count: int, timeout: float = 5.0) -> bool:
        """Wait (real time, at most ``timeout`` s) until ``count`` workers are held."""
        return bool(self._lib.mpfake_wait_held(count, timeout))

    def quarantine(self, on: bool = True) -> None:
        """Keep freed (poisoned) notification blocks allocated until the next configuration,
        so a test may read what a stale pointer would see."""
        self._check_active()
        self._lib.mpfake_set_quarantine(1 if on else 0)

    # -- the exports ---------------------------------------------------------------------------

    def _check_active(self) -> None:
        if self._snapshot is not None:
            raise RuntimeError(
                f"{self!r} was replaced by a newer NativeFakeMpClient (the library holds one "
                "scenario at a time); use the new one"
            )

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        self._check_active()
        lib = self._lib
        violations, hangs = lib.mpfake_thread_violations(), lib.mpfake_thread_hangs()
        result = function(*args)
        if lib.mpfake_thread_hangs() != hangs:
            raise FakeHang.for_scenario(self.scenario.name)
        if self.strict and lib.mpfake_thread_violations() != violations:
            index = int(lib.mpfake_thread_last_violation())
            raise FakeViolation(self._library.string(lib.mpfake_violation(index)))
        return result

    def MpManagerOpen(self, dwReserved: int, phMpHandle: Any) -> int:
        return int(self._call(self._backend.MpManagerOpen, dwReserved, phMpHandle))

    def MpUpdateStart(
        self, hMpHandle: Any, dwUpdateOptions: int, pCallbackInfo: Any, phUpdateHandle: Any
    ) -> int:
        return int(
            self._call(
                self._backend.MpUpdateStart,
                hMpHandle,
                dwUpdateOptions,
                pCallbackInfo,
                phUpdateHandle,
            )
        )

    def MpUpdateControl(self, hMpHandle: Any, control: int) -> int:
        return int(self._call(self._backend.MpUpdateControl, hMpHandle, control))

    def MpHandleClose(self, hMpHandle: Any) -> int:
        return int(self._call(self._backend.MpHandleClose, hMpHandle))

    def MpErrorMessageFormat(self, hMpHandle: Any, hr: int, ppszText: Any) -> int:
        return int(self._call(self._backend.MpErrorMessageFormat, hMpHandle, hr, ppszText))

    def MpFreeMemory(self, pMemory: Any) -> None:
        self._call(self._backend.MpFreeMemory, pMemory)

    def MpManagerVersionQuery(self, hMpHandle: Any, pInfo: Any) -> int:
        return int(self._call(self._backend.MpManagerVersionQuery, hMpHandle, pInfo))
