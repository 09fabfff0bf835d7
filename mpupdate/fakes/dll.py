"""FakeMpClient: MpClient.dll's exports in Python, behaving as MPCLIENT.md says the DLL does.

It sits *below* the binding: the client calls it exactly as it calls the compiled module, with the
same cffi objects, and it calls back through the compiled ``extern "Python"`` function pointer it
finds in ``MPCALLBACK_INFO``, with the context it was given. Between the two, everything is the
production path: trampoline, decoding, queue, state machine.

What it imitates (BIN/DOC facts from MPCLIENT.md):

- ``MpManagerOpen``: reserved != 0 or a NULL out pointer -> E_INVALIDARG.
- ``MpUpdateStart``: a NULL manager handle -> E_INVALIDARG (also without callback info) [BIN,
  seen under Wine]; a non-NULL handle that is not an open manager handle -> E_HANDLE; NULL
  callback info or out pointer -> E_INVALIDARG; a NULL function pointer in the info crashes the
  real DLL, so it is a violation here; options the DLL's option check refuses -> E_INVALIDARG
  (:func:`mpupdate.constants.options_refused`: any of 0x78 with 0x200, or more than one bit of
  0x1F8) [BIN]. A synthesized
  SIGUPDATE_START (no data) comes first, the scenario's notifications next (``*_PROGRESS`` only
  with the PROGRESS option), a synthesized SIGUPDATE_COMPLETE carrying the outcome last.
  Synchronous starts return S_OK even when the update fails.
- ``MpUpdateControl``: PAUSE/RESUME -> 0x800710DD; ABORT ends a running update with a COMPLETE
  carrying E_ABORT (after the scenario's ``abort_latency``) and is accepted on the manager handle
  (as the shipped DLL; ``abort_handle`` changes that); with nothing running it does nothing and
  returns S_FALSE [GUESS: the DLL's answer there is unobserved].
- ``MpHandleClose``: NULL -> S_FALSE; closing a running update aborts it and waits for it (the
  fake then delivers COMPLETE with E_ABORT [GUESS]); a second close (a use-after-free in the real
  DLL) and a close from inside the callback (``DebugBreak`` there) are violations.
- ``MpErrorMessageFormat``: a NULL handle -> E_INVALIDARG [BIN, seen under Wine], another handle
  that is not an open manager handle -> E_HANDLE; UTF-16 text (the scenario's, else the offline
  table's) that must be released with ``MpFreeMemory``; ``MpFreeMemory`` of anything else is a
  violation.
- ``MpManagerVersionQuery``: the scenario's versions before, and after a successful update.
- Notification data is freed (overwritten with 0xDD) right after each callback returns, as MpClient
  frees it, so a binding that keeps a pointer reads garbage. The poisoned memory of the latest
  :data:`QUARANTINE` notifications stays allocated, so such a stale read sees the poison on every
  platform instead of whatever the allocator put there next.

This class is the one behavioural model of MpClient in the project. What an update delivers is
laid out once per scenario (and PROGRESS option) as a :class:`PreparedPlan`, the bytes exactly as
the DLL passes them, and shared by every update of that scenario. How its notifications reach the
callback is a :class:`DeliveryEngine`: this module's delivers from Python (threads from
:mod:`threading`); :class:`mpupdate.fakes.native.NativeFakeMpClient` plugs in a C library that
delivers the same prepared notifications from C, also from threads Python never created, and
whose exports call this model.

Violations are recorded in :attr:`FakeMpClient.violations`; with ``strict=True`` (the default) the
offending call also raises :class:`FakeViolation`. :meth:`FakeMpClient.assert_clean` checks that
nothing is left open, allocated or violated.

Delivery modes: ``"immediate"`` calls back on the calling thread before ``MpUpdateStart``
returns; ``"thread"`` from a worker thread, as ASYNC updates do (a synchronous start waits for
it); ``"timed"`` at the scenario's times on a :class:`~mpupdate.fakes.VirtualClock`. In
``immediate`` and ``timed`` modes the client waits on that virtual clock (the fake's
:attr:`clock`), so timeouts need no real sleeping.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import functools
import struct
import threading
import weakref
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, TypeVar, Union, cast

from mpupdate._native import ffi
from mpupdate.clock import SYSTEM_CLOCK, Clock
from mpupdate.constants import (
    E_ABORT,
    E_FAIL,
    E_HANDLE,
    E_INVALIDARG,
    ERROR_INVALID_OPERATION,
    HRESULTS,
    PROGRESS_NOTIFICATIONS,
    S_FALSE,
    S_OK,
    Control,
    Notify,
    UpdateOption,
    options_refused,
)
from mpupdate.errors import failed, to_signed
from mpupdate.filetime import datetime_to_filetime
from mpupdate.versions import VersionInfo

from .clock import VirtualClock
from .scenario import LATEST, MAX_SECONDS, Scenario, ScenarioNotification

__all__ = [
    "DELIVERY_MODES",
    "DeliveryEngine",
    "FakeCall",
    "FakeHang",
    "FakeMpClient",
    "FakeUpdate",
    "FakeViolation",
    "PreparedNotification",
    "PreparedPlan",
    "prepare_notification",
    "tracking",
]

DELIVERY_MODES = ("immediate", "thread", "timed")
ABORT_HANDLES = ("manager", "update", "either")
_POISON = 0xDD
_POISON_BYTES = bytes([_POISON])
_ASYNC = int(UpdateOption.ASYNC)
_PROGRESS = int(UpdateOption.PROGRESS)
#: How many notifications' poisoned blocks a fake keeps allocated after their callbacks returned.
QUARANTINE = 1024
_FIRST_HANDLE = 0x1000_0000
_HANDLE_STEP = 0x10


_trackers: list[list[FakeMpClient]] = []
_trackers_lock = threading.Lock()


@contextlib.contextmanager
def tracking() -> Iterator[list[FakeMpClient]]:
    """Collect every fake made while the block runs (FakeMpClient and NativeFakeMpClient).

    ``with tracking() as made: ...`` then ``for fake in made: fake.assert_clean()``: how the pytest
    plugin checks that each test leaves its fakes clean. Blocks may nest; each sees the fakes
    made inside it.
    """
    made: list[FakeMpClient] = []
    with _trackers_lock:
        _trackers.append(made)
    try:
        yield made
    finally:
        with _trackers_lock:  # by identity: two blocks may hold equal lists of the same fakes
            for index, tracker in enumerate(_trackers):
                if tracker is made:
                    del _trackers[index]
                    break


def _track(fake: FakeMpClient) -> None:
    with _trackers_lock:
        for made in _trackers:
            made.append(fake)


#: The latest FILETIME the fakes stamp: 9999-12-31T23:59:59.999999Z, the last moment datetime
#: (and so an Event's time) represents. A scenario's own times never reach past it (the loader and
#: the constructors see to that); virtual time a caller moves further (a huge timeout, many
#: updates on one fake) is stamped with it.
MAX_STAMP = datetime_to_filetime(LATEST)


def _ticks(seconds: float) -> int:
    """Seconds as 100 ns FILETIME ticks, rounded half up; never raises: negative and NaN give 0,
    anything past MAX_STAMP ticks (infinity too) gives MAX_STAMP, so every FILETIME sum stays an
    exact integer that a stamp can clamp (no float ever reaches C)."""
    if not seconds > 0:
        return 0
    if seconds >= _MAX_STAMP_SECONDS:
        return MAX_STAMP
    return int(seconds * 10_000_000 + 0.5)


_MAX_STAMP_SECONDS = MAX_STAMP / 10_000_000


def _stamp(filetime: int) -> int:
    """A FILETIME the fakes can write: ``filetime`` clamped to 0..MAX_STAMP."""
    return 0 if filetime < 0 else min(filetime, MAX_STAMP)


def assert_clean(
    name: str,
    violations: list[str],
    open_handles: dict[int, str],
    outstanding_allocations: int,
    running_workers: list[int],
) -> None:
    """Raise AssertionError listing what a fake DLL was left with; nothing if it is clean."""
    problems = list(violations)
    problems += [f"{kind} handle 0x{value:X} left open" for value, kind in open_handles.items()]
    if outstanding_allocations:
        problems.append(f"{outstanding_allocations} MpErrorMessageFormat buffer(s) not freed")
    problems += [f"the worker thread of update 0x{h:X} is still running" for h in running_workers]
    if problems:
        raise AssertionError(f"{name} is not clean:\n  " + "\n  ".join(problems))


class FakeViolation(AssertionError):
    """The code under test did what the real DLL punishes (crash, use-after-free, DebugBreak)."""


class FakeHang(RuntimeError):
    """The real DLL would block forever here (a synchronous start of a never-ending scenario)."""

    @classmethod
    def for_scenario(cls, name: str) -> FakeHang:
        return cls(
            f"scenario {name!r} never completes, so a synchronous MpUpdateStart would block "
            "forever; start it with ASYNC, or use delivery='thread' and abort it from another "
            "thread"
        )


def check_modes(delivery: str, abort_handle: str) -> None:
    """Refuse an unknown delivery mode or abort-handle kind, naming the valid ones."""
    if delivery not in DELIVERY_MODES:
        raise ValueError(f"delivery must be one of {', '.join(DELIVERY_MODES)}, not {delivery!r}")
    if abort_handle not in ABORT_HANDLES:
        raise ValueError(f"abort_handle must be one of {', '.join(ABORT_HANDLES)}")


def utf16_buffer(ffi_: Any, text: str) -> Any:
    """A new NUL-terminated ``uint16_t[]`` holding ``text`` as UTF-16 (lone surrogates kept)."""
    encoded = text.encode("utf-16-le", "surrogatepass")
    buffer = ffi_.new("uint16_t[]", len(encoded) // 2 + 1)
    ffi_.memmove(buffer, encoded, len(encoded))
    return buffer


@dataclass(frozen=True)
class FakeCall:
    """One call into the fake: the export, its arguments (handles as ints), the HRESULT returned."""

    function: str
    args: tuple[Any, ...]
    hresult: Optional[int]
    thread: str


@dataclass
class FakeUpdate:
    """What the fake knows about one update it ran."""

    handle: int
    manager: int
    options: int
    context: int
    function: Any = field(repr=False)
    plan: Sequence[ScenarioNotification] = field(repr=False)
    """What this update delivers, in order: START, the scenario's notifications (progress only
    with the PROGRESS option), COMPLETE if the scenario ends."""
    wall_filetime: int = field(repr=False)
    """The update's start as a FILETIME: its notifications are stamped this plus their time."""
    prepared: PreparedPlan = field(repr=False)
    """The plan as the DLL passes it (the same order), ready to deliver (shared by every update
    of the scenario with the same PROGRESS option)."""
    start: float = field(default=0.0, repr=False)
    """Virtual monotonic time at which the update started."""
    delivered: list[int] = field(default_factory=list)
    """The notification numbers delivered so far, in order."""
    aborted: bool = False
    start_sent: bool = False
    """Whether START went to the engine (as planned, or ahead of an early abort's COMPLETE)."""
    completed: bool = False
    complete_hresult: Optional[int] = None
    last_at: float = 0.0
    abort_event: threading.Event = field(default_factory=threading.Event, repr=False)
    worker: Any = field(default=None, repr=False)
    """The delivery engine's handle on the thread delivering this update (thread delivery)."""
    engine_state: Any = field(default=None, repr=False)
    """Whatever the delivery engine keeps per update (this module's: the update's copy of its
    plan until it ends; the native one's: its stop flag)."""
    timers: list[Any] = field(default_factory=list, repr=False)

    @property
    def running(self) -> bool:
        return not self.completed


@dataclass(frozen=True)
class PreparedNotification:
    """One notification exactly as MpClient passes it, ready to be copied and delivered.

    ``data`` holds an MPCALLBACK_DATA, then at ``data_offset`` its MPSIGUPDATE_DATA, then at
    ``path_offset`` the NUL-terminated UTF-16 Path (offsets 0 where absent). The two pointers are
    NULL in ``data``; a delivery engine points them into each copy it hands to the callback.
    """

    notify: int
    hresult: int
    at: float
    data: bytes
    data_offset: int
    path_offset: int


_POINTER_SIZE = ffi.sizeof("void *")
#: The struct (and memoryview) code of a pointer-sized unsigned integer.
POINTER_CODE: Literal["Q", "I"] = "Q" if _POINTER_SIZE == 8 else "I"
_CALLBACK_DATA_SIZE = ffi.sizeof("MPCALLBACK_DATA")
_SIGUPDATE_DATA_SIZE = ffi.sizeof("MPSIGUPDATE_DATA")
_TIMESTAMP_OFFSET = ffi.offsetof("MPCALLBACK_DATA", "TimeStamp")
_DATA_POINTER_OFFSET = ffi.offsetof("MPCALLBACK_DATA", "Data")
_PATH_POINTER_OFFSET = ffi.offsetof("MPSIGUPDATE_DATA", "Path")
#: Where each notification of a plan's template starts: a multiple of this (MPCALLBACK_DATA's
#: alignment, that of its uint64_t, on x64 and x86), so its fields can be patched in place.
_ALIGNMENT = 8
if (  # what PreparedPlan's layout relies on: true on x64 (sizes 32, 32) and x86 (24, 24)
    _CALLBACK_DATA_SIZE % _ALIGNMENT
    or _SIGUPDATE_DATA_SIZE % _ALIGNMENT
    or _TIMESTAMP_OFFSET % 8
    or _DATA_POINTER_OFFSET % _POINTER_SIZE
    or _PATH_POINTER_OFFSET % _POINTER_SIZE
):
    raise ImportError("MPCALLBACK_DATA or MPSIGUPDATE_DATA is not laid out in aligned words")
_DWORD = 0xFFFFFFFF
_CHARS = ffi.typeof("char[]")
_VOID_POINTER = ffi.typeof("void *")


def struct_layout(ffi_: Any, ctype: str, fields: Sequence[tuple[str, str]]) -> struct.Struct:
    """A :class:`struct.Struct` laying ``ctype`` out as ``ffi_`` does: each of ``fields``
    (name, struct code) at its ``offsetof``, native byte order, padding zeroed, ``sizeof`` bytes.
    """
    codes = ["="]
    position = 0
    for name, code in fields:
        offset = ffi_.offsetof(ctype, name)
        if offset > position:
            codes.append(f"{offset - position}x")
        codes.append(code)
        position = offset + struct.calcsize("=" + code)
    size = ffi_.sizeof(ctype)
    if size > position:
        codes.append(f"{size - position}x")
    packer = struct.Struct("".join(codes))
    if packer.size != size:  # a field missing from the list
        raise AssertionError(f"{ctype}: {packer.format} packs {packer.size} bytes, not {size}")
    return packer


#: MPCALLBACK_DATA: Notify, hResult (as its unsigned pattern), TimeStamp, Type, Data (the
#: pointer, packed as 0).
_CALLBACK_DATA = struct_layout(
    ffi,
    "MPCALLBACK_DATA",
    [("Notify", "I"), ("hResult", "I"), ("TimeStamp", "Q"), ("Type", "I"), ("Data", POINTER_CODE)],
)
#: MPSIGUPDATE_DATA: the five numbers and Path (the pointer, packed as 0).
_SIGUPDATE_DATA = struct_layout(
    ffi,
    "MPSIGUPDATE_DATA",
    [
        ("dwPercentComplete", "I"),
        ("dwTotalUpdates", "I"),
        ("dwCurrentUpdateIndex", "I"),
        ("eType", "I"),
        ("Stage", "I"),
        ("Path", POINTER_CODE),
    ],
)


def _encode(item: ScenarioNotification, filetime: int) -> tuple[bytes, int, int]:
    """``item``'s bytes as the DLL passes them (pointers NULL), stamped ``filetime``, with the
    offsets of its MPSIGUPDATE_DATA and Path (0 where absent)."""
    # hResult packed as its unsigned pattern: the same bytes as the int32_t.
    head = _CALLBACK_DATA.pack(item.notify, item.hresult & _DWORD, filetime, item.callback_type, 0)
    data = item.data
    if data is None:
        return head, 0, 0
    sig = _SIGUPDATE_DATA.pack(
        data.percent, data.total_updates, data.current_index, data.update_type, data.stage, 0
    )
    if data.path is None:
        return head + sig, _CALLBACK_DATA_SIZE, 0
    path = data.path.encode("utf-16-le", "surrogatepass") + b"\0\0"
    # _CALLBACK_DATA_SIZE: a multiple of the pointer size on x64 and x86.
    return head + sig + path, _CALLBACK_DATA_SIZE, _CALLBACK_DATA_SIZE + _SIGUPDATE_DATA_SIZE


def prepare_notification(item: ScenarioNotification, filetime: int) -> PreparedNotification:
    """``item`` as the DLL would pass it, stamped ``filetime`` (FILETIME ticks, UTC)."""
    data, data_offset, path_offset = _encode(item, filetime)
    return PreparedNotification(item.notify, item.hresult, item.at, data, data_offset, path_offset)


_T = TypeVar("_T")
_poisons: dict[int, bytes] = {}


def _poison(size: int) -> bytes:
    """``size`` bytes of poison (shared: a plan's notifications come in few sizes)."""
    poison = _poisons.get(size)
    if poison is None:
        poison = _poisons.setdefault(size, _POISON_BYTES * size)
    return poison


class PreparedPlan:
    """Everything an update delivers, exactly as MpClient passes it, laid out once.

    Built once per scenario and PROGRESS option (:meth:`for_scenario`; scenarios are immutable)
    and shared by every update of it, of every fake: ``items`` is the plan (the synthesized START,
    the scenario's notifications, progress only with the PROGRESS option, then the synthesized
    COMPLETE if the scenario ends), ``notify``/``hresults``/``at`` its numbers and times.

    ``data`` is the template of the whole plan: notification ``i`` at ``offsets[i]`` (a multiple
    of 8), ``sizes[i]`` bytes: its MPCALLBACK_DATA, then at ``data_offsets[i]`` (relative to it,
    0 where absent) its MPSIGUPDATE_DATA, then at ``path_offsets[i]`` the NUL-terminated UTF-16
    Path, as :class:`PreparedNotification` lays one out. Its TimeStamp (the 8-byte word
    ``stamp_slots[i]`` of ``data``) holds ``ticks[i]``, its time in FILETIME ticks after the
    update's start (:meth:`stamped` adds the start); the pointers are NULL: a delivery engine
    that copies the template points pointer ``pointer_slots[j]`` (an index in pointer-sized
    words) at its copy's byte ``pointer_targets[j]``. ``poisons[i]`` is ``sizes[i]`` bytes of
    0xDD; ``completes`` lists the indices of the SIGUPDATE_COMPLETEs (the synthesized one last).
    """

    __slots__ = (
        "__weakref__",
        "_memo",
        "at",
        "completes",
        "data",
        "data_offsets",
        "hresults",
        "items",
        "notify",
        "offsets",
        "path_offsets",
        "pointer_slots",
        "pointer_targets",
        "poisons",
        "sizes",
        "stamp_slots",
        "ticks",
    )

    def __init__(self, items: Sequence[ScenarioNotification]) -> None:
        self.items = tuple(items)
        self.notify = tuple(item.notify for item in self.items)
        self.hresults = tuple(item.hresult for item in self.items)
        self.at = tuple(item.at for item in self.items)
        self.ticks = tuple(_ticks(at) for at in self.at)
        self.completes = tuple(
            i for i, notify in enumerate(self.notify) if notify == Notify.SIGUPDATE_COMPLETE
        )
        parts: list[bytes] = []
        offsets, sizes, data_offsets, path_offsets = [], [], [], []
        stamp_slots, pointer_slots, pointer_targets = [], [], []
        paths: dict[str, tuple[bytes, int]] = {}  # path -> its UTF-16, NUL, padding; its size
        pack_head, pack_sig = _CALLBACK_DATA.pack, _SIGUPDATE_DATA.pack
        position = 0
        for item, ticks in zip(self.items, self.ticks):
            offsets.append(position)
            stamp_slots.append((position + _TIMESTAMP_OFFSET) // 8)
            parts.append(  # as _encode() does
                pack_head(item.notify, item.hresult & _DWORD, ticks, item.callback_type, 0)
            )
            data = item.data
            if data is None:
                sizes.append(_CALLBACK_DATA_SIZE)  # a multiple of _ALIGNMENT on x64 and x86
                data_offsets.append(0)
                path_offsets.append(0)
                position += _CALLBACK_DATA_SIZE
                continue
            parts.append(
                pack_sig(
                    data.percent,
                    data.total_updates,
                    data.current_index,
                    data.update_type,
                    data.stage,
                    0,
                )
            )
            data_offsets.append(_CALLBACK_DATA_SIZE)
            pointer_slots.append((position + _DATA_POINTER_OFFSET) // _POINTER_SIZE)
            pointer_targets.append(position + _CALLBACK_DATA_SIZE)
            size = _CALLBACK_DATA_SIZE + _SIGUPDATE_DATA_SIZE  # also a multiple of _ALIGNMENT
            if data.path is None:
                path_offsets.append(0)
            else:
                encoded = paths.get(data.path)
                if encoded is None:
                    text = data.path.encode("utf-16-le", "surrogatepass") + b"\0\0"
                    padding = -len(text) % _ALIGNMENT
                    encoded = paths[data.path] = (text + bytes(padding), len(text))
                parts.append(encoded[0])
                path_offsets.append(size)
                path_pointer = position + _CALLBACK_DATA_SIZE + _PATH_POINTER_OFFSET
                pointer_slots.append(path_pointer // _POINTER_SIZE)
                pointer_targets.append(position + size)
                position += len(encoded[0])
                size += encoded[1]
            sizes.append(size)
            position += _CALLBACK_DATA_SIZE + _SIGUPDATE_DATA_SIZE
        self.data = b"".join(parts)
        self.offsets = tuple(offsets)
        self.sizes = tuple(sizes)
        self.data_offsets = tuple(data_offsets)
        self.path_offsets = tuple(path_offsets)
        self.stamp_slots = tuple(stamp_slots)
        self.pointer_slots = tuple(pointer_slots)
        self.pointer_targets = tuple(pointer_targets)
        self.poisons = tuple(_poison(size) for size in sizes)
        self._memo: dict[str, tuple[Any, Any]] = {}

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def for_scenario(cls, scenario: Scenario, progress: bool) -> PreparedPlan:
        """The plan of an update of ``scenario`` started with (``progress``) or without the
        PROGRESS option: built on first use, then kept as long as the scenario lives."""
        return derived(scenario, ("plan", progress), lambda: cls(_plan(scenario, progress)))

    def remembered(self, kind: str, key: Any, build: Callable[[], _T]) -> _T:
        """``build()``, or what it returned last time for ``kind`` if that was for ``key``: one
        entry per kind, for what delivery engines derive from the plan per update start time."""
        entry = self._memo.get(kind)
        if entry is not None and entry[0] == key:
            return cast(_T, entry[1])
        value = build()
        self._memo[kind] = (key, value)  # one assignment: a racing thread sees old or new
        return value

    def stamped(self, filetime: int) -> bytes:
        """:attr:`data` with each TimeStamp moved to ``filetime`` (the update's start) plus its
        ticks: every notification's bytes as the DLL passes them, pointers NULL."""
        return self.remembered("stamped", filetime, lambda: self._stamp(filetime))

    def _stamp(self, filetime: int) -> bytes:
        data = bytearray(self.data)
        stamps = memoryview(data).cast("Q")
        if filetime >= 0 and filetime + max(self.ticks, default=0) <= MAX_STAMP:
            for slot, ticks in zip(self.stamp_slots, self.ticks):
                stamps[slot] = filetime + ticks
        else:  # only virtual time moved past the calendar by a caller gets here
            for slot, ticks in zip(self.stamp_slots, self.ticks):
                stamps[slot] = _stamp(filetime + ticks)
        stamps.release()
        return bytes(data)


#: What derived() made, by (id(source), kind), with a weak reference to its source.
_derived: dict[tuple[int, Hashable], tuple[Any, Any]] = {}


def derived(source: object, kind: Hashable, build: Callable[[], _T]) -> _T:
    """``build()``, made once per ``kind`` for the immutable ``source`` (a Scenario) and kept
    while ``source`` lives, for every fake that uses it. Looked up by identity: hashing a
    scenario would cost more than its plan. (Made anew each time for a ``source`` that cannot
    be referenced weakly.)"""
    key = (id(source), kind)
    entry = _derived.get(key)
    if entry is not None and entry[0]() is source:
        return cast(_T, entry[1])
    value = build()

    def forget(ref: Any, key: tuple[int, Hashable] = key) -> None:
        if _derived.get(key, (None,))[0] is ref:
            _derived.pop(key, None)

    try:
        reference = weakref.ref(source, forget)
    except TypeError:
        return value
    _derived[key] = (reference, value)
    return value


_VERSION_INFO_SIZE = ffi.sizeof("MPVERSION_INFO")


def _version_bytes(versions: VersionInfo) -> bytes:
    """``versions`` as MpManagerVersionQuery fills an MPVERSION_INFO (reserved part zeroed)."""
    info = ffi.new("MPVERSION_INFO *")
    versions.to_struct(info)
    return bytes(ffi.buffer(info))


def _plan(scenario: Scenario, progress: bool) -> list[ScenarioNotification]:
    """What an update delivers: START, the filtered middle, COMPLETE (if it ends)."""
    plan = [ScenarioNotification(0.0, int(Notify.SIGUPDATE_START))]
    for item in scenario.notifications:
        if item.notify in PROGRESS_NOTIFICATIONS and not progress:
            continue  # MpClient drops progress without the PROGRESS option [BIN]
        plan.append(item)
    complete = scenario.complete
    if complete is not None:
        plan.append(
            ScenarioNotification(complete.at, int(Notify.SIGUPDATE_COMPLETE), complete.hresult)
        )
    return plan


class _Block:
    """An update's notifications, copied from its plan's template into one allocation."""

    __slots__ = ("base", "memory", "size")

    def __init__(self, memory: Any, size: int) -> None:
        self.memory = memory
        self.base = ffi.cast(_VOID_POINTER, memory)  # byte arithmetic: base + offset
        self.size = size


class DeliveryEngine:
    """How prepared notifications reach an update's callback; the model decides which and when.

    The model hands it an update whose :attr:`FakeUpdate.prepared` plan is set (:meth:`start`),
    then asks it to deliver ranges of that plan (:meth:`deliver`), and a notification outside the
    plan (an abort's COMPLETE, :meth:`deliver_extra`); :meth:`finish` says the update has ended.

    This one delivers from Python: at the start, the plan's bytes are copied into one allocation
    (``ffi.new``) and its pointers set; each notification is handed to the callback through its
    function pointer, and its bytes are poisoned (0xDD) as soon as the callback returns, as
    MpClient frees them then. Once the update has ended, its allocation stays in a quarantine until
    :data:`QUARANTINE` later notifications have joined it, so a stale pointer reads the poison.
    Worker threads are :class:`threading.Thread`.
    """

    def __init__(self) -> None:
        self._quarantine: collections.deque[_Block] = collections.deque()
        self._quarantined = 0  # notifications in the quarantine's blocks
        self._quarantine_lock = threading.Lock()

    def start(self, update: FakeUpdate) -> None:
        """Called once an update is set up, before anything is delivered."""
        update.engine_state = self._copy(update)

    @staticmethod
    def _copy(update: FakeUpdate) -> _Block:
        """The update's plan, stamped, copied into one new allocation, its pointers set."""
        plan = update.prepared
        data = plan.stamped(update.wall_filetime)
        memory = ffi.new(_CHARS, data)  # the bytes copied
        if plan.pointer_slots:
            address = int(ffi.cast("uintptr_t", memory))
            pointers = memoryview(ffi.buffer(memory))[: len(data)].cast(POINTER_CODE)
            for slot, target in zip(plan.pointer_slots, plan.pointer_targets):
                pointers[slot] = address + target
        return _Block(memory, len(plan))

    def deliver(self, update: FakeUpdate, start: int, end: int, stoppable: bool) -> int:
        """Deliver plan items ``start`` to ``end`` (excluded) in order on this thread; returns
        how many were delivered. With ``stoppable``, stop before any item but the first once
        the update is aborted."""
        block = update.engine_state
        if block is None:  # the update ended on another thread while this one handed START over
            block = self._copy(update)
            self._keep(block)
        plan = update.prepared
        base = block.base
        function = update.function
        context = update.context
        memmove = ffi.memmove
        items = zip(plan.offsets[start:end], plan.poisons[start:end], plan.sizes[start:end])
        count = 0
        for offset, poison, size in items:
            pointer = base + offset
            function(context, pointer)
            memmove(pointer, poison, size)  # MpClient frees it now
            count += 1
            if stoppable and update.aborted:  # stop before the next
                break
        return count

    def deliver_extra(self, update: FakeUpdate, item: PreparedNotification) -> int:
        """Deliver ``item``, which is not in the update's plan, on this thread; returns 1."""
        size = len(item.data)
        memory = ffi.new(_CHARS, item.data)
        data = ffi.cast("MPCALLBACK_DATA *", memory)
        if item.data_offset:
            sig = ffi.cast("MPSIGUPDATE_DATA *", memory + item.data_offset)
            data.Data.pSigUpdateData = sig
            if item.path_offset:
                sig.Path = ffi.cast("uint16_t *", memory + item.path_offset)
        update.function(update.context, data)
        ffi.memmove(memory, _poison(size), size)  # MpClient frees it now
        self._keep(_Block(memory, 1))
        return 1

    def finish(self, update: FakeUpdate) -> None:
        """``update``'s COMPLETE has been delivered: what :meth:`start` made may go (a START
        that another thread was handing over meanwhile is delivered from a copy of its own)."""
        block = update.engine_state
        update.engine_state = None
        if isinstance(block, _Block):
            self._keep(block)

    def _keep(self, block: _Block) -> None:
        """Quarantine a delivered block: it stays allocated (poisoned) while it holds one of the
        latest QUARANTINE notifications."""
        with self._quarantine_lock:
            self._quarantine.append(block)
            self._quarantined += block.size
            while self._quarantined - self._quarantine[0].size >= QUARANTINE:
                self._quarantined -= self._quarantine.popleft().size

    def abort(self, update: FakeUpdate) -> None:
        """The update was aborted: a running delivery stops before its next item."""

    def spawn(self, update: FakeUpdate, body: Callable[[], None]) -> None:
        """Run ``body`` on a new thread delivering ``update`` (thread delivery)."""
        update.worker = threading.Thread(
            target=body, name=f"FakeMpClient-update-{update.handle:X}", daemon=True
        )
        update.worker.start()

    def join(self, update: FakeUpdate) -> None:
        """Wait for ``update``'s thread, if it has one and it is not the calling thread."""
        worker = update.worker
        if isinstance(worker, threading.Thread) and worker is not threading.current_thread():
            worker.join()

    def alive(self, update: FakeUpdate) -> bool:
        """Whether ``update``'s thread still runs."""
        worker = update.worker
        return isinstance(worker, threading.Thread) and worker.is_alive()


class _Handle:
    __slots__ = ("kind", "update", "value")

    def __init__(self, value: int, kind: str, update: Optional[FakeUpdate] = None) -> None:
        self.value = value
        self.kind = kind
        self.update = update


_Export = TypeVar("_Export", bound=Callable[..., Any])


def _exported(function: _Export) -> _Export:
    """An export of the fake: in strict mode, violations it records are raised when it returns."""

    @functools.wraps(function)
    def export(self: FakeMpClient, *args: Any) -> Any:
        local = self._local
        outer = getattr(local, "pending_violations", None)
        local.pending_violations = []  # a call made from inside a callback keeps its own
        try:
            result = function(self, *args)
        finally:
            pending, local.pending_violations = local.pending_violations, outer
        if pending and self.strict:
            raise FakeViolation(pending[0])
        return result

    return cast(_Export, export)


class FakeMpClient:
    """A fake MpClient.dll replaying a :class:`Scenario`. See the module docs for its behaviour.

    ``scenario``: a Scenario, a built-in scenario name (``mpupdate.fakes.scenarios.names()``) or
    a path to a scenario JSON file. ``delivery``: ``"immediate"``, ``"thread"`` or ``"timed"``.
    ``strict``: raise :class:`FakeViolation` at the offending call (violations are recorded
    either way). ``abort_handle``: which handle MpUpdateControl accepts, ``"manager"`` (the
    shipped DLL), ``"update"`` (the docs) or ``"either"``. ``before_notify``: called with
    ``(update, index, notification)`` on the delivering thread before each notification, so a test
    can hold a worker thread at a chosen point (:meth:`hold` does the common case). ``engine``:
    how notifications are delivered (:class:`DeliveryEngine`, from Python, by default).
    """

    def __init__(
        self,
        scenario: Union[Scenario, str, Path] = "updated",
        delivery: str = "immediate",
        strict: bool = True,
        abort_handle: str = "manager",
        clock: Optional[VirtualClock] = None,
        before_notify: Optional[Callable[[FakeUpdate, int, ScenarioNotification], None]] = None,
        engine: Optional[DeliveryEngine] = None,
    ) -> None:
        check_modes(delivery, abort_handle)
        from . import scenarios

        scenario = scenarios.load_any(scenario)
        self.scenario = scenario
        self.delivery = delivery
        self.strict = strict
        self.abort_handle = abort_handle
        self.before_notify = before_notify
        self.virtual_clock = clock if clock is not None else VirtualClock(scenario.started_at)
        #: The clock the client waits on: the virtual one, except in ``thread`` mode where real
        #: threads deliver. (In ``immediate`` mode nothing is left to wait for after the start, so
        #: a timeout there passes at once instead of in real seconds.)
        self.clock: Clock = SYSTEM_CLOCK if delivery == "thread" else self.virtual_clock
        self.calls: list[FakeCall] = []
        self.violations: list[str] = []
        self.updates: list[FakeUpdate] = []
        self._lock = threading.RLock()
        self._handles: dict[int, _Handle] = {}
        self._closed: set[int] = set()
        self._closing: set[int] = set()
        self._next_handle = _FIRST_HANDLE
        self._allocations: dict[int, Any] = {}
        self._engine = engine if engine is not None else DeliveryEngine()
        self._holds = threading.Condition()
        self._hold_index: Optional[int] = None
        self._holds_released = False
        self._held = 0
        self._versions = scenario.versions_before
        self._local = threading.local()
        self._base_filetime = datetime_to_filetime(self.virtual_clock.now()) - _ticks(
            self.virtual_clock.monotonic()
        )
        _track(self)

    def __repr__(self) -> str:
        return f"FakeMpClient({self.scenario.name!r}, delivery={self.delivery!r})"

    # -- introspection -----------------------------------------------------------------------

    @property
    def open_handles(self) -> dict[int, str]:
        """Open handles as ``{value: "manager" | "update"}``."""
        with self._lock:
            return {value: h.kind for value, h in self._handles.items()}

    @property
    def outstanding_allocations(self) -> int:
        """Buffers returned by MpErrorMessageFormat and not yet given to MpFreeMemory."""
        with self._lock:
            return len(self._allocations)

    def calls_to(self, function: str) -> list[FakeCall]:
        return [call for call in self.calls if call.function == function]

    def call_count(self, function: str) -> int:
        """How many times ``function`` was called."""
        return len(self.calls_to(function))

    def clear_violations(self) -> None:
        """Forget the violations recorded so far (for a test that provoked them on purpose)."""
        with self._lock:
            self.violations.clear()

    def assert_clean(self) -> None:
        """Raise AssertionError naming every open handle, unfreed buffer and violation."""
        assert_clean(
            "FakeMpClient",
            self.violations,
            self.open_handles,
            self.outstanding_allocations,
            [u.handle for u in self.updates if self._engine.alive(u)],
        )

    @property
    def live_workers(self) -> int:
        """Worker threads (thread delivery) that have not finished."""
        with self._lock:
            updates = list(self.updates)
        return sum(1 for update in updates if self._engine.alive(update))

    # -- holding workers (thread delivery) -----------------------------------------------------

    def hold(self, index: Optional[int]) -> None:
        """Make workers wait before delivering plan item ``index`` (0 is the synthesized START)
        until :meth:`release_holds` or an abort of their update; None (or -1) holds nothing.
        Thread delivery only: the other modes deliver on the caller's thread, which a hold would
        block for good, so they ignore it."""
        with self._holds:
            self._hold_index = None if index is None or index < 0 else index
            self._holds_released = False
            self._holds.notify_all()

    def release_holds(self) -> None:
        """Let every held worker go on (and those that reach the hold later, until :meth:`hold`)."""
        with self._holds:
            self._holds_released = True
            self._holds.notify_all()

    def wait_held(self, count: int, timeout: float = 5.0) -> bool:
        """Wait (real time, at most ``timeout`` s) until ``count`` workers are held."""
        with self._holds:
            return self._holds.wait_for(lambda: self._held >= count, timeout)

    def _wait_at_hold(self, update: FakeUpdate) -> None:
        with self._holds:
            self._held += 1
            self._holds.notify_all()
            try:
                self._holds.wait_for(lambda: self._holds_released or update.abort_event.is_set())
            finally:
                self._held -= 1

    # -- bookkeeping ---------------------------------------------------------------------------

    def _log(self, function: str, args: tuple[Any, ...], hresult: Optional[int]) -> int:
        """Record a call; returns the HRESULT signed, as the compiled module would."""
        with self._lock:
            self.calls.append(FakeCall(function, args, hresult, threading.current_thread().name))
        return to_signed(hresult or 0)

    def _violation(self, text: str) -> None:
        """Record misuse; in strict mode the export raises it once it has done what the DLL
        would have done (so both fakes, and the call log, agree on the state after it)."""
        with self._lock:
            self.violations.append(text)
        pending = getattr(self._local, "pending_violations", None)
        if pending is not None:
            pending.append(text)
        elif self.strict:
            raise FakeViolation(text)

    def _in_callback(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def _new_handle(self, kind: str, update: Optional[FakeUpdate] = None) -> int:
        with self._lock:
            value = self._next_handle
            self._next_handle += _HANDLE_STEP
            self._handles[value] = _Handle(value, kind, update)
        return value

    @staticmethod
    def _value(handle: Any) -> int:
        return int(ffi.cast("uintptr_t", handle))

    def _find(self, function: str, handle: Any, kinds: tuple[str, ...]) -> Optional[_Handle]:
        """The open handle of one of ``kinds``; None (after recording misuse) otherwise."""
        value = self._value(handle)
        with self._lock:
            record = self._handles.get(value)
            closed = value in self._closed or value in self._closing
        if record is None and closed:
            self._violation(
                f"{function} was given handle 0x{value:X} after it was closed "
                "(a use-after-free in the real DLL)"
            )
        if record is None or record.kind not in kinds:
            return None
        return record

    # -- the exports ---------------------------------------------------------------------------

    @_exported
    def MpManagerOpen(self, dwReserved: int, phMpHandle: Any) -> int:
        args = (dwReserved,)
        if dwReserved != 0 or phMpHandle == ffi.NULL:
            return self._log("MpManagerOpen", args, E_INVALIDARG)
        if failed(self.scenario.open_hresult):
            return self._log("MpManagerOpen", args, self.scenario.open_hresult)
        value = self._new_handle("manager")
        phMpHandle[0] = ffi.cast("MPHANDLE", value)
        return self._log("MpManagerOpen", (*args, value), S_OK)

    @_exported
    def MpUpdateStart(
        self, hMpHandle: Any, dwUpdateOptions: int, pCallbackInfo: Any, phUpdateHandle: Any
    ) -> int:
        options = int(dwUpdateOptions)
        args: tuple[Any, ...] = (self._value(hMpHandle), options)
        if hMpHandle == ffi.NULL:  # [BIN] not E_HANDLE, with or without callback info
            return self._log("MpUpdateStart", args, E_INVALIDARG)
        manager = self._find("MpUpdateStart", hMpHandle, ("manager",))
        if manager is None:
            return self._log("MpUpdateStart", args, E_HANDLE)
        if pCallbackInfo == ffi.NULL or phUpdateHandle == ffi.NULL:
            return self._log("MpUpdateStart", args, E_INVALIDARG)
        function = pCallbackInfo.pfnCallbackFunction
        if function == ffi.NULL:
            self._log("MpUpdateStart", args, E_INVALIDARG)
            self._violation(
                "MpUpdateStart was given a NULL callback function (the real DLL crashes)"
            )
            return to_signed(E_INVALIDARG)
        if options_refused(options):  # [BIN] the DLL's option check
            return self._log("MpUpdateStart", args, E_INVALIDARG)
        if failed(self.scenario.start_hresult):
            return self._log("MpUpdateStart", args, self.scenario.start_hresult)
        asynchronous = bool(options & _ASYNC)
        if self.scenario.complete is None and not asynchronous and self.delivery != "thread":
            self._log("MpUpdateStart", args, None)
            raise FakeHang.for_scenario(self.scenario.name)
        prepared = self._plan(options)
        start = self.virtual_clock.monotonic()
        update = FakeUpdate(
            handle=0,
            manager=manager.value,
            options=options,
            context=int(pCallbackInfo.CallbackContext),
            function=function,
            plan=prepared.items,
            wall_filetime=_stamp(self._base_filetime + _ticks(start)),
            prepared=prepared,
            start=start,
        )
        update.handle = self._new_handle("update", update)
        self._engine.start(update)
        with self._lock:
            self.updates.append(update)
        phUpdateHandle[0] = ffi.cast("MPHANDLE", update.handle)
        self._log("MpUpdateStart", (*args, update.handle), S_OK)
        if self.delivery == "immediate":
            self._run(update)
        elif self.delivery == "thread":
            self._engine.spawn(update, functools.partial(self._run_worker, update))
            if not asynchronous:
                self._engine.join(update)
        else:
            self._schedule(update)
            if not asynchronous:
                self.virtual_clock.run_until(lambda: update.completed)
        return S_OK  # also when the update fails: the outcome is in COMPLETE [BIN]

    @_exported
    def MpUpdateControl(self, hMpHandle: Any, control: int) -> int:
        args = (self._value(hMpHandle), int(control))
        kinds = ("manager", "update") if self.abort_handle == "either" else (self.abort_handle,)
        record = self._find("MpUpdateControl", hMpHandle, kinds)
        if record is None:
            return self._log("MpUpdateControl", args, E_HANDLE)
        if control in (Control.PAUSE, Control.RESUME):
            return self._log("MpUpdateControl", args, ERROR_INVALID_OPERATION)
        if control != Control.ABORT:
            return self._log("MpUpdateControl", args, E_INVALIDARG)
        with self._lock:
            if record.kind == "update":
                targets = [record.update] if record.update is not None else []
            else:
                targets = [u for u in self.updates if u.manager == record.value]
            running = [u for u in targets if u is not None and u.running and not u.aborted]
        for update in running:
            self._abort(update)
        return self._log("MpUpdateControl", args, S_OK if running else S_FALSE)

    @_exported
    def MpHandleClose(self, hMpHandle: Any) -> int:
        value = self._value(hMpHandle)
        if hMpHandle == ffi.NULL:
            return self._log("MpHandleClose", (0,), S_FALSE)
        if self._in_callback():
            self._log("MpHandleClose", (value,), E_FAIL)
            self._violation(
                f"MpHandleClose(0x{value:X}) was called from inside the callback "
                "(the real DLL hits DebugBreak)"
            )
            return to_signed(E_FAIL)
        with self._lock:
            record = self._handles.get(value)
            children = [
                u.handle
                for u in self.updates
                if record is not None
                and record.kind == "manager"
                and u.manager == value
                and u.handle in self._handles
            ]
        if record is None:
            return self._close_unknown(value)
        if children:
            self._violation(
                f"manager handle 0x{value:X} was closed while its update handle(s) "
                + ", ".join(f"0x{c:X}" for c in children)
                + " were still open"
            )
        with self._lock:  # claim it: a second close racing this one is a double close
            if self._handles.pop(value, None) is None:
                claimed = False
            else:
                claimed = True
                self._closing.add(value)
        if not claimed:
            return self._close_unknown(value)
        update = record.update
        if update is not None:
            if update.running:
                self._abort(update, now=True)  # closing cancels the update and waits for it [BIN]
            self._engine.join(update)
        with self._lock:
            self._closing.discard(value)
            self._closed.add(value)
        return self._log("MpHandleClose", (value,), S_OK)

    def _close_unknown(self, value: int) -> int:
        with self._lock:
            twice = value in self._closed or value in self._closing
        self._log("MpHandleClose", (value,), E_HANDLE)
        if twice:
            self._violation(
                f"handle 0x{value:X} was closed twice (a use-after-free in the real DLL)"
            )
        else:
            self._violation(f"MpHandleClose was given 0x{value:X}, which it never issued")
        return to_signed(E_HANDLE)

    @_exported
    def MpErrorMessageFormat(self, hMpHandle: Any, hr: int, ppszText: Any) -> int:
        code = int(hr) & 0xFFFFFFFF
        args = (self._value(hMpHandle), code)
        if hMpHandle == ffi.NULL:  # [BIN] not E_HANDLE
            return self._log("MpErrorMessageFormat", args, E_INVALIDARG)
        if self._find("MpErrorMessageFormat", hMpHandle, ("manager",)) is None:
            return self._log("MpErrorMessageFormat", args, E_HANDLE)
        if ppszText == ffi.NULL:
            return self._log("MpErrorMessageFormat", args, E_INVALIDARG)
        text = self.scenario.message_for(code)
        if text is None:
            info = HRESULTS.get(code)
            if info is None:  # [GUESS] the DLL's answer for a code it cannot describe
                return self._log("MpErrorMessageFormat", args, E_FAIL)
            text = info.message
        buffer = utf16_buffer(ffi, text + "\r\n")
        with self._lock:
            self._allocations[int(ffi.cast("uintptr_t", buffer))] = buffer
        ppszText[0] = buffer
        return self._log("MpErrorMessageFormat", args, S_OK)

    @_exported
    def MpFreeMemory(self, pMemory: Any) -> None:
        address = int(ffi.cast("uintptr_t", pMemory))
        self._log("MpFreeMemory", (address,), None)
        if address == 0:
            return
        with self._lock:
            buffer = self._allocations.pop(address, None)
        if buffer is None:
            self._violation(
                f"MpFreeMemory(0x{address:X}): not a buffer this DLL returned, or freed twice"
            )
            return
        ffi.memmove(buffer, bytes([_POISON]) * ffi.sizeof(buffer), ffi.sizeof(buffer))

    @_exported
    def MpManagerVersionQuery(self, hMpHandle: Any, pInfo: Any) -> int:
        args = (self._value(hMpHandle),)
        if self._find("MpManagerVersionQuery", hMpHandle, ("manager",)) is None:
            return self._log("MpManagerVersionQuery", args, E_HANDLE)
        if pInfo == ffi.NULL:
            return self._log("MpManagerVersionQuery", args, E_INVALIDARG)
        with self._lock:
            versions = self._versions
        ffi.memmove(pInfo, self._version_bytes(versions), _VERSION_INFO_SIZE)
        return self._log("MpManagerVersionQuery", args, S_OK)

    def _version_bytes(self, versions: VersionInfo) -> bytes:
        """``versions`` as an MPVERSION_INFO: made once per scenario for each of its two."""
        scenario = self.scenario
        for which in ("versions_before", "versions_after"):
            if versions is getattr(scenario, which):
                return derived(scenario, which, lambda: _version_bytes(versions))
        return _version_bytes(versions)

    # -- running an update ---------------------------------------------------------------------

    def _plan(self, options: int) -> PreparedPlan:
        """What this update will deliver: START, the filtered middle, COMPLETE (if it ends)."""
        return PreparedPlan.for_scenario(self.scenario, bool(options & _PROGRESS))

    def _run(self, update: FakeUpdate) -> None:
        """Deliver the plan in order on this thread (immediate and thread modes)."""
        total = len(update.prepared)
        thread = self.delivery == "thread"
        index = 0
        passed_hold = False
        while index < total and not update.abort_event.is_set() and not update.completed:
            end = total
            hold = self._hold_index if thread else None
            if hold is not None and not passed_hold and hold >= index:
                if hold == index:
                    passed_hold = True
                    self._wait_at_hold(update)
                    continue
                end = hold
            if self.before_notify is not None:
                end = index + 1
                self.before_notify(update, index, update.plan[index])
                if update.abort_event.is_set():
                    break
            delivered = self._deliver(update, index, end)
            if delivered == 0:
                break
            index += delivered
        if thread and not update.completed:
            update.abort_event.wait()  # a never-ending update runs until aborted
        if update.abort_event.is_set():
            # The worker cannot tell a close from an ABORT: it ends the update as ABORT does.
            self._emit_abort_complete(update, update.last_at + self._abort_delay(now=False))
        if self.delivery != "timed":  # keep virtual time (and the next update's stamps) moving
            self.virtual_clock.advance_to(update.start + update.last_at)

    def _run_worker(self, update: FakeUpdate) -> None:
        """A delivery thread's body: :meth:`_run`, never dying silently. If it raises (a bug in
        the fake, or a ``before_notify`` that raised), the failure is recorded as a violation
        and the update is ended with COMPLETE(E_FAIL), so a waiter is never left hanging."""
        try:
            self._run(update)
        except BaseException as exc:  # a thread's last line: the update must still end
            with self._lock:
                self.violations.append(
                    f"the delivery thread of update 0x{update.handle:X} failed with "
                    f"{type(exc).__name__}: {exc}; the fake ended the update with "
                    "COMPLETE(E_FAIL)"
                )
            with contextlib.suppress(BaseException):
                self._emit_complete(update, self._elapsed(update), E_FAIL)

    def _deliver(self, update: FakeUpdate, start: int, end: int) -> int:
        """Deliver plan items ``start`` to ``end`` (excluded) through the engine, keeping the
        update's record; returns how many.

        A COMPLETE goes alone, its record kept before the callback sees it: the client may ask
        for the versions as soon as it does. START is recorded (once) as it is handed over, so an
        abort from another thread cannot send it again. The others go in runs, recorded after.
        """
        plan = update.prepared
        completes = plan.completes
        done = start
        while done < end:
            if done > start and update.abort_event.is_set():
                break
            complete = done in completes
            stop = done + 1  # a COMPLETE goes alone, the others up to the next COMPLETE
            if not complete:
                later = bisect.bisect_right(completes, done)
                stop = completes[later] if later < len(completes) else end
                stop = min(stop, end)
            with self._lock:
                if update.completed:
                    break
                recorded = 0  # how many of the run are on the record already
                if done == 0:
                    if update.start_sent:  # an early abort sent it already, from another thread
                        done += 1
                        continue
                    update.start_sent = True  # recorded now, so it stays first on the record
                    update.delivered.append(plan.notify[0])
                    recorded = 1
                if complete:
                    self._record_complete(update, plan.notify[done], plan.hresults[done])
                    update.last_at = max(update.last_at, plan.at[done])
            self._local.depth = getattr(self._local, "depth", 0) + 1
            try:
                count = self._engine.deliver(update, done, stop, stoppable=not complete)
            finally:
                self._local.depth -= 1
            if complete:
                if count:
                    self._engine.finish(update)
            elif count > recorded:
                with self._lock:
                    update.delivered.extend(plan.notify[done + recorded : done + count])
                    update.last_at = max(update.last_at, *plan.at[done : done + count])
            done += count
            if done < stop:
                break
        return done - start

    def _record_complete(self, update: FakeUpdate, notify: int, hresult: int) -> None:
        """Put a COMPLETE on the update's record (under the lock, before it is delivered)."""
        update.completed = True
        update.complete_hresult = hresult
        if hresult == S_OK:
            self._versions = self.scenario.versions_after
        update.delivered.append(notify)

    def _schedule(self, update: FakeUpdate) -> None:
        """Put each notification on the virtual clock at its time (timed mode)."""
        for index, item in enumerate(update.plan):
            timer = self.virtual_clock.call_at(
                update.start + item.at, functools.partial(self._timed, update, index, item)
            )
            update.timers.append(timer)

    def _timed(self, update: FakeUpdate, index: int, item: ScenarioNotification) -> None:
        if self.before_notify is not None:
            self.before_notify(update, index, item)
        self._deliver(update, index, index + 1)

    def _abort(self, update: FakeUpdate, now: bool = False) -> None:
        """End a running update with COMPLETE(E_ABORT): soon (ABORT) or before returning (close)."""
        with self._lock:
            if update.completed:
                return
            first = not update.aborted
            update.aborted = True
        update.abort_event.set()
        self._engine.abort(update)
        with self._holds:  # a held worker lets go of an aborted update
            self._holds.notify_all()
        if self.delivery == "timed":
            for timer in update.timers:
                timer.cancel()
            if now:
                self._emit_abort_complete(update, self._elapsed(update))
            elif first:
                update.timers.append(
                    self.virtual_clock.call_later(
                        self._abort_delay(now=False),
                        lambda: self._emit_abort_complete(update, self._elapsed(update)),
                    )
                )
        elif self.delivery == "immediate" and not self._in_callback():
            # Nothing is delivering it (a never-ending update): end it here, on the virtual
            # clock the client waits on in this mode.
            self._emit_abort_complete(update, self._elapsed(update) + self._abort_delay(now))

    def _abort_delay(self, now: bool) -> float:
        """How long after an abort its COMPLETE(E_ABORT) comes, in seconds: the scenario's
        ``abort_latency`` for ABORT, none for a close (which waits for the update) [GUESS].
        The one place the rule lives, for every delivery mode and both fakes."""
        return 0.0 if now else self.scenario.abort_latency

    def _elapsed(self, update: FakeUpdate) -> float:
        return self.virtual_clock.monotonic() - update.start

    def _emit_abort_complete(self, update: FakeUpdate, at: float) -> None:
        self._emit_complete(update, at, E_ABORT)

    def _emit_complete(self, update: FakeUpdate, at: float, hresult: int) -> None:
        """End ``update`` ``at`` seconds after its start with a COMPLETE carrying ``hresult``
        (E_ABORT for an abort), which is not in its plan."""
        # Aborted before it began: MpClient still sends START first (once: the worker may be
        # handing it over right now, which _deliver settles under the lock).
        self._deliver(update, 0, 1)
        # ``at`` is virtual time, which a caller's timeout may have moved past any scenario time.
        item = ScenarioNotification(min(at, MAX_SECONDS), int(Notify.SIGUPDATE_COMPLETE), hresult)
        prepared = prepare_notification(item, _stamp(update.wall_filetime + _ticks(at)))
        with self._lock:
            if update.completed:
                return
            self._record_complete(update, prepared.notify, prepared.hresult)
            update.last_at = max(update.last_at, at)
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            self._engine.deliver_extra(update, prepared)
        finally:
            self._local.depth -= 1
        self._engine.finish(update)
