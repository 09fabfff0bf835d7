"""NativeFakeMpClient: the fake DLL as a real shared library, for running the compiled path.

:class:`~mpupdate.fakes.FakeMpClient` is the project's one behavioural model of MpClient: the
scenario, time, handles, argument checks, violations and call log. ``NativeFakeMpClient`` is the
same model behind a C library (``mpfake.c``, built on demand by :func:`build_native_fake`, a DLL
on Windows) with the DLL's seven exports and ABI: the project's compiled module loads it through
:class:`mpupdate.backends.DllBackend` exactly as it loads MpClient.dll, its exports hand every
call to this model, and it delivers the model's notifications from C: on the calling thread, or,
in ``"thread"`` delivery, from threads the library creates, which Python never created. Each
notification is one C allocation, poisoned and freed as soon as the callback returns::

    from mpupdate.fakes.native import NativeFakeMpClient
    fake = NativeFakeMpClient("network-failure", delivery="thread")
    result = mpupdate.update(backend=fake, check=False)
    fake.assert_clean()

The library is global to the process (one MpClient library per process, see DllBackend), so one
NativeFakeMpClient answers its exports at a time: making a new one takes over, and is refused
while the previous one still has open handles. A replaced instance keeps its records and refuses
further calls.

Strictness: as in FakeMpClient, a violation is raised (with ``strict=True``) when the offending
export has done its work; here it is carried across the C boundary and raised when the library's
export returns, like :class:`~mpupdate.fakes.FakeHang`.

Needs a C compiler (or a prebuilt library, see :mod:`mpupdate.fakes.native.build`); not part of
the installed package's run time.
"""

from __future__ import annotations

import atexit
import importlib
import itertools
import os
import threading
import warnings
import weakref
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional, Union

from mpupdate._native import ffi as binding_ffi
from mpupdate.backends import EXPORTS, DllBackend, MpClientOverrideWarning
from mpupdate.errors import to_signed

from ..dll import (
    POINTER_CODE,
    DeliveryEngine,
    FakeHang,
    FakeMpClient,
    FakeUpdate,
    PreparedNotification,
    PreparedPlan,
    struct_layout,
)
from ..scenario import Scenario
from .build import NativeFakeBuildError, build_native_fake

__all__ = [
    "NativeFakeBuildError",
    "NativeFakeMpClient",
    "NativeLibrary",
    "build_native_fake",
    "native_library",
]

HERE = Path(__file__).resolve().parent

_ABI_VERSION = 2
_E_UNEXPECTED = 0x8000FFFF
#: What a start that would block forever answers before NativeFakeMpClient raises FakeHang
#: (HRESULT_FROM_WIN32(ERROR_POSSIBLE_DEADLOCK); a fake-only answer, the DLL would hang).
_E_WOULD_HANG = 0x8007046B

#: How the model receives each export's arguments, from the 64-bit values the library passes
#: (in mpupdate.backends.EXPORTS order, which the library is checked to share).
_ARGUMENTS: dict[str, Callable[[int, int, int, int], tuple[Any, ...]]] = {
    "MpManagerOpen": lambda a0, a1, a2, a3: (a0, binding_ffi.cast("MPHANDLE *", a1)),
    "MpUpdateStart": lambda a0, a1, a2, a3: (
        binding_ffi.cast("MPHANDLE", a0),
        a1,
        binding_ffi.cast("MPCALLBACK_INFO *", a2),
        binding_ffi.cast("MPHANDLE *", a3),
    ),
    "MpUpdateControl": lambda a0, a1, a2, a3: (binding_ffi.cast("MPHANDLE", a0), a1),
    "MpHandleClose": lambda a0, a1, a2, a3: (binding_ffi.cast("MPHANDLE", a0),),
    "MpErrorMessageFormat": lambda a0, a1, a2, a3: (
        binding_ffi.cast("MPHANDLE", a0),
        to_signed(a1 & 0xFFFFFFFF),
        binding_ffi.cast("uint16_t **", a2),
    ),
    "MpFreeMemory": lambda a0, a1, a2, a3: (binding_ffi.cast("void *", a0),),
    "MpManagerVersionQuery": lambda a0, a1, a2, a3: (
        binding_ffi.cast("MPHANDLE", a0),
        binding_ffi.cast("MPVERSION_INFO *", a1),
    ),
}


class NativeLibrary:
    """The built library, loaded twice over: as the MpClient backend and for its control API.

    ``backend`` is the :class:`DllBackend` (the project's compiled module calling the exports);
    ``ffi``/``lib`` an ABI-mode cffi view of the same file for ``mpfake_*`` (dlopen of the same
    path gives the same library). ``model`` is the NativeFakeMpClient its exports call, if any.
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
        self.ffi.cdef("const char *mpfake_export_name(uint32_t index);")
        self.lib: Any = self.ffi.dlopen(str(path))
        version = int(self.lib.mpfake_abi_version())
        if version != _ABI_VERSION:
            raise NativeFakeBuildError(
                f"{path} speaks control API version {version}, this module {_ABI_VERSION}"
            )
        built, declared = int(self.lib.mpfake_sizeof(0)), self.ffi.sizeof("mpfake_notification")
        if built != declared:
            raise NativeFakeBuildError(
                f"{path}: sizeof(mpfake_notification) is {built} in the library but {declared} "
                "in mpfake_control.h as cffi reads it; rebuild"
            )
        names = []
        for index in itertools.count():
            name = self.lib.mpfake_export_name(index)
            if name == self.ffi.NULL:
                break
            names.append(self.ffi.string(name).decode("ascii"))
        if tuple(names) != EXPORTS:
            raise NativeFakeBuildError(
                f"{path} numbers its exports {names}, mpupdate.backends.EXPORTS {list(EXPORTS)}"
            )
        self._lock = threading.Lock()
        self._model: Optional[weakref.ReferenceType[NativeFakeMpClient]] = None
        self._bodies: dict[int, Callable[[], None]] = {}
        self._next_body = itertools.count(1)
        # Kept alive as long as the library: C holds these function pointers.
        self._answer = self.ffi.callback(
            "mpfake_model_fn", self._dispatch, error=to_signed(_E_UNEXPECTED)
        )
        self._thread_body = self.ffi.callback("mpfake_thread_fn", self._run_body)
        self.lib.mpfake_set_model(self._answer)
        # No callback may reach a finalizing interpreter: stop the delivering threads at exit.
        atexit.register(self.quiesce)

    @property
    def model(self) -> Optional[NativeFakeMpClient]:
        """The NativeFakeMpClient the exports call now, if any."""
        return self._model() if self._model is not None else None

    def attach(self, model: NativeFakeMpClient) -> None:
        """Make ``model`` the one the exports call; refused while the previous one has open
        handles (RuntimeError naming them)."""
        with self._lock:
            previous = self.model
            if previous is not None and previous is not model:
                handles = previous.open_handles
                if handles:
                    raise RuntimeError(
                        f"the native fake is still in use by {previous!r}: handle(s) "
                        + ", ".join(f"0x{value:X} ({kind})" for value, kind in handles.items())
                        + " are open. Only one scenario can be configured at a time in a "
                        "process; close them first, or call NativeFakeMpClient.reset_library() "
                        "to discard that state"
                    )
                previous.retire()
            self.lib.mpfake_set_quarantine(0)
            self.lib.mpfake_release_quarantine()
            self._model = weakref.ref(model)

    def detach(self) -> None:
        """Discard the current model's state (open handles included) and detach it."""
        with self._lock:
            previous = self.model
            self._model = None
        if previous is not None:
            previous.discard()

    def quiesce(self) -> None:
        """Abort every running update and wait for the delivering threads (interpreter exit)."""
        model = self.model
        if model is not None:
            model.stop_workers()

    def _dispatch(self, index: int, a0: int, a1: int, a2: int, a3: int) -> int:
        model = self.model
        if model is None or index >= len(EXPORTS):
            return to_signed(_E_UNEXPECTED)
        return model.answer(EXPORTS[index], a0, a1, a2, a3)

    def spawn(self, body: Callable[[], None]) -> int:
        """Run ``body`` on a thread the library creates; returns the thread's id."""
        key = next(self._next_body)
        with self._lock:
            self._bodies[key] = body
        thread = int(self.lib.mpfake_thread_start(self._thread_body, key))
        if thread == 0:
            with self._lock:
                self._bodies.pop(key, None)
            raise RuntimeError("the native fake could not create a thread")
        return thread

    def _run_body(self, key: int) -> None:
        with self._lock:
            body = self._bodies.pop(key, None)
        if body is not None:
            body()

    def string(self, pointer: Any) -> str:
        if pointer == self.ffi.NULL:
            return ""
        return str(self.ffi.string(pointer).decode("utf-8", "replace"))


_library: Optional[NativeLibrary] = None
_library_lock = threading.Lock()


def native_library(
    cache_dir: Union[str, Path, None] = None, path: Union[str, Path, None] = None
) -> NativeLibrary:
    """Build (or reuse) and load the native fake; the same object for the whole process.

    ``path``: use the library at that path instead of building one (for instance the copy the
    default MpClient.dll search loaded); it must be the one already loaded, if any.
    """
    global _library
    with _library_lock:
        if _library is None:
            _library = NativeLibrary(
                Path(path) if path is not None else build_native_fake(cache_dir)
            )
        elif path is not None and os.path.normcase(str(path)) != os.path.normcase(
            str(_library.path)
        ):
            raise RuntimeError(
                f"the native fake is already loaded from {_library.path}; one MpClient library "
                "per process"
            )
        return _library


class NativeEngine(DeliveryEngine):
    """Delivers through the library: C copies each prepared notification into one allocation,
    calls the callback and frees the block; threads are the library's.

    The ``mpfake_notification`` array C delivers from is made once per plan and update start
    time (:meth:`PreparedPlan.remembered`), so updates of one scenario share it, and a delivery is
    one call into the library."""

    def __init__(self, library: NativeLibrary) -> None:
        super().__init__()
        self._library = library
        ffi = library.ffi
        self._item_size = ffi.sizeof("mpfake_notification")
        self._bytes_offset = ffi.offsetof("mpfake_notification", "bytes")
        self._item = struct_layout(
            ffi,
            "mpfake_notification",
            [("bytes", POINTER_CODE), ("size", "I"), ("data_offset", "I"), ("path_offset", "I")],
        )

    def start(self, update: FakeUpdate) -> None:
        stop = self._library.ffi.new("int32_t *")  # the stop flag C reads
        function = int(binding_ffi.cast("uintptr_t", update.function))
        update.engine_state = _NativeState(stop, self._items_for(update), function)

    def _items_for(self, update: FakeUpdate) -> _NativeItems:
        plan = update.prepared
        filetime = update.wall_filetime
        return plan.remembered(
            "native", (self._library, filetime), lambda: self._items(plan, filetime)
        )

    def _items(self, plan: PreparedPlan, filetime: int) -> _NativeItems:
        """The plan stamped ``filetime``, as the array of mpfake_notification C delivers from."""
        ffi = self._library.ffi
        layout = plan.remembered("native layout", self._library, lambda: self._layout(plan))
        data = plan.stamped(filetime)
        buffer = ffi.from_buffer("uint8_t[]", data)  # C only reads it
        address = int(ffi.cast("uintptr_t", buffer))
        array = ffi.new("mpfake_notification[]", len(plan))
        ffi.memmove(array, layout, len(layout))
        pointers = memoryview(ffi.buffer(array)).cast(POINTER_CODE)
        first = self._bytes_offset // pointers.itemsize
        step = self._item_size // pointers.itemsize
        for slot, offset in zip(range(first, len(pointers), step), plan.offsets):
            pointers[slot] = address + offset
        return _NativeItems(array, buffer)

    def _layout(self, plan: PreparedPlan) -> bytes:
        """The plan's mpfake_notification array with its ``bytes`` pointers NULL."""
        pack = self._item.pack
        return b"".join(
            pack(0, size, data_offset, path_offset)
            for size, data_offset, path_offset in zip(
                plan.sizes, plan.data_offsets, plan.path_offsets
            )
        )

    def deliver(self, update: FakeUpdate, start: int, end: int, stoppable: bool) -> int:
        state = update.engine_state
        items = state.items  # kept here: finish() may drop it
        if items is None:  # the update ended on another thread while this one handed START over
            items = self._items_for(update)
        return int(
            self._library.lib.mpfake_deliver(
                state.function,
                update.context,
                items.array + start,
                end - start,
                state.stop if stoppable else self._library.ffi.NULL,
            )
        )

    def deliver_extra(self, update: FakeUpdate, item: PreparedNotification) -> int:
        ffi = self._library.ffi
        array = ffi.new("mpfake_notification[1]")
        data = ffi.from_buffer("uint8_t[]", item.data)
        array[0].bytes = data
        array[0].size = len(item.data)
        array[0].data_offset = item.data_offset
        array[0].path_offset = item.path_offset
        function = int(binding_ffi.cast("uintptr_t", update.function))
        return int(self._library.lib.mpfake_deliver(function, update.context, array, 1, ffi.NULL))

    def finish(self, update: FakeUpdate) -> None:
        state = update.engine_state
        if isinstance(state, _NativeState):
            state.items = None  # C frees each block itself; the array may go with the plan

    def abort(self, update: FakeUpdate) -> None:
        state = update.engine_state
        if isinstance(state, _NativeState):
            state.stop[0] = 1

    def spawn(self, update: FakeUpdate, body: Callable[[], None]) -> None:
        # Published before the thread exists: it may deliver (and a test look) before
        # mpfake_thread_start has even returned its id.
        worker = _NativeWorker()
        update.worker = worker
        try:
            worker.thread = self._library.spawn(body)
        finally:
            worker.ready.set()

    def join(self, update: FakeUpdate) -> None:
        worker = update.worker
        if isinstance(worker, _NativeWorker):
            worker.ready.wait()
            if worker.thread:
                self._library.lib.mpfake_thread_join(worker.thread)  # -1 from itself: no-op

    def alive(self, update: FakeUpdate) -> bool:
        worker = update.worker
        if not isinstance(worker, _NativeWorker):
            return False
        if not worker.ready.is_set():
            return True  # being started
        return bool(worker.thread) and bool(self._library.lib.mpfake_thread_alive(worker.thread))


class _NativeItems:
    """A plan's notifications as C delivers them: the array, and the bytes its items point to."""

    __slots__ = ("array", "buffer")

    def __init__(self, array: Any, buffer: Any) -> None:
        self.array = array
        self.buffer = buffer


class _NativeState:
    """What NativeEngine keeps per update: the stop flag C reads, the plan's items (until the
    update ends) and the callback's address."""

    __slots__ = ("function", "items", "stop")

    def __init__(self, stop: Any, items: Optional[_NativeItems], function: int) -> None:
        self.stop = stop
        self.items = items
        self.function = function


class _NativeWorker:
    """The library's thread delivering one update: its id once mpfake_thread_start returned."""

    __slots__ = ("ready", "thread")

    def __init__(self) -> None:
        self.thread = 0
        self.ready = threading.Event()


class NativeFakeMpClient(FakeMpClient):
    """The model of :class:`FakeMpClient` behind the native library's exports; a backend.

    ``scenario``, ``delivery``, ``strict``, ``abort_handle``: as FakeMpClient's (``"thread"``
    delivery calls back from the library's own threads). ``cache_dir``: where to build the
    library on first use in the process (see :func:`build_native_fake`). ``library``: the path
    of an already built library to use instead (for instance the MpClient.dll the default search
    loaded). Later instances reuse the library already loaded.

    Raises RuntimeError if the previous NativeFakeMpClient still has open handles.
    """

    def __init__(
        self,
        scenario: Union[Scenario, str, Path] = "updated",
        delivery: str = "immediate",
        strict: bool = True,
        abort_handle: str = "manager",
        cache_dir: Union[str, Path, None] = None,
        library: Union[str, Path, None] = None,
    ) -> None:
        native = native_library(cache_dir, library)
        super().__init__(
            scenario,
            delivery=delivery,
            strict=strict,
            abort_handle=abort_handle,
            engine=NativeEngine(native),
        )
        self._library = native
        self._backend = native.backend
        self.path = native.path
        self._retired = False
        native.attach(self)

    def __repr__(self) -> str:
        return f"NativeFakeMpClient({self.scenario.name!r}, delivery={self.delivery!r})"

    # -- one model at a time -------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """False once another NativeFakeMpClient (or reset_library) has replaced this one."""
        return not self._retired

    def retire(self) -> None:
        """Stop answering the library's exports (a newer instance took over)."""
        self._retired = True

    def discard(self) -> None:
        """Abort every running update, wait for its thread, forget every handle; retire."""
        self.stop_workers()
        with self._lock:
            for value in list(self._handles):
                self._closed.add(value)
            self._handles.clear()
            self._allocations.clear()
        self.retire()

    def stop_workers(self) -> None:
        """Abort every running update and wait for the threads delivering them."""
        with self._lock:
            updates = list(self.updates)
        for update in updates:
            if update.running:
                self._abort(update, now=True)
        for update in updates:
            self._engine.join(update)

    @staticmethod
    def in_use(cache_dir: Union[str, Path, None] = None) -> bool:
        """Whether the instance the library answers for now has open handles."""
        model = native_library(cache_dir).model
        return model is not None and bool(model.open_handles)

    @staticmethod
    def reset_library(cache_dir: Union[str, Path, None] = None) -> None:
        """Discard the current instance's state (open handles included) and detach it.

        For recovering after a test left handles open; that instance keeps its records.
        """
        native_library(cache_dir).detach()

    def quarantine(self, on: bool = True) -> None:
        """Keep freed (poisoned) notification blocks allocated until the next instance takes
        over, so a test may read what a stale pointer would see."""
        self._check_active()
        self._library.lib.mpfake_set_quarantine(1 if on else 0)

    @property
    def blocks_delivered(self) -> int:
        """Notification blocks the library has allocated, delivered and freed in this process."""
        return int(self._library.lib.mpfake_blocks_delivered())

    # -- the model's side: what the library's exports call --------------------------------------

    def answer(self, export: str, a0: int, a1: int, a2: int, a3: int) -> int:
        """Answer one call of the library's export ``export`` (on the calling thread)."""
        local = self._local  # what cannot cross C is raised by _call when the export returns
        try:
            arguments = _ARGUMENTS[export](a0, a1, a2, a3)
            result = getattr(FakeMpClient, export)(self, *arguments)
        except FakeHang as exc:
            local.pending = exc
            return to_signed(_E_WOULD_HANG)
        except BaseException as exc:  # nothing may unwind through C
            local.pending = exc
            return to_signed(_E_UNEXPECTED)
        return 0 if result is None else int(result)

    # -- the binding's side: the exports, through the library -----------------------------------

    def _check_active(self) -> None:
        if self._retired:
            raise RuntimeError(
                f"{self!r} was replaced by a newer NativeFakeMpClient (the library holds one "
                "scenario at a time); use the new one"
            )

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        self._check_active()
        local = self._local
        local.pending = None
        result = function(*args)
        pending, local.pending = local.pending, None
        if pending is not None:  # a FakeViolation (strict), FakeHang, or a bug in the model
            raise pending
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
