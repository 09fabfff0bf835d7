"""The compiled capture (mpupdate/_csrc/capture.c) and its consumer, mpupdate._native.Sink.

The callback is called here exactly as MpClient calls it (through the C function pointer the
client puts in MPCALLBACK_INFO), with notifications built in C memory that is freed or
overwritten right after each call, as the DLL does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpupdate import _native
from mpupdate._native import CALLBACK, PATH_MAX_UNITS, RESERVED_RECORDS, Sink, ffi
from mpupdate.constants import Notify, SigUpdateType, Stage
from mpupdate.events import Event, decode

PROGRESS = int(Notify.SIGUPDATE_DOWNLOAD_PROGRESS)
COMPLETE = int(Notify.SIGUPDATE_COMPLETE)
FAILURE = int(Notify.INTERNAL_FAILURE)


class Notification:
    """An MPCALLBACK_DATA and what it points to, alive as long as this object."""

    def __init__(
        self,
        notify: int = PROGRESS,
        hresult: int = 0,
        filetime: int = 134_116_992_000_000_000,
        callback_type: int = 6,
        data: Optional[tuple[int, int, int, int, int]] = (50, 3, 1, 1, 2),
        path: Optional[list[int]] = None,
    ) -> None:
        self.data = ffi.new("MPCALLBACK_DATA *")
        self.data.Notify = notify
        self.data.hResult = hresult - (1 << 32) if hresult >= 1 << 31 else hresult
        self.data.TimeStamp = filetime
        self.data.Type = callback_type
        self.keep: list[Any] = []
        if data is not None:
            sig = ffi.new("MPSIGUPDATE_DATA *")
            (sig.dwPercentComplete, sig.dwTotalUpdates, sig.dwCurrentUpdateIndex) = data[:3]
            sig.eType, sig.Stage = data[3:]
            if path is not None:
                units = ffi.new("uint16_t[]", path)
                sig.Path = units
                self.keep.append(units)
            self.keep.append(sig)
            self.data.Data.pSigUpdateData = sig

    def send(self, sink: Sink) -> int:
        return int(CALLBACK(sink.token, self.data))


@pytest.fixture(autouse=True)
def _close_sinks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Sink a test makes is unregistered when it ends (the suite checks none is left)."""
    made: list[Sink] = []
    real_init = Sink.__init__

    def init(self: Sink, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Sink, "__init__", init)
    yield
    for sink in made:
        sink.close()


def units(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)] + [0]


def test_every_field_is_copied_and_the_numbers_become_members() -> None:
    sink = Sink()
    note = Notification(hresult=0x80070005, path=units(r"C:\x\mpam-fe.exe"))
    assert note.send(sink) == 0
    threads: list[int] = []
    (event,) = sink.take(threads)
    assert event == Event(
        Notify.SIGUPDATE_DOWNLOAD_PROGRESS,
        0x80070005,
        event.timestamp,
        percent=50,
        total_updates=3,
        current_index=1,
        update_type=SigUpdateType.MANAGED,
        stage=Stage.DOWNLOAD,
        path=r"C:\x\mpam-fe.exe",
        filetime=134_116_992_000_000_000,
    )
    assert event.notify is Notify.SIGUPDATE_DOWNLOAD_PROGRESS
    assert event.update_type is SigUpdateType.MANAGED and event.stage is Stage.DOWNLOAD
    assert event.timestamp.isoformat() == "2026-01-01T00:00:00+00:00"
    assert threads == [threading.get_ident()]
    assert sink.take() == [] and sink.take_problems() == []


def test_the_copy_is_made_before_the_callback_returns() -> None:
    sink = Sink()
    note = Notification(path=units("first"))
    note.send(sink)
    # What MpClient does once the callback returned: reuse (here: overwrite) the memory.
    note.data.Notify = COMPLETE
    note.keep[0][0:5] = units("XXXXX")[:5]
    note.data.Data.pSigUpdateData.dwPercentComplete = 99
    (event,) = sink.take()
    assert (event.notify, event.percent, event.path) == (
        Notify.SIGUPDATE_DOWNLOAD_PROGRESS,
        50,
        "first",
    )


def test_the_union_is_read_only_for_sigupdate_and_null_pointers_are_safe() -> None:
    sink = Sink()
    other = Notification(callback_type=7, data=None)
    # An address nothing may read: following it would crash the process.
    other.data.Data.pOther = ffi.cast("void *", 8)
    other.send(sink)
    Notification(data=None).send(sink)  # SIGUPDATE without data
    Notification(path=None).send(sink)  # data without a path
    first, second, third = sink.take()
    assert (first.callback_type, first.has_data, first.path) == (7, False, None)
    assert (second.has_data, second.percent, second.path) == (False, None, None)
    assert (third.has_data, third.percent, third.path) == (True, 50, None)


def test_lone_surrogates_and_empty_paths_survive() -> None:
    sink = Sink()
    for text in ("", "a\ud800b", "", "\udfff", "\udfff", "z"):
        Notification(path=units(text)).send(sink)
    assert [e.path for e in sink.take()] == ["", "a\ud800b", "", "\udfff", "\udfff", "z"]


def test_a_path_without_a_terminator_is_cut_at_the_limit_and_reported() -> None:
    sink = Sink()
    unterminated = [ord("p")] * PATH_MAX_UNITS  # no NUL at all: nothing past it may be read
    Notification(path=unterminated).send(sink)
    (event,) = sink.take()
    assert event.path == "p" * PATH_MAX_UNITS
    assert sink.take_problems() == [
        f"1 notification path(s) had no terminator within {PATH_MAX_UNITS} UTF-16 units and "
        "were cut there"
    ]


def test_a_repeated_path_is_decoded_once_and_batches_do_not_mix_paths() -> None:
    sink = Sink()
    for text in ("same", "same", "other", "same"):
        Notification(path=units(text)).send(sink)
    first = sink.take()
    assert [e.path for e in first] == ["same", "same", "other", "same"]
    assert first[0].path is first[1].path  # one str for a repeated path
    Notification(path=units("same")).send(sink)
    Notification(path=units("next")).send(sink)
    assert [e.path for e in sink.take()] == ["same", "next"]


def test_a_null_notification_is_counted_not_kept() -> None:
    sink = Sink()
    assert CALLBACK(sink.token, ffi.NULL) == 0
    assert CALLBACK(sink.token, ffi.NULL) == 0
    assert sink.take() == []
    assert sink.take_problems() == ["2 notification(s) arrived with a NULL MPCALLBACK_DATA pointer"]
    assert sink.take() == [] and sink.take_problems() == []  # each count reported once


def test_past_the_bound_notifications_are_counted_but_the_outcome_is_kept() -> None:
    sink = Sink(max_records=4)
    for percent in range(10):
        Notification(data=(percent, 1, 0, 1, 2)).send(sink)
    Notification(FAILURE, 0x80004005, data=None).send(sink)
    Notification(COMPLETE, 0x80004005, data=None).send(sink)
    events = sink.take()
    assert [e.percent for e in events[:4]] == [0, 1, 2, 3]
    assert [e.notify for e in events[4:]] == [Notify.INTERNAL_FAILURE, Notify.SIGUPDATE_COMPLETE]
    assert sink.take_problems() == [
        "6 notification(s) were dropped: more than 4 arrived before they were taken (the "
        "queue's bound; SIGUPDATE_COMPLETE and INTERNAL_FAILURE are always kept)"
    ]
    # Taking makes room again.
    Notification(data=(42, 1, 0, 1, 2)).send(sink)
    assert [e.percent for e in sink.take()] == [42]


def test_the_reserve_for_completes_is_bounded_too() -> None:
    sink = Sink(max_records=1)
    for _ in range(RESERVED_RECORDS + 11):
        Notification(COMPLETE, data=None).send(sink)
    assert len(sink.take()) == RESERVED_RECORDS + 1
    assert sink.take_problems()[0].startswith("10 notification(s) were dropped")


def test_past_the_text_bound_a_path_is_dropped_and_counted_the_notification_kept() -> None:
    sink = Sink(max_text=8)  # four UTF-16 units
    Notification(path=units("abc")).send(sink)
    Notification(path=units("toolong")).send(sink)
    Notification(path=units("d")).send(sink)
    events = sink.take()
    assert [(e.percent, e.path) for e in events] == [(50, "abc"), (50, None), (50, "d")]
    assert sink.take_problems() == [
        "1 notification path(s) were dropped: more than 8 bytes of path text arrived before "
        "they were taken"
    ]


def test_bad_bounds_are_refused_with_the_range() -> None:
    with pytest.raises(ValueError, match=r"max_records must be 1 to 16777216, not 0"):
        Sink(max_records=0)
    with pytest.raises(ValueError, match=r"max_text must be 0 to 1073741824 bytes, not -1"):
        Sink(max_text=-1)


def test_after_close_notifications_are_stray_and_never_reach_the_queue() -> None:
    sink = Sink()
    registered = _native.registry_size()
    Notification().send(sink)
    sink.close()
    sink.close()  # idempotent
    assert _native.registry_size() == registered - 1
    before = _native.stray_notifications()
    Notification().send(sink)
    assert _native.stray_notifications() == before + 1
    assert len(sink.take()) == 1  # what arrived before the close can still be taken


def test_wait_returns_at_once_when_something_is_queued_or_a_wake_is_pending() -> None:
    sink = Sink()
    assert sink.wait(0) is False  # nothing: a zero timeout returns at once
    Notification().send(sink)
    assert sink.wait(None) is True  # already there: no waiting
    sink.take()
    sink.wake()
    assert sink.wait(None) is True  # a wake before the wait is kept for it
    assert sink.wait(0) is False  # ... and consumed by it


def test_wait_is_woken_by_a_notification_from_another_thread() -> None:
    sink = Sink()
    note = Notification()
    waiting = threading.Event()
    woken: list[bool] = []

    def consumer() -> None:
        waiting.set()
        while not woken or not woken[-1]:
            woken.append(sink.wait(None))

    thread = threading.Thread(target=consumer)
    thread.start()
    waiting.wait()
    note.send(sink)
    thread.join(10)
    assert not thread.is_alive() and woken[-1] is True
    assert len(sink.take()) == 1


def test_concurrent_callers_lose_nothing_and_each_is_recorded() -> None:
    sink = Sink()
    per_thread = 2000
    notes = [Notification(data=(i, 4, i, 1, 2), path=units(f"t{i}")) for i in range(4)]
    start = threading.Barrier(4)

    def caller(note: Notification) -> None:
        start.wait()
        for _ in range(per_thread):
            note.send(sink)

    workers = [threading.Thread(target=caller, args=(note,)) for note in notes]
    for worker in workers:
        worker.start()
    threads: list[int] = []
    events: list[Event] = []
    while any(worker.is_alive() for worker in workers):
        events += sink.take(threads)
    for worker in workers:
        worker.join()
    events += sink.take(threads)
    assert len(events) == 4 * per_thread
    assert {e.percent: e.path for e in events} == {i: f"t{i}" for i in range(4)}
    assert set(threads) == {w.ident for w in workers}
    # Each thread's notifications keep their order.
    by_thread: dict[int, int] = {}
    for thread, event in zip(threads, events):
        by_thread.setdefault(thread, event.percent or 0)
        assert by_thread[thread] == event.percent
    assert sink.take_problems() == []


numbers = st.integers(0, 0xFFFFFFFF)


@settings(max_examples=150, deadline=None)
@given(
    notify=numbers,
    hresult=numbers,
    filetime=st.integers(0, 0xFFFFFFFFFFFFFFFF),
    callback_type=st.sampled_from([6, 6, 6, 0, 7, 0xFFFFFFFF]),
    data=st.none() | st.tuples(numbers, numbers, numbers, numbers, numbers),
    path=st.none() | st.text(max_size=40),
)
def test_the_capture_equals_the_python_reference_decoder(
    notify: int,
    hresult: int,
    filetime: int,
    callback_type: int,
    data: Optional[tuple[int, int, int, int, int]],
    path: Optional[str],
) -> None:
    note = Notification(
        notify, hresult, filetime, callback_type, data, None if path is None else units(path)
    )
    sink = Sink()
    note.send(sink)
    (event,) = sink.take()
    assert event == decode(note.data)
    assert event.timestamp == decode(note.data).timestamp
    sink.close()
