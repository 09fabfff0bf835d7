"""The performance harness: every number the performance issue asks for, side by side, in one run.

Run on demand (not part of the test suite; timings do not belong in assertions)::

    python benchmarks/run.py              # medians of 7 rounds; about 25 s here
    python benchmarks/run.py --quick      # medians of 3 rounds, smaller counts; about 6 s
    python benchmarks/run.py --smoke      # tiny counts, a few seconds: for CI; checks only
                                          # that every row produced a number (no thresholds)
    python benchmarks/run.py --json FILE  # also write every sample and verdict as JSON
    python benchmarks/run.py --profile    # then: where the time goes (piecewise, cProfile)
                                          # (piecewise timings, cProfile, -X importtime)

Everything runs in this one process (subprocesses only for the import rows), because on a shared
machine absolute timings swing by 3x while ratios measured within one run hold. The timed rows are
interleaved: each round runs every row once, and each ratio is the median of that row's per-round
ratios (paired with the same round's ctypes or C-floor sample), so a load spike hits both sides.
Every sample of a per-notification row starts after ``gc.collect()`` and runs with the collector
on, as programs do.

Per-notification rows (µs per notification, median, min and max over the rounds; then the row
divided by the ctypes row and by the C floor). The first five rows call a callback from the same
C loop: ``bench_drive`` in a small C module this script compiles with cffi (API mode) into a
temporary directory and deletes afterwards. The loop holds one DOWNLOAD_PROGRESS notification as
MpClient passes it (MPCALLBACK_DATA -> MPSIGUPDATE_DATA -> a 79-character UTF-16 path), changes
its timestamp and percent before each call, and calls the function pointer it is given with the
GIL released, as MpClient's thread would:

- ``C floor``: a C callback copying every field of MPCALLBACK_DATA and MPSIGUPDATE_DATA and the
  UTF-16 path into a ring of C records. What the hardware needs; no Python.
- ``cffi extern "Python", empty body``: an empty ``extern "Python"`` callback of the benchmark's
  module. The trampoline alone: taking the GIL, converting two arguments, calling a Python
  function, returning. What any Python callback pays before it does anything.
- ``cffi ffi.callback (ABI mode)``: a libffi closure (``ffi.callback`` on an ABI-mode ``FFI``
  whose Path is ``char16_t *``) decoding like the ctypes row (``ffi.string`` for the path).
- ``ctypes CFUNCTYPE``: what a user would write with ctypes: ``Structure``/``Union`` classes of
  the two structs, a CFUNCTYPE callback that reads notify, hresult, the FILETIME as an aware UTC
  ``datetime``, the callback type, the five data numbers and the path into a tuple and appends it
  to a list. The path: ``c_wchar_p`` on Windows; elsewhere (wchar_t is 32-bit) the UTF-16 length
  from a C helper through ctypes, then ``string_at`` and ``decode`` (one foreign call more than
  Windows' ``c_wchar_p``, a few hundred ns).
- ``ours: the compiled callback``: the package's own ``mpupdate_callback``, a C function of the
  compiled module (``mpupdate._native.CALLBACK``, the pointer ``Client`` puts in
  MPCALLBACK_INFO), with the context token of a ``Sink`` (a C capture queue): capture only,
  everything the DLL's thread does per notification (copy the fields and the path into the queue
  under its lock, wake a waiting consumer), no consumer. Taking the events out is the consumer's
  work, counted in the update() rows and split out by ``--profile``.
- ``ours: update() via the native fake, immediate`` / ``..., thread``: ``mpupdate.update(backend=
  NativeFakeMpClient(scenario, delivery=...), check=False)`` on a generated update whose download
  reports progress N times (each with MPSIGUPDATE_DATA and the 79-character path), divided by the
  events delivered (N + 8: START, the starts and ends of search, download and install, COMPLETE).
  End to end as programs call it: the C library's exports, the model, the compiled callback, the
  consumer's thread, the state machine, the result. The fake's own Python work (preparing each
  notification, handing it to C) is included; a real DLL has none (``--profile`` shows its
  share). Constructing the fake is not timed.
- ``ours: update() via the Python fake``: the same through ``FakeMpClient`` (immediate delivery),
  as tests run it, with constructing the fake timed: the generated 10,000-notification update
  (one update a sample), and the built-in ``updated-three-packages`` (36 notifications) run many
  times in a loop, so each update's fixed costs (handles, versions, result) count. Reported also
  as notifications per second.

Other rows:

- ``python -c "import mpupdate"``: wall time of a fresh interpreter importing the package
  (median of several runs, interleaved with the next two), what a command-line tool pays at
  every start. The note gives the modules it adds to ``sys.modules``.
- ``python -c "import <needed stdlib>"``: the same for the standard-library modules mpupdate's
  own modules import at import time (found by reading their top-level import statements, outside
  ``if TYPE_CHECKING:`` and functions; listed below the table): the floor for the import row.
- ``python -c pass``: the interpreter's own start, included in both rows above. The note of the
  import row gives both net of it. The 25 ms target is judged net of it (paired per run); the
  1.5x target on the two wall times. All these interpreters may write and use .pyc files, in a
  temporary cache (whatever ``PYTHONDONTWRITEBYTECODE`` says), as an installed package has them.
- The same three with ``python -S`` and the package's folder and site-packages put on
  ``sys.path`` by hand: as a wheel install would import it, without the editable install's
  finder, which imports pathlib, re and more at every start of this virtualenv and so hides
  their cost from the rows above.
- ``idle CPU``: process CPU time (all threads, ``time.process_time``) spent by
  ``mpupdate.update(backend=FakeMpClient("hung", delivery="thread"), timeout=10)``: a 10 s wait
  for an update that never says anything, then the timeout, abort and close. With ``--quick`` the
  wait is 2 s and the waiting part is scaled to 10 s (start and stop costs, measured with a
  0.05 s timeout, are not scaled).
- ``RSS growth``: resident memory (``/proc/self/statm``) after ``gc.collect()``, between a
  checkpoint after the first tenth of the work and the end: over 10^4 update cycles
  (``updated-three-packages`` through the native fake, a new fake each) and over 10^6
  notifications (100 updates of 10,000 through the native fake). ``--quick`` does a tenth of
  each. Growth under 1 MiB (allocator noise) counts as none. Earlier rows have grown the heap,
  and a slow leak can fill freed memory without raising RSS, so the note also gives the growth
  of ``sys.getallocatedblocks()`` over the same span (a leak of one object per cycle shows
  there as at least the number of cycles).
- ``memory a finished UpdateResult holds per event``: tracemalloc's count of what one finished
  update of the generated scenario (native fake) keeps, divided by its events. No target; it
  says what keeping ``result.events`` costs.

The target column holds the performance issue's targets and the verdict how far each is met or
missed. ``--smoke`` runs each row once with tiny counts and exits 1 only if a row produced no
number. The C helpers need the system C compiler and cffi; the native fake is built (and cached)
by ``mpupdate.fakes.native`` as for the tests.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import cProfile
import ctypes
import dataclasses
import datetime as dt
import gc
import importlib
import importlib.util
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional, cast

import mpupdate
from mpupdate import _native
from mpupdate.fakes import (
    FakeMpClient,
    Scenario,
    ScenarioComplete,
    ScenarioNotification,
    SigUpdateData,
)
from mpupdate.fakes.native import NativeFakeMpClient

#: The path every generated notification carries: 79 characters, a realistic MpClient path.
PATH = r"C:\Windows\SoftwareDistribution\Download\Install\am_delta_patch_1.419.135.0.exe"
#: The built-in scenario with 36 notifications (34 from the service, START and COMPLETE).
BUILT_IN = "updated-three-packages"
#: 2026-01-01T00:00:00Z as a FILETIME: the first timestamp of the C loop's notifications.
FIRST_FILETIME = 134_116_992_000_000_000
EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
SIGUPDATE = int(mpupdate.CallbackType.SIGUPDATE)

# -- sizes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much each row does; one set per mode."""

    mode: str
    rounds: int
    callback_count: int  # notifications per sample, Python callback rows
    c_count: int  # notifications per sample, the C floor and the empty trampoline
    end_to_end_count: int  # progress notifications of the generated update (native fake rows)
    python_fake_count: int  # progress notifications of the generated update (Python fake row)
    built_in_updates: int  # updates per sample of the built-in scenario
    import_runs: int
    idle_seconds: float
    rss_notifications: int
    rss_update_size: int
    rss_cycles: int


FULL = Sizes("full", 7, 20_000, 200_000, 10_000, 10_000, 100, 7, 10.0, 1_000_000, 10_000, 10_000)
QUICK = Sizes("quick", 3, 5_000, 50_000, 2_000, 10_000, 30, 5, 2.0, 100_000, 10_000, 1_000)
SMOKE = Sizes("smoke", 1, 200, 2_000, 200, 500, 3, 2, 0.2, 2_000, 200, 20)

#: The wait the idle-CPU target is stated for; shorter waits are scaled to it.
IDLE_FULL_SECONDS = 10.0

# -- the benchmark's C module ---------------------------------------------------------------------

#: The two MpClient structures (MPCLIENT.md section 2), as cdef and as C; the Path's type varies:
#: uint16_t * in the compiled module, char16_t * in the ABI-mode FFI (so ffi.string decodes it).
TYPES = """
typedef struct {
    uint32_t dwPercentComplete;
    uint32_t dwTotalUpdates;
    uint32_t dwCurrentUpdateIndex;
    uint32_t eType;
    uint32_t Stage;
    PATH_TYPE *Path;
} MPSIGUPDATE_DATA;

typedef struct {
    uint32_t Notify;
    int32_t hResult;
    uint64_t TimeStamp;
    uint32_t Type;
    union {
        MPSIGUPDATE_DATA *pSigUpdateData;
        void *pOther;
    } Data;
} MPCALLBACK_DATA;

typedef int32_t (WINAPI *MPCALLBACK_FUNCTION)(uintptr_t context, MPCALLBACK_DATA *pData);
"""

FUNCTIONS = """
uint32_t bench_drive(uintptr_t function, uintptr_t context, MPCALLBACK_DATA *data,
                     uint32_t count);
uintptr_t bench_copy_callback(void);
uint64_t bench_copied(void);
uint32_t bench_last_percent(void);
size_t bench_utf16_len(const uint16_t *text);
extern "Python" int32_t WINAPI bench_empty(uintptr_t context, MPCALLBACK_DATA *pData);
"""

SOURCE = (
    r"""
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#ifndef _WIN32
#define WINAPI
#endif
#define PATH_TYPE uint16_t
"""
    + TYPES.replace("PATH_TYPE", "uint16_t")
    + r"""

/* The C floor: everything a C capture must copy, per notification, into a C buffer. */
#define BENCH_RING 64
#define BENCH_PATH_UNITS 260
typedef struct {
    uint32_t notify;
    int32_t hresult;
    uint64_t timestamp;
    uint32_t type;
    uint32_t has_data;
    uint32_t percent, total_updates, current_index, update_type, stage;
    uint32_t path_units;
    uint16_t path[BENCH_PATH_UNITS];
} bench_record;

static bench_record bench_records[BENCH_RING];
static uint64_t bench_count;

static int32_t WINAPI bench_copy(uintptr_t context, MPCALLBACK_DATA *data)
{
    bench_record *record = &bench_records[bench_count % BENCH_RING];
    (void)context;
    if (data == NULL)
        return 0;
    record->notify = data->Notify;
    record->hresult = data->hResult;
    record->timestamp = data->TimeStamp;
    record->type = data->Type;
    record->has_data = 0;
    record->path_units = 0;
    if (data->Type == 6 && data->Data.pSigUpdateData != NULL) {
        const MPSIGUPDATE_DATA *sig = data->Data.pSigUpdateData;
        record->has_data = 1;
        record->percent = sig->dwPercentComplete;
        record->total_updates = sig->dwTotalUpdates;
        record->current_index = sig->dwCurrentUpdateIndex;
        record->update_type = sig->eType;
        record->stage = sig->Stage;
        if (sig->Path != NULL) {
            size_t units = 0;
            while (units < BENCH_PATH_UNITS - 1 && sig->Path[units] != 0)
                units++;
            memcpy(record->path, sig->Path, units * sizeof(uint16_t));
            record->path[units] = 0;
            record->path_units = (uint32_t)units;
        }
    }
    bench_count++;
    return 0;
}

uintptr_t bench_copy_callback(void) { return (uintptr_t)&bench_copy; }
uint64_t bench_copied(void) { return bench_count; }
uint32_t bench_last_percent(void)
{
    return bench_count ? bench_records[(bench_count - 1) % BENCH_RING].percent : 0;
}

size_t bench_utf16_len(const uint16_t *text)
{
    size_t units = 0;
    if (text != NULL)
        while (text[units] != 0)
            units++;
    return units;
}

/* Call 'function' 'count' times with the notification 'data' (its timestamp and percent
 * changed before each call), as MpClient's thread calls the callback. */
uint32_t bench_drive(uintptr_t function, uintptr_t context, MPCALLBACK_DATA *data, uint32_t count)
{
    MPCALLBACK_FUNCTION callback = (MPCALLBACK_FUNCTION)function;
    MPSIGUPDATE_DATA *sig = data->Data.pSigUpdateData;
    uint64_t first = data->TimeStamp;
    uint32_t i;
    for (i = 0; i < count; i++) {
        data->TimeStamp = first + (uint64_t)i * 10000u;
        if (sig != NULL)
            sig->dwPercentComplete = (uint32_t)((uint64_t)i * 100u / count);
        callback(context, data);
    }
    data->TimeStamp = first;
    return i;
}
"""
)


class BenchModule:
    """The benchmark's compiled C module (cffi API mode), built in a temporary directory."""

    NAME = "_mpupdate_bench"

    def __init__(self) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="mpupdate-bench-")
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        cffi: Any = importlib.import_module("cffi")
        builder: Any = cffi.FFI()
        builder.cdef(TYPES.replace("PATH_TYPE", "uint16_t") + FUNCTIONS)
        builder.set_source(self.NAME, SOURCE)
        # distutils talks on stdout; the table is what this script prints.
        with contextlib.redirect_stdout(io.StringIO()):
            built = builder.compile(tmpdir=self.tmpdir, verbose=False)
        self.path = str(built)
        spec = importlib.util.spec_from_file_location(self.NAME, self.path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load the benchmark module built at {self.path}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.ffi: Any = cast(Any, module).ffi
        self.lib: Any = cast(Any, module).lib

        @self.ffi.def_extern(name="bench_empty")  # type: ignore[misc]
        def _empty(context: int, data: Any) -> int:
            return 0

        # The notification the C loop delivers: one block, pointers into itself.
        self.path_buffer = utf16(self.ffi, PATH)
        self.sig = self.ffi.new("MPSIGUPDATE_DATA *")
        self.sig.dwTotalUpdates = 1
        self.sig.dwCurrentUpdateIndex = 0
        self.sig.eType = int(mpupdate.SigUpdateType.HTTP)
        self.sig.Stage = int(mpupdate.Stage.DOWNLOAD)
        self.sig.Path = self.path_buffer
        self.data = self.ffi.new("MPCALLBACK_DATA *")
        self.data.Notify = int(mpupdate.Notify.SIGUPDATE_DOWNLOAD_PROGRESS)
        self.data.hResult = 0
        self.data.TimeStamp = FIRST_FILETIME
        self.data.Type = SIGUPDATE
        self.data.Data.pSigUpdateData = self.sig

    def address(self, function: Any) -> int:
        """A cffi function (or pointer) as the integer bench_drive takes."""
        return int(self.ffi.cast("uintptr_t", function))

    def drive(self, function: int, context: int, count: int) -> float:
        """Seconds per notification for ``count`` calls of ``function`` from the C loop."""
        started = time.perf_counter()
        self.lib.bench_drive(function, context, self.data, count)
        return (time.perf_counter() - started) / count

    def close(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def utf16(ffi: Any, text: str) -> Any:
    """A new NUL-terminated ``uint16_t[]`` holding ``text``."""
    encoded = text.encode("utf-16-le")
    buffer = ffi.new("uint16_t[]", len(encoded) // 2 + 1)
    ffi.memmove(buffer, encoded, len(encoded))
    return buffer


# -- the Python callbacks ----------------------------------------------------------------------


def filetime(ticks: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=ticks // 10)


class CtypesCallback:
    """The ctypes callback a user would write, and the records it keeps."""

    def __init__(self, module_path: str) -> None:
        wide = ctypes.sizeof(ctypes.c_wchar) == 2  # Windows: LPWSTR is c_wchar_p

        class SigUpdateDataStruct(ctypes.Structure):
            _fields_ = [
                ("dwPercentComplete", ctypes.c_uint32),
                ("dwTotalUpdates", ctypes.c_uint32),
                ("dwCurrentUpdateIndex", ctypes.c_uint32),
                ("eType", ctypes.c_uint32),
                ("Stage", ctypes.c_uint32),
                ("Path", ctypes.c_wchar_p if wide else ctypes.c_void_p),
            ]

        class DataUnion(ctypes.Union):
            _fields_ = [
                ("pSigUpdateData", ctypes.POINTER(SigUpdateDataStruct)),
                ("pOther", ctypes.c_void_p),
            ]

        class CallbackDataStruct(ctypes.Structure):
            _fields_ = [
                ("Notify", ctypes.c_uint32),
                ("hResult", ctypes.c_int32),
                ("TimeStamp", ctypes.c_uint64),
                ("Type", ctypes.c_uint32),
                ("Data", DataUnion),
            ]

        self.size = ctypes.sizeof(CallbackDataStruct), ctypes.sizeof(SigUpdateDataStruct)
        factory: Any = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)
        prototype = factory(ctypes.c_int32, ctypes.c_size_t, ctypes.POINTER(CallbackDataStruct))
        library = ctypes.CDLL(module_path)
        utf16_len: Any = library.bench_utf16_len
        utf16_len.argtypes = [ctypes.c_void_p]
        utf16_len.restype = ctypes.c_size_t
        string_at = ctypes.string_at
        self.records: list[tuple[Any, ...]] = []
        records = self.records

        def callback(context: int, pointer: Any) -> int:
            data = pointer.contents
            kind = data.Type
            record: tuple[Any, ...]
            if kind == SIGUPDATE and data.Data.pSigUpdateData:
                sig = data.Data.pSigUpdateData.contents
                if wide:
                    path = sig.Path
                else:
                    address = sig.Path
                    path = None
                    if address:
                        raw = string_at(address, 2 * utf16_len(address))
                        path = raw.decode("utf-16-le", "surrogatepass")
                record = (
                    data.Notify,
                    data.hResult & 0xFFFFFFFF,
                    EPOCH + dt.timedelta(microseconds=data.TimeStamp // 10),
                    kind,
                    sig.dwPercentComplete,
                    sig.dwTotalUpdates,
                    sig.dwCurrentUpdateIndex,
                    sig.eType,
                    sig.Stage,
                    path,
                )
            else:
                record = (
                    data.Notify,
                    data.hResult & 0xFFFFFFFF,
                    EPOCH + dt.timedelta(microseconds=data.TimeStamp // 10),
                    kind,
                )
            records.append(record)
            return 0

        self.function = prototype(callback)  # kept alive as long as this object
        address = ctypes.cast(self.function, ctypes.c_void_p).value
        assert address is not None
        self.address = address


class CffiCallback:
    """An ABI-mode ``ffi.callback`` decoding as the ctypes one does."""

    def __init__(self) -> None:
        cffi: Any = importlib.import_module("cffi")
        self.ffi: Any = cffi.FFI()
        self.ffi.cdef(TYPES.replace("PATH_TYPE", "char16_t"))
        ffi = self.ffi
        null = ffi.NULL
        string = ffi.string
        self.records: list[tuple[Any, ...]] = []
        records = self.records

        def callback(context: int, data: Any) -> int:
            kind = data.Type
            record: tuple[Any, ...]
            sig = data.Data.pSigUpdateData
            if kind == SIGUPDATE and sig != null:
                record = (
                    data.Notify,
                    data.hResult & 0xFFFFFFFF,
                    EPOCH + dt.timedelta(microseconds=data.TimeStamp // 10),
                    kind,
                    sig.dwPercentComplete,
                    sig.dwTotalUpdates,
                    sig.dwCurrentUpdateIndex,
                    sig.eType,
                    sig.Stage,
                    string(sig.Path) if sig.Path != null else None,
                )
            else:
                record = (
                    data.Notify,
                    data.hResult & 0xFFFFFFFF,
                    EPOCH + dt.timedelta(microseconds=data.TimeStamp // 10),
                    kind,
                )
            records.append(record)
            return 0

        self.function = ffi.callback("MPCALLBACK_FUNCTION", callback, error=0)
        self.address = int(ffi.cast("uintptr_t", self.function))


class OursCallback:
    """The package's compiled callback (C) with a registered capture queue: capture only."""

    def __init__(self) -> None:
        self.sink = _native.Sink()
        self.token = self.sink.token
        self.address = int(_native.ffi.cast("uintptr_t", _native.CALLBACK))

    def captured(self) -> list[Any]:
        return self.sink.take()

    def clear(self) -> None:
        self.sink.take()
        self.sink.take_problems()

    def close(self) -> None:
        self.sink.close()


# -- scenarios --------------------------------------------------------------------------------


def generated_scenario(count: int) -> Scenario:
    """A grammatical update whose download reports progress ``count`` times, with data and
    the 79-character path on every notification but the search start; all at time 0."""
    notify = mpupdate.Notify
    http, search, download, install = (
        int(mpupdate.SigUpdateType.HTTP),
        int(mpupdate.Stage.SEARCH),
        int(mpupdate.Stage.DOWNLOAD),
        int(mpupdate.Stage.INSTALL),
    )

    def item(number: mpupdate.Notify, percent: int, stage: int) -> ScenarioNotification:
        return ScenarioNotification(
            0.0, int(number), 0, SigUpdateData(percent, 1, 0, http, stage, PATH)
        )

    middle = [
        ScenarioNotification(0.0, int(notify.SIGUPDATE_SEARCH_START)),
        item(notify.SIGUPDATE_SEARCH_COMPLETE, 100, search),
        item(notify.SIGUPDATE_DOWNLOAD_START, 0, download),
        *(
            item(notify.SIGUPDATE_DOWNLOAD_PROGRESS, i * 100 // count, download)
            for i in range(count)
        ),
        item(notify.SIGUPDATE_DOWNLOAD_COMPLETE, 100, download),
        item(notify.SIGUPDATE_INSTALL_START, 0, install),
        item(notify.SIGUPDATE_INSTALL_COMPLETE, 100, install),
    ]
    return Scenario(f"generated-{count}", notifications=tuple(middle))


#: A recorded 10-minute update, as the replay target reads it: this many notifications (START
#: and COMPLETE included), spread evenly over 600 s: one every 2 s.
TEN_MINUTE_EVENTS = 300


def ten_minute_scenario() -> Scenario:
    """:func:`generated_scenario` with :data:`TEN_MINUTE_EVENTS` events spread over 600 s of
    (virtual) time, COMPLETE at 600 s."""
    base = generated_scenario(TEN_MINUTE_EVENTS - 8)
    step = 600.0 / (len(base.notifications) + 1)
    spread = tuple(
        dataclasses.replace(item, at=step * (index + 1))
        for index, item in enumerate(base.notifications)
    )
    return dataclasses.replace(
        base, name="ten-minutes", notifications=spread, complete=ScenarioComplete(at=600.0)
    )


# -- rows -------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table."""

    key: str
    label: str
    unit: str  # "us" (per notification), "ms", "ms CPU", "KiB"
    samples: list[float] = field(default_factory=list)
    per_notification: bool = False
    target: str = ""
    verdict: str = ""
    met: Optional[bool] = None
    note: str = ""
    error: Optional[str] = None
    ratio_ctypes: Optional[float] = None
    ratio_floor: Optional[float] = None

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.samples) if self.samples else None


def paired_ratio(row: Row, base: Row) -> Optional[float]:
    """Median over the rounds of row/base, each pair from the same round."""
    pairs = [a / b for a, b in zip(row.samples, base.samples) if b > 0]
    return statistics.median(pairs) if pairs and len(row.samples) == len(base.samples) else None


Sampler = Callable[[], float]


@dataclass
class Timed:
    """A per-notification row and how to take one sample of it (seconds per notification)."""

    row: Row
    sample: Sampler


def timed_rows(
    bench: BenchModule, sizes: Sizes, checks: list[str]
) -> tuple[list[Timed], Callable[[], None]]:
    """The interleaved rows, and a closer for what they hold."""
    ctypes_callback = CtypesCallback(bench.path)
    cffi_callback = CffiCallback()
    broken: dict[str, str] = {}  # row key -> why it cannot run (say, an API that moved)
    ours: Optional[OursCallback] = None
    try:
        ours = OursCallback()
    except Exception as exc:
        broken["ours_callback"] = f"{type(exc).__name__}: {exc}"
    copy_address = int(bench.lib.bench_copy_callback())
    empty_address = bench.address(bench.lib.bench_empty)
    end_to_end = generated_scenario(sizes.end_to_end_count)
    python_fake = generated_scenario(sizes.python_fake_count)
    ten_minutes = ten_minute_scenario()

    def c_floor() -> float:
        return bench.drive(copy_address, 0, sizes.c_count)

    def empty() -> float:
        return bench.drive(empty_address, 0, sizes.c_count)

    def with_records(records: list[tuple[Any, ...]], address: int) -> Sampler:
        def sample() -> float:
            records.clear()
            gc.collect()
            seconds = bench.drive(address, 0, sizes.callback_count)
            if len(records) != sizes.callback_count:
                raise RuntimeError(f"{len(records)} records for {sizes.callback_count} calls")
            return seconds

        return sample

    def ours_callback() -> float:
        if ours is None:
            raise RuntimeError(broken["ours_callback"])
        ours.clear()
        gc.collect()
        seconds = bench.drive(ours.address, ours.token, sizes.callback_count)
        captured = len(ours.captured())
        if captured != sizes.callback_count:
            raise RuntimeError(f"{captured} events captured for {sizes.callback_count} calls")
        return seconds

    def update_native(delivery: str) -> Sampler:
        def sample() -> float:
            fake = NativeFakeMpClient(end_to_end, delivery=delivery)
            gc.collect()
            started = time.perf_counter()
            result = mpupdate.update(backend=fake, check=False)
            seconds = time.perf_counter() - started
            check_result(result, sizes.end_to_end_count)
            fake.assert_clean()
            return seconds / len(result.events)

        return sample

    def update_python_generated() -> float:
        gc.collect()
        started = time.perf_counter()
        result = mpupdate.update(backend=FakeMpClient(python_fake), check=False)
        seconds = time.perf_counter() - started
        check_result(result, sizes.python_fake_count)
        return seconds / len(result.events)

    def update_python_built_in() -> float:
        gc.collect()
        events = 0
        started = time.perf_counter()
        for _ in range(sizes.built_in_updates):
            result = mpupdate.update(backend=FakeMpClient(BUILT_IN), check=False)
            events += len(result.events)
        seconds = time.perf_counter() - started
        if result.outcome is not mpupdate.Outcome.UPDATED:
            raise RuntimeError(f"{BUILT_IN} ended {result.outcome}")
        return seconds / events

    def update_python_ten_minutes() -> float:
        gc.collect()
        started = time.perf_counter()
        fake = FakeMpClient(ten_minutes, delivery="timed")
        result = mpupdate.update(backend=fake, check=False, timeout=3600)
        seconds = time.perf_counter() - started
        if result.outcome is not mpupdate.Outcome.UPDATED or len(result.events) != (
            TEN_MINUTE_EVENTS
        ):
            raise RuntimeError(f"ten minutes: {result.outcome}, {len(result.events)} events")
        if (result.finished_at - result.started_at).total_seconds() < 600:
            raise RuntimeError(f"ten minutes took {result.finished_at - result.started_at}")
        return seconds / len(result.events)

    try:
        built_in_events = str(
            len(mpupdate.update(backend=FakeMpClient(BUILT_IN), check=False).events)
        )
    except Exception:  # the row's own run will say why
        built_in_events = "?"
    n = f"{sizes.end_to_end_count:,}"
    rows = [
        Timed(Row("c_floor", "C floor: C callback copies fields + path", "us"), c_floor),
        Timed(Row("cffi_empty", 'cffi extern "Python", empty body', "us"), empty),
        Timed(
            Row("cffi_callback", "cffi ffi.callback (ABI mode), same decode", "us"),
            with_records(cffi_callback.records, cffi_callback.address),
        ),
        Timed(
            Row("ctypes", "ctypes CFUNCTYPE, decode to tuple + list", "us"),
            with_records(ctypes_callback.records, ctypes_callback.address),
        ),
        Timed(Row("ours_callback", "ours: compiled callback (capture only)", "us"), ours_callback),
        Timed(
            Row("ours_native_immediate", f"ours: update() native fake, immediate ({n})", "us"),
            update_native("immediate"),
        ),
        Timed(
            Row("ours_native_thread", f"ours: update() native fake, thread ({n})", "us"),
            update_native("thread"),
        ),
        Timed(
            Row(
                "ours_python_generated",
                f"ours: update() Python fake, {sizes.python_fake_count:,}-notification",
                "us",
            ),
            update_python_generated,
        ),
        Timed(
            Row(
                "ours_python_built_in",
                f"ours: update() Python fake, {BUILT_IN} ({built_in_events}) x"
                f"{sizes.built_in_updates}",
                "us",
            ),
            update_python_built_in,
        ),
        Timed(
            Row(
                "ours_python_ten_minutes",
                f"ours: replay of a 10-minute update ({TEN_MINUTE_EVENTS}), timed",
                "us",
            ),
            update_python_ten_minutes,
        ),
    ]
    for timed in rows:
        timed.row.per_notification = True

    # Every Python callback must see the notification the C loop sent.
    expected = (
        int(mpupdate.Notify.SIGUPDATE_DOWNLOAD_PROGRESS),
        0,
        filetime(FIRST_FILETIME),
        SIGUPDATE,
        0,
        1,
        0,
        int(mpupdate.SigUpdateType.HTTP),
        int(mpupdate.Stage.DOWNLOAD),
        PATH,
    )
    for key, records, address in (
        ("ctypes", ctypes_callback.records, ctypes_callback.address),
        ("cffi_callback", cffi_callback.records, cffi_callback.address),
    ):
        records.clear()
        bench.drive(address, 0, 1)
        if records != [expected]:
            broken[key] = f"decoded {records}, expected {[expected]}"
    sizes_c = bench.ffi.sizeof("MPCALLBACK_DATA"), bench.ffi.sizeof("MPSIGUPDATE_DATA")
    if ctypes_callback.size != sizes_c:
        broken["ctypes"] = f"ctypes structure sizes {ctypes_callback.size}, C's {sizes_c}"
    if ours is not None:
        try:
            ours.clear()
            bench.drive(ours.address, ours.token, 1)
            (event,) = ours.captured()
            got = (
                int(event.notify),
                event.hresult,
                event.timestamp,
                SIGUPDATE,
                event.percent,
                event.total_updates,
                event.current_index,
                int(event.update_type),
                int(event.stage),
                event.path,
            )
            if got != expected:
                broken["ours_callback"] = f"captured {got}, expected {expected}"
        except Exception as exc:
            broken["ours_callback"] = f"{type(exc).__name__}: {exc}"
    for timed in rows:
        timed.row.error = broken.get(timed.row.key)
    if not broken:
        checks.append(
            "the ctypes, ffi.callback and compiled callbacks decode the same notification"
        )

    def close() -> None:
        if ours is not None:
            ours.close()
        ctypes_callback.records.clear()
        cffi_callback.records.clear()

    return rows, close


def check_result(result: mpupdate.UpdateResult, progress: int) -> None:
    if result.outcome is not mpupdate.Outcome.UPDATED:
        raise RuntimeError(f"the generated update ended {result.outcome}: {result.anomalies}")
    if len(result.events) < progress:
        raise RuntimeError(f"{len(result.events)} events for {progress} progress notifications")


def run_rounds(timed: Sequence[Timed], rounds: int) -> None:
    """Warm each row up once, then run every row once per round."""
    for item in timed:
        if item.row.error is not None:
            continue
        try:
            item.sample()
        except Exception as exc:
            item.row.error = f"{type(exc).__name__}: {exc}"
    for _ in range(rounds):
        for item in timed:
            if item.row.error is None:
                try:
                    item.row.samples.append(item.sample() * 1e6)
                except Exception as exc:
                    item.row.error = f"{type(exc).__name__}: {exc}"
                    item.row.samples.clear()


# -- import time ------------------------------------------------------------------------------

PROBE = (
    "before = set(sys.modules); import mpupdate; "
    "added = sorted(set(sys.modules) - before); import json; print(json.dumps(added))"
)


def is_stdlib(name: str) -> bool:
    names: Optional[frozenset[str]] = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return name in names
    if name in sys.builtin_module_names:  # Python 3.9: by where the module lives
        return True
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False
    stdlib = os.path.normcase(sysconfig.get_paths()["stdlib"])
    origin = os.path.normcase(spec.origin)
    return origin.startswith(stdlib) and "site-packages" not in origin


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(source: str) -> set[str]:
    """Top-level names a module imports when it is imported (not in functions, not for typing)."""
    found: set[str] = set()

    def visit(statements: Sequence[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.Import):
                found.update(alias.name.split(".")[0] for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom):
                if statement.level == 0 and statement.module:
                    found.add(statement.module.split(".")[0])
            elif isinstance(statement, ast.If):
                if not _is_type_checking(statement.test):
                    visit(statement.body)
                visit(statement.orelse)
            elif isinstance(statement, ast.Try):
                visit(statement.body)
                visit(statement.orelse)
                visit(statement.finalbody)
            elif isinstance(statement, (ast.With, ast.ClassDef)):
                visit(statement.body)

    visit(ast.parse(source).body)
    return found


@dataclass
class ImportFacts:
    added: list[str]
    own: list[str]
    stdlib_added: list[str]
    needed_stdlib: list[str]


def import_facts(flags: list[str], prefix: str) -> ImportFacts:
    """What ``import mpupdate`` adds to sys.modules of ``python FLAGS``, and the stdlib its
    modules import."""
    output = subprocess.run(
        [sys.executable, *flags, "-c", prefix + "import sys; " + PROBE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    added: list[str] = json.loads(output)
    own = [name for name in added if name == "mpupdate" or name.startswith("mpupdate.")]
    stdlib_added = sorted({n.split(".")[0] for n in added if is_stdlib(n.split(".")[0])})
    needed: set[str] = set()
    for name in own:
        module = sys.modules.get(name)  # this process imported mpupdate too
        origin = getattr(module, "__file__", None) or ""
        if not origin.endswith(".py"):
            continue  # the compiled module (and its lib): it imports _cffi_backend, not stdlib
        needed |= import_time_imports(Path(origin).read_text(encoding="utf-8"))
    needed_stdlib = sorted(n for n in needed if is_stdlib(n))
    return ImportFacts(added, own, stdlib_added, needed_stdlib)


def wall_times(commands: dict[str, tuple[list[str], str]], runs: int) -> dict[str, list[float]]:
    """Milliseconds of ``python FLAGS -c CODE`` for each command, interleaved, after a warm run.

    The interpreters may write and use .pyc files (in a temporary cache, whatever
    PYTHONDONTWRITEBYTECODE says here), as an installed package has them: pip compiles them at
    install time. Without, every start would compile the package's sources, while the standard
    library's .pyc files are there: the rows would compare compiling with loading."""
    times: dict[str, list[float]] = {key: [] for key in commands}
    cache = tempfile.mkdtemp(prefix="mpupdate-bench-pyc-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    try:
        _interleaved(commands, runs, env, times)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return times


def _interleaved(
    commands: dict[str, tuple[list[str], str]],
    runs: int,
    env: dict[str, str],
    times: dict[str, list[float]],
) -> None:
    for attempt in range(runs + 1):
        for key, (flags, code) in commands.items():
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, *flags, "-c", code],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            if attempt:  # the first round warms the file cache and writes the .pyc files
                times[key].append((time.perf_counter() - started) * 1e3)


def no_site_prefix() -> str:
    """Code that gives a ``python -S`` the paths ``import mpupdate`` needs: as a wheel install
    would, without site's work or the editable install's finder (which imports pathlib, re and
    more at every start, hiding their cost from the rows with site)."""
    import site

    root = os.path.dirname(os.path.dirname(os.path.abspath(mpupdate.__file__)))
    paths = [root, *site.getsitepackages()]
    return f"import sys; sys.path[:0] = {paths!r}; "


def measure_imports(
    sizes: Sizes,
) -> tuple[list[Row], Optional[ImportFacts], Optional[ImportFacts]]:
    """The import rows, in fresh interpreters: with site as installed here, and with -S."""
    rows = [
        Row("import_mpupdate", 'python -c "import mpupdate" (wall)', "ms"),
        Row("import_stdlib", 'python -c "import <needed stdlib>" (wall)', "ms"),
        Row("python_startup", "python -c pass (wall)", "ms"),
        Row("cli_version", "mpupdate --version (wall, as the console script runs it)", "ms"),
        Row("import_mpupdate_s", 'python -S: "import mpupdate" (as a wheel)', "ms"),
        Row("import_stdlib_s", 'python -S: "import <needed stdlib>"', "ms"),
        Row("python_startup_s", "python -S -c pass", "ms"),
    ]
    try:
        prefix = no_site_prefix()
        facts = import_facts([], "")
        facts_s = import_facts(["-S"], prefix)
        needed = f"import {', '.join(facts.needed_stdlib)}"
        times = wall_times(
            {
                "import_mpupdate": ([], "import mpupdate"),
                "import_stdlib": ([], needed),
                "python_startup": ([], "pass"),
                "cli_version": ([], "from mpupdate.cli import main; main(['--version'])"),
                "import_mpupdate_s": (["-S"], prefix + "import mpupdate"),
                "import_stdlib_s": (["-S"], prefix + needed),
                "python_startup_s": (["-S"], prefix + "pass"),
            },
            sizes.import_runs,
        )
    except Exception as exc:
        for row in rows:
            row.error = f"{type(exc).__name__}: {exc}"
        return rows, None, None
    for row in rows:
        row.samples = times[row.key]
    return rows, facts, facts_s


# -- idle CPU and RSS -------------------------------------------------------------------------


def idle_cpu(seconds: float) -> tuple[float, float]:
    """CPU ms of an update(timeout=seconds) that hears nothing; and of one with 0.05 s."""

    def once(timeout: float) -> float:
        fake = FakeMpClient("hung", delivery="thread")
        gc.collect()
        started = time.process_time()
        result = mpupdate.update(backend=fake, timeout=timeout, check=False)
        used = time.process_time() - started
        if result.outcome is not mpupdate.Outcome.TIMED_OUT:
            raise RuntimeError(f"the hung update ended {result.outcome}")
        fake.assert_clean()
        return used * 1e3

    fixed = min(once(0.05) for _ in range(3))
    return once(seconds), fixed


def rss_kib() -> float:
    """Resident memory now (Linux), else the peak (ru_maxrss)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1024
    except (OSError, ValueError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(peak) / (1024 if sys.platform == "darwin" else 1)


@dataclass
class Growth:
    """What ``repeats`` calls of some work left behind, from a checkpoint after the first tenth."""

    rss_kib: float  # RSS growth over the last 90 %
    rss_second_half_kib: float  # ... over the last 45 % (a leak grows in both halves)
    blocks: int  # growth of sys.getallocatedblocks(): a leak freed memory would hide from RSS
    end_kib: float


def rss_growth(work: Callable[[], None], repeats: int) -> Growth:
    """Run ``work`` ``repeats`` times; what RSS and Python's allocated blocks did."""
    warm = max(1, repeats // 10)
    half = warm + (repeats - warm) // 2
    for _ in range(warm):
        work()
    gc.collect()
    start, blocks = rss_kib(), sys.getallocatedblocks()
    for _ in range(warm, half):
        work()
    gc.collect()
    middle = rss_kib()
    for _ in range(half, repeats):
        work()
    gc.collect()
    end = rss_kib()
    return Growth(end - start, end - middle, sys.getallocatedblocks() - blocks, end)


def bytes_per_event(scenario: Scenario) -> float:
    """What a finished UpdateResult keeps, per event (tracemalloc)."""
    backend = NativeFakeMpClient(scenario)
    gc.collect()
    tracemalloc.start()
    try:
        result = mpupdate.update(backend=backend, check=False)
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return held / len(result.events)


# -- the table --------------------------------------------------------------------------------


def fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    if unit == "us":
        return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if unit == "KiB":
        return f"{value:+,.0f}"
    if unit == "B":
        return f"{value:,.0f}"
    return f"{value:.1f}"


def fmt_ratio(value: Optional[float]) -> str:
    if value is None:
        return ""
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


UNITS = {"us": "µs/notif", "ms": "ms", "ms CPU": "ms CPU", "KiB": "KiB", "B": "B/event"}


def render(rows: Sequence[Row]) -> str:
    headers = ("row", "median", "min..max", "unit", "/ctypes", "/C floor", "target", "verdict")
    lines = []
    for row in rows:
        if row.error is not None:
            lines.append((row.label, "ERROR", row.error[:60], "", "", "", row.target, ""))
            continue
        spread = (
            f"{fmt(min(row.samples), row.unit)}..{fmt(max(row.samples), row.unit)}"
            if len(row.samples) > 1
            else ""
        )
        lines.append(
            (
                row.label,
                fmt(row.median, row.unit),
                spread,
                UNITS[row.unit],
                fmt_ratio(row.ratio_ctypes),
                fmt_ratio(row.ratio_floor),
                row.target,
                row.verdict,
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    right = {1, 2, 4, 5}

    def join(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                cell.rjust(w) if i in right else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(cells, widths))
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([join(headers), rule, *(join(line) for line in lines)])


def times_over(value: float, limit: float) -> str:
    return f"{value / limit:.2f}x over" if value > limit else f"{limit / value:.2f}x under"


def judge(
    rows: dict[str, Row], facts: Optional[ImportFacts], facts_s: Optional[ImportFacts]
) -> None:
    """Fill in targets and verdicts from the issue's targets."""

    def get(key: str) -> Optional[float]:
        row = rows.get(key)
        return row.median if row is not None and row.error is None else None

    callback = rows["ours_callback"]
    if callback.ratio_floor is not None and callback.ratio_ctypes is not None:
        callback.target = "<= 2x C floor, <= 0.1x ctypes"
        floor, versus = callback.ratio_floor, callback.ratio_ctypes
        callback.met = floor <= 2 and versus <= 0.1
        speed = f"{1 / versus:.1f}x faster" if versus < 1 else f"{versus:.1f}x slower"
        callback.verdict = (
            f"{'met' if callback.met else 'missed'}: {floor:.2f}x floor "
            f"({times_over(floor, 2)} 2x); {speed} than ctypes ({times_over(versus, 0.1)} 0.1x)"
        )
    for key in ("ours_native_immediate", "ours_native_thread"):
        row = rows[key]
        value = get(key)
        if value is None or row.ratio_ctypes is None:
            continue
        row.target = "<= 1x ctypes (stretch <= 3 us)"
        row.met = row.ratio_ctypes <= 1
        row.verdict = (
            f"{'met' if row.met else 'missed'}: {row.ratio_ctypes:.2f}x ctypes; "
            f"stretch {times_over(value, 3.0)}"
        )
    for key, rate in (("ours_python_generated", 150_000), ("ours_python_built_in", 50_000)):
        row = rows[key]
        value = get(key)
        if value is None:
            continue
        measured = 1e6 / value
        row.target = f">= {rate:,} notif/s"
        row.met = measured >= rate
        ratio = rate / measured if measured < rate else measured / rate
        row.verdict = (
            f"{'met' if row.met else 'missed'}: {measured:,.0f}/s "
            f"({ratio:.2f}x {'short' if not row.met else 'over'})"
        )
    ten = rows.get("ours_python_ten_minutes")
    per_event = get("ours_python_ten_minutes")
    if ten is not None and per_event is not None:
        whole = per_event * TEN_MINUTE_EVENTS / 1000
        ten.target = "<= 5 ms per update"
        ten.met = whole <= 5
        ten.verdict = f"{'met' if ten.met else 'missed'}: {whole:.2f} ms ({times_over(whole, 5)})"
    judge_import(rows, "", facts)
    judge_cli_version(rows)
    judge_import(rows, "_s", facts_s)
    idle = get("idle_cpu")
    if idle is not None:
        row = rows["idle_cpu"]
        row.target = "<= 20 ms per 10 s"
        row.met = idle <= 20
        row.verdict = f"{'met' if row.met else 'missed'}: {times_over(max(idle, 1e-3), 20)}"
    for key in ("rss_notifications", "rss_cycles"):
        row = rows[key]
        value = get(key)
        if value is None:
            continue
        row.target = "no growth"
        row.met = value <= 1024  # allocator noise: under 1 MiB counts as none
        row.verdict = f"{'met' if row.met else 'missed'}: {value:+,.0f} KiB"


def judge_cli_version(rows: dict[str, Row]) -> None:
    """``mpupdate --version``: the issue asks that it start fast (no number); the note says what
    it adds to the interpreter's start and to ``import mpupdate`` (paired per run)."""
    row, startup, imported = (
        rows.get("cli_version"),
        rows.get("python_startup"),
        rows.get("import_mpupdate"),
    )
    if row is None or startup is None or imported is None or row.error:
        return
    if len(row.samples) == len(startup.samples) == len(imported.samples) and row.samples:
        net = statistics.median(a - b for a, b in zip(row.samples, startup.samples))
        over = statistics.median(a - b for a, b in zip(row.samples, imported.samples))
        row.note = (
            f"net of the interpreter's start: {net:.1f} ms; {over:+.1f} ms over "
            "'import mpupdate' (argparse and the parser; no rich, asyncio, json or fakes)"
        )


def judge_import(rows: dict[str, Row], suffix: str, facts: Optional[ImportFacts]) -> None:
    row, stdlib, startup = (
        rows.get(f"import_mpupdate{suffix}"),
        rows.get(f"import_stdlib{suffix}"),
        rows.get(f"python_startup{suffix}"),
    )
    if row is None or stdlib is None or startup is None or row.error or stdlib.error:
        return
    imported, floor = row.median, stdlib.median
    if imported is None or floor is None:
        return
    # 25 ms: what importing adds to the interpreter's own start (paired per run); 1.5x: the
    # wall times of the two commands, each with the interpreter's start, as run side by side.
    row.target = "<= 25 ms net, <= 1.5x stdlib"
    net = imported - (startup.median or 0.0)
    if len(startup.samples) == len(row.samples) == len(stdlib.samples):
        net = statistics.median(a - b for a, b in zip(row.samples, startup.samples))
        net_stdlib = statistics.median(a - b for a, b in zip(stdlib.samples, startup.samples))
        row.note = (
            f"net of the interpreter's start: {net:.1f} ms, the needed stdlib's "
            f"{net_stdlib:.1f} ms ({net / max(net_stdlib, 0.1):.1f}x)"
        )
    row.met = net <= 25 and imported <= 1.5 * floor
    row.verdict = (
        f"{'met' if row.met else 'missed'}: {net:.1f} ms net ({times_over(net, 25)} 25 ms), "
        f"{imported:.1f} wall; {imported / floor:.2f}x stdlib"
    )
    if facts is not None:
        stdlib_count = sum(1 for n in facts.added if is_stdlib(n.split(".")[0]))
        row.note += (
            f"; {len(facts.added)} modules added to sys.modules: {len(facts.own)} mpupdate, "
            f"{stdlib_count} stdlib (under {len(facts.stdlib_added)} top-level names), "
            f"{len(facts.added) - len(facts.own) - stdlib_count} other"
        )


# -- profiling (--profile) ----------------------------------------------------------------------


def profile(work: Callable[[], Any], title: str, top: int = 14) -> str:
    """cProfile ``work``; the functions with the most own time, and own time by module."""
    profiler = cProfile.Profile()
    profiler.runcall(work)
    stats = pstats.Stats(profiler)
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = getattr(stats, "stats", {})
    total = sum(entry[2] for entry in raw.values()) or 1.0
    by_module: dict[str, float] = {}
    package = os.path.dirname(os.path.abspath(mpupdate.__file__))
    rows = []
    for (filename, line, name), entry in raw.items():
        own = float(entry[2])
        if filename == "~":
            module = "builtins"
            where = name
        elif os.path.abspath(filename).startswith(package):
            relative = os.path.relpath(filename, os.path.dirname(package))
            module = relative.replace(os.sep, "/")
            where = f"{module}:{line} {name}"
        else:
            module = os.path.basename(filename)
            where = f"{module}:{line} {name}"
        by_module[module] = by_module.get(module, 0.0) + own
        rows.append((own, int(entry[1]), where))
    rows.sort(reverse=True)
    lines = [f"{title} (cProfile, own time; the profiler inflates small functions)"]
    lines += [
        f"  {own / total:6.1%} {calls:>9,} calls  {where}" for own, calls, where in rows[:top]
    ]
    lines.append(
        "  by module: "
        + ", ".join(
            f"{module} {own / total:.0%}"
            for module, own in sorted(by_module.items(), key=lambda item: -item[1])[:8]
        )
    )
    fakes = sum(own for module, own in by_module.items() if module.startswith("mpupdate/fakes/"))
    if fakes:
        lines.append(
            f"  the fake's own Python code (mpupdate/fakes/*, not counting the builtins it calls):"
            f" {fakes / total:.0%}"
        )
    return "\n".join(lines)


def piecewise(bench: BenchModule, rows: dict[str, Row], count: int) -> str:
    """Where a notification's time goes now that the capture is C: the callback (the DLL's
    thread), then the consumer's batch: take() (buffer swap, unpack, Event per record), and the
    state machine's apply(). Each best of 5 over ``count`` notifications from the C loop."""
    ours = OursCallback()
    events: list[Any] = []

    def per_event(work: Callable[[], Any], prepare: Callable[[], Any]) -> float:
        best = float("inf")
        for _ in range(5):
            prepare()
            gc.collect()
            started = time.perf_counter()
            work()
            best = min(best, (time.perf_counter() - started) / count * 1e6)
        return best

    def fill() -> None:
        ours.clear()
        bench.drive(ours.address, ours.token, count)

    def take() -> None:
        events[:] = ours.captured()

    try:
        capture = per_event(fill, ours.clear)
        taking = per_event(take, fill)
    finally:
        ours.close()
    if len(events) != count:
        raise RuntimeError(f"{len(events)} events taken for {count} captured")
    trampoline = rows["cffi_empty"].median or 0.0
    lines = [
        "Our path, piecewise (µs per notification, best of 5 over "
        f"{count:,} DOWNLOAD_PROGRESS notifications):",
        f"  {capture:6.3f}  the compiled callback (C, on the DLL's thread): copy + queue",
        f'  {trampoline:6.3f}  for scale: an empty extern "Python" callback (the table\'s row)',
        f"  {taking:6.3f}  Sink.take() on the consumer's thread: buffer swap, struct unpack, "
        "one Event per record",
        "  (the state machine's share: the next section)",
    ]
    return "\n".join(lines)


def end_to_end_split(rows: dict[str, Row], count: int) -> str:
    """update() through the native fake, immediate: capture, the state machine, the rest."""
    result = mpupdate.update(
        backend=NativeFakeMpClient(generated_scenario(count), delivery="immediate"), check=False
    )
    events = result.events

    def feed_all() -> float:
        machine = mpupdate.UpdateMachine(strict=False, options=result.options)
        gc.collect()
        started = time.perf_counter()
        apply = machine.apply
        for event in events:
            apply(event)
        return (time.perf_counter() - started) / len(events) * 1e6

    feeding = min(feed_all() for _ in range(5))
    whole = rows["ours_native_immediate"].median or 0.0
    capture = rows["ours_callback"].median or 0.0
    lines = [
        "update() via the native fake, immediate, piecewise (µs per notification):",
        f"  {capture:6.2f}  capture: the compiled callback (its table row)",
        f"  {feeding:6.2f}  UpdateMachine.apply(event) (best of 5, the same events)",
    ]
    rest = whole - capture - feeding
    lines += [
        f"  {rest:6.2f}  the rest: taking the batch (Events from the C records), the "
        "consumer's loop, the fake",
        f"          (its exports and delivery from its prepared plan), per-update costs spread "
        f"over {len(events):,} events",
        f"  {whole:6.2f}  whole (its table row)",
    ]
    return "\n".join(lines)


def profile_report(bench: BenchModule, rows: dict[str, Row], sizes: Sizes) -> str:
    ours = OursCallback()
    try:
        callback = profile(
            lambda: bench.drive(ours.address, ours.token, sizes.callback_count),
            f"ours: compiled callback, {sizes.callback_count:,} notifications from the C loop",
        )
    finally:
        ours.close()
    scenario = generated_scenario(sizes.end_to_end_count)
    fake = NativeFakeMpClient(scenario, delivery="immediate")
    end_to_end = profile(
        lambda: mpupdate.update(backend=fake, check=False),
        f"ours: update() via the native fake, immediate, {sizes.end_to_end_count:,} progress",
    )
    built_in = profile(
        lambda: [
            mpupdate.update(backend=FakeMpClient(BUILT_IN), check=False)
            for _ in range(sizes.built_in_updates)
        ],
        f"ours: update() via the Python fake, {BUILT_IN} x{sizes.built_in_updates}",
    )
    importtime = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mpupdate"],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    heaviest = []
    for line in importtime.splitlines()[1:]:
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[1].isdigit():
            heaviest.append((int(parts[0].split()[-1]), int(parts[1]), parts[2]))
    heaviest.sort(key=lambda item: -item[0])
    imports = "import mpupdate (-X importtime, own µs, heaviest):\n" + "\n".join(
        f"  {own:>7,} own {cumulative:>8,} cumulative  {name}"
        for own, cumulative, name in heaviest[:12]
    )
    return "\n\n".join(
        [
            piecewise(bench, rows, min(sizes.callback_count, 20_000)),
            end_to_end_split(rows, sizes.end_to_end_count),
            callback,
            end_to_end,
            built_in,
            imports,
        ]
    )


# -- main -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    compiler = "?"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        compiler = subprocess.run(
            ["gcc", "--version"], check=True, capture_output=True, text=True
        ).stdout.splitlines()[0]
    cffi: Any = importlib.import_module("cffi")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu}, {os.cpu_count()} logical CPUs",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cffi": str(cffi.__version__),
        "compiler": compiler,
        "load_average": load,
        "mpupdate": mpupdate.__version__,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer rounds, smaller counts")
    mode.add_argument("--smoke", action="store_true", help="tiny counts; only checks every row")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--profile", action="store_true", help="then profile the slow rows")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    started = time.perf_counter()
    meta = machine()
    print(
        f"mpupdate {meta['mpupdate']} benchmarks ({sizes.mode}): {meta['date']}; {meta['cpu']}; "
        f"{meta['python']}; cffi {meta['cffi']}; {meta['compiler']}; load {meta['load_average']}"
    )
    checks: list[str] = []
    table: list[Row] = []
    facts: Optional[ImportFacts] = None
    profile_text = ""
    try:
        bench = BenchModule()
    except Exception as exc:
        print(
            f"cannot build the benchmark's C helpers (needs a C compiler and cffi): {exc}",
            file=sys.stderr,
        )
        return 1
    with contextlib.closing(bench):
        timed, close = timed_rows(bench, sizes, checks)
        try:
            run_rounds(timed, sizes.rounds)
        finally:
            close()
        table += [item.row for item in timed]
        by_key = {row.key: row for row in table}
        for row in table:
            if row.error is None:
                row.ratio_ctypes = paired_ratio(row, by_key["ctypes"])
                row.ratio_floor = paired_ratio(row, by_key["c_floor"])

        # import mpupdate, in fresh interpreters
        import_rows, facts, facts_s = measure_imports(sizes)
        table += import_rows

        idle_row = Row("idle_cpu", 'idle CPU: update(FakeMpClient("hung", thread), 10 s)', "ms CPU")
        try:
            used, fixed = idle_cpu(sizes.idle_seconds)
            scale = IDLE_FULL_SECONDS / sizes.idle_seconds
            idle_row.samples = [fixed + max(0.0, used - fixed) * scale]
            idle_row.note = (
                f"waited {sizes.idle_seconds:g} s: {used:.1f} ms CPU; start+stop alone "
                f"{fixed:.1f} ms"
            )
        except Exception as exc:
            idle_row.error = f"{type(exc).__name__}: {exc}"
        table.append(idle_row)

        rss_scenario = generated_scenario(sizes.rss_update_size)
        updates = max(2, sizes.rss_notifications // sizes.rss_update_size)

        def big_update() -> None:
            mpupdate.update(backend=NativeFakeMpClient(rss_scenario), check=False)

        def small_update() -> None:
            mpupdate.update(backend=NativeFakeMpClient(BUILT_IN), check=False)

        # The small cycles first: after the big updates the heap has room to hide a slow leak.
        for key, label, work, repeats in (
            (
                "rss_cycles",
                f"RSS growth over {sizes.rss_cycles:,} update cycles",
                small_update,
                sizes.rss_cycles,
            ),
            (
                "rss_notifications",
                f"RSS growth over {updates * sizes.rss_update_size:,} notifications",
                big_update,
                updates,
            ),
        ):
            row = Row(key, label, "KiB")
            try:
                growth = rss_growth(work, repeats)
                row.samples = [growth.rss_kib]
                row.note = (
                    f"second half alone {growth.rss_second_half_kib:+,.0f} KiB; Python's "
                    f"allocated blocks {growth.blocks:+,}; RSS at the end "
                    f"{growth.end_kib / 1024:,.1f} MiB"
                )
            except Exception as exc:
                row.error = f"{type(exc).__name__}: {exc}"
            table.append(row)

        held = Row("held_per_event", "memory a finished UpdateResult holds per event", "B")
        try:
            held.samples = [bytes_per_event(generated_scenario(sizes.end_to_end_count))]
        except Exception as exc:
            held.error = f"{type(exc).__name__}: {exc}"
        table.append(held)

        by_key = {row.key: row for row in table}
        judge(by_key, facts, facts_s)
        if args.profile:
            profile_text = profile_report(bench, by_key, sizes)

    print(render(table))
    if facts is not None:
        print(f"Needed stdlib ({len(facts.needed_stdlib)}): {', '.join(facts.needed_stdlib)}")
    for row in table:
        if row.note:
            print(f"{row.label}: {row.note}")
    for check in checks:
        print(f"checked: {check}")
    missing = [row for row in table if row.error is not None or not row.samples]
    for row in missing:
        print(f"NO NUMBER: {row.label}: {row.error}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(f"({sizes.mode} run: {elapsed:.1f} s)")
    if sizes.mode == "smoke":
        print("(smoke: tiny counts, one round; the numbers and verdicts mean nothing)")
    if profile_text:
        print()
        print(profile_text)
    if args.json:
        document = {
            "machine": meta,
            "mode": sizes.mode,
            "seconds": round(elapsed, 1),
            "rows": [
                {
                    "key": row.key,
                    "label": row.label,
                    "unit": row.unit,
                    "per_notification": row.per_notification,
                    "median": row.median,
                    "min": min(row.samples) if row.samples else None,
                    "max": max(row.samples) if row.samples else None,
                    "samples": row.samples,
                    "ratio_vs_ctypes": row.ratio_ctypes,
                    "ratio_vs_c_floor": row.ratio_floor,
                    "target": row.target,
                    "met": row.met,
                    "verdict": row.verdict,
                    "note": row.note,
                    "error": row.error,
                }
                for row in table
            ],
            "needed_stdlib": facts.needed_stdlib if facts else None,
            "modules_added_by_import": facts.added if facts else None,
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
