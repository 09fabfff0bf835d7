"""The compiled module, and the consumer's side of its notification capture.

MpClient calls ``mpupdate_callback(context, pData)``, a C function of the compiled module
(``mpupdate/_csrc/capture.c``), through the pointer we put in ``MPCALLBACK_INFO``. No Python runs
on the DLL's thread: the callback copies the notification (every field, the data, the path) into
the C queue of the :class:`Sink` whose token is ``context``, wakes a waiting consumer and returns
0. A late or stray notification (a token no queue holds any more) is counted in C
(:func:`stray_notifications`), never dereferenced.

The consumer's thread takes what arrived in batches (:meth:`Sink.take`: one buffer swap under the
C lock) and turns the records into :class:`~mpupdate.events.Event` values; it waits with the GIL
released (:meth:`Sink.wait`), in slices so Ctrl-C and timeouts still work.

**The overflow rule.** A queue holds at most ``max_records`` notifications not yet taken (and
:data:`RESERVED_RECORDS` more for SIGUPDATE_COMPLETE and INTERNAL_FAILURE, so the outcome is never
lost) and ``max_text`` bytes of path text. Past that, a notification (or only its path) is not
kept but counted; :meth:`Sink.take_problems` reports every count, which the client records as an
anomaly. Nothing is dropped silently, and the DLL is never blocked.
"""

from __future__ import annotations

import struct
import threading

from ._mpclient import ffi, lib
from .events import _new_event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from .events import Event

__all__ = [
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_MAX_TEXT",
    "RECORD_FORMAT",
    "Sink",
    "ffi",
    "lib",
    "registry_size",
    "stray_notifications",
]

#: The layout of ``mpupdate_record`` (mpupdate/_cdef/mpupdate_capture_types.h).
RECORD_FORMAT = "=IiQIIIIIIIIIIQ"
_RECORD = struct.Struct(RECORD_FORMAT)

#: Notifications a queue holds untaken before it drops (and counts) further ones.
DEFAULT_MAX_RECORDS = 1 << 18
#: Bytes of UTF-16 path text a queue holds untaken (a repeated path is stored once per batch).
DEFAULT_MAX_TEXT = 64 << 20
#: Extra places for SIGUPDATE_COMPLETE and INTERNAL_FAILURE when a queue is full.
RESERVED_RECORDS = int(lib.MPUPDATE_RESERVED_RECORDS)
#: The longest path kept, in UTF-16 units (the Windows long-path limit).
PATH_MAX_UNITS = int(lib.MPUPDATE_PATH_MAX_UNITS)

_HAS_DATA = int(lib.MPUPDATE_RECORD_HAS_DATA)
_HAS_PATH = int(lib.MPUPDATE_RECORD_HAS_PATH)
_PATH_CUT = int(lib.MPUPDATE_RECORD_PATH_CUT)

#: Longest single wait in C, in ms: the GIL-free wait returns at least this often, so Ctrl-C
#: (handled by Python between bytecodes) and the caller's deadline are seen within it.
WAIT_SLICE_MS = 250

#: The compiled callback's address, for MPCALLBACK_INFO.pfnCallbackFunction.
CALLBACK = ffi.addressof(lib, "mpupdate_callback")


class Sink:
    """One update's capture queue (registered with the callback at creation) and its consumer.

    ``token`` is the context to put in ``MPCALLBACK_INFO``. :meth:`take` returns the events that
    arrived since the last take; :meth:`wait` blocks (GIL released) until something arrives,
    :meth:`wake` is called, or a timeout; :meth:`close` unregisters the token (later
    notifications carrying it are counted as stray). The C queue is freed with the Sink.

    ``wait``, ``acquire`` and ``release`` make a Sink what :meth:`mpupdate.clock.Clock.wait`
    waits on: a virtual clock releases it, moves time (firing the fake's deliveries), and
    acquires it again; the system clock waits on it.
    """

    def __init__(
        self, max_records: int = DEFAULT_MAX_RECORDS, max_text: int = DEFAULT_MAX_TEXT
    ) -> None:
        if not 1 <= max_records <= 1 << 24:
            raise ValueError(f"max_records must be 1 to {1 << 24}, not {max_records}")
        if not 0 <= max_text <= 1 << 30:
            raise ValueError(f"max_text must be 0 to {1 << 30} bytes, not {max_text}")
        queue = lib.mpupdate_queue_new(max_records, max_text)
        if queue == ffi.NULL:
            raise MemoryError("could not allocate a notification queue")
        self._queue = ffi.gc(queue, lib.mpupdate_queue_free)
        self.token: int = int(lib.mpupdate_queue_token(queue))
        self.max_records = max_records
        self.max_text = max_text
        self._batch = ffi.new("mpupdate_batch *")
        self._lock = threading.Lock()  # one taker at a time (the batch buffers are reused)
        self._reported = (0, 0, 0)  # dropped, NULL data, paths dropped: counts already reported
        self._problem_total = 0  # their sum, as last taken: a cheap check for a change
        self._problems: list[str] = []
        self._last_path_bytes = b""
        self._last_path = ""  # what _last_path_bytes decodes to

    def take(self, threads: Optional[list[int]] = None) -> list[Event]:
        """The events that arrived since the last take, in order (empty if none); never blocks
        for long. ``threads``, when given, gets the delivering thread of each (as
        ``threading.get_ident()`` numbers threads)."""
        with self._lock:
            batch = self._batch
            count = lib.mpupdate_queue_take(self._queue, batch)
            if batch.problems != self._problem_total:
                self._problem_total = batch.problems
                self._note_counts((batch.dropped, batch.null_data, batch.paths_dropped))
            if not count:
                return []
            records = ffi.buffer(batch.records, count * 64)[:]
            text = ffi.buffer(batch.text, batch.text_bytes)[:] if batch.text_bytes else b""
            return self._events(records, text, threads)

    def _events(self, records: bytes, text: bytes, threads: Optional[list[int]]) -> list[Event]:
        events: list[Event] = []
        append = events.append
        new = _new_event
        last_offset = last_units = -1
        cut = 0
        last_bytes, last_path = self._last_path_bytes, self._last_path
        for (
            notify,
            hresult,
            filetime,
            kind,
            flags,
            percent,
            total,
            index,
            update_type,
            stage,
            units,
            offset,
            _,
            thread,
        ) in _RECORD.iter_unpack(records):
            if flags & _HAS_DATA:
                path = None
                if flags & _HAS_PATH:
                    if offset != last_offset or units != last_units:  # else shared text
                        raw = text[offset : offset + 2 * units]
                        if raw != last_bytes:
                            last_bytes = raw
                            last_path = raw.decode("utf-16-le", "surrogatepass")
                        last_offset, last_units = offset, units
                    path = last_path
                append(
                    new(
                        notify,
                        hresult & 0xFFFFFFFF,
                        filetime,
                        kind,
                        percent,
                        total,
                        index,
                        update_type,
                        stage,
                        path,
                    )
                )
                if flags & _PATH_CUT:
                    cut += 1
            else:
                append(new(notify, hresult & 0xFFFFFFFF, filetime, kind))
            if threads is not None:
                threads.append(thread)
        self._last_path_bytes, self._last_path = last_bytes, last_path
        if cut:
            self._problems.append(
                f"{cut} notification path(s) had no terminator within {PATH_MAX_UNITS} UTF-16 "
                f"units and were cut there"
            )
        return events

    def _note_counts(self, counts: tuple[int, int, int]) -> None:
        dropped, null_data, paths = (now - before for now, before in zip(counts, self._reported))
        self._reported = counts
        if dropped:
            self._problems.append(
                f"{dropped} notification(s) were dropped: more than {self.max_records} arrived "
                "before they were taken (the queue's bound; SIGUPDATE_COMPLETE and "
                "INTERNAL_FAILURE are always kept)"
            )
        if null_data:
            self._problems.append(
                f"{null_data} notification(s) arrived with a NULL MPCALLBACK_DATA pointer"
            )
        if paths:
            self._problems.append(
                f"{paths} notification path(s) were dropped: more than {self.max_text} bytes of "
                "path text arrived before they were taken"
            )

    def take_problems(self) -> list[str]:
        """What could not become an Event, counted in C (queue overflow, NULL ``pData``), as
        sentences naming the counts; removed from the sink. Call after :meth:`take`."""
        if not self._problems:  # the common case, without the lock (a list's truth is atomic)
            return []
        with self._lock:
            problems, self._problems = self._problems, []
        return problems

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait, without the GIL, until the queue holds something, :meth:`wake` is called, or
        ``timeout`` seconds pass; at most :data:`WAIT_SLICE_MS` at a time (callers loop on their
        own predicate and deadline). True when woken by either."""
        if timeout is None or timeout * 1000 > WAIT_SLICE_MS:
            slice_ms = WAIT_SLICE_MS
        else:
            slice_ms = max(0, int(timeout * 1000 + 0.999))  # rounded up: no spinning near the end
        return bool(lib.mpupdate_queue_wait(self._queue, slice_ms))

    def wake(self) -> None:
        """Wake a thread in :meth:`wait` (now, or at its next wait if none waits)."""
        lib.mpupdate_queue_wake(self._queue)

    def close(self) -> None:
        """Unregister: notifications carrying this token are stray from now on (idempotent).
        What already arrived can still be taken."""
        lib.mpupdate_queue_close(self._queue)

    # What a Clock waits on (see the class docstring): no lock to hold, the queue has its own.
    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


def registry_size() -> int:
    """How many updates can currently receive notifications (0 when every handle is closed)."""
    return int(lib.mpupdate_registered_queues())


def stray_notifications() -> int:
    """How many notifications arrived for no live update (late ones, or not ours), process-wide;
    counted in C, not logged on the DLL's thread."""
    return int(lib.mpupdate_stray_notifications())
