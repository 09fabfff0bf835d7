"""FakeMpClient's exports, called directly as the compiled module would be called."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Union

import pytest

import mpupdate
from mpupdate._native import ffi
from mpupdate.constants import (
    E_ABORT,
    E_FAIL,
    E_HANDLE,
    E_INVALIDARG,
    ERROR_INVALID_OPERATION,
    PROGRESS_NOTIFICATIONS,
    S_FALSE,
    S_OK,
    Control,
    Notify,
    UpdateOption,
)
from mpupdate.errors import to_unsigned
from mpupdate.events import read_utf16
from mpupdate.fakes import (
    FakeHang,
    FakeMpClient,
    FakeUpdate,
    FakeViolation,
    Scenario,
    ScenarioNotification,
    VirtualClockStall,
    scenarios,
)
from mpupdate.fakes.dll import MAX_STAMP, QUARANTINE, PreparedPlan
from mpupdate.fakes.scenario import EARLIEST, LATEST, MAX_SECONDS
from mpupdate.fakes.session import RawSession

ASYNC_PROGRESS = int(UpdateOption.ASYNC | UpdateOption.PROGRESS)


def hr(value: int) -> int:
    return to_unsigned(value)


class Harness(RawSession):
    """A RawSession over a FakeMpClient: typed so that the fake's own attributes can be used."""

    backend: FakeMpClient


#: The harness_for fixture: harness_for(scenario="updated", delivery="immediate", **options).
HarnessFor = Callable[..., Harness]


@pytest.fixture
def harness_for(
    fake_mpclient: Callable[..., FakeMpClient],
) -> Iterator[HarnessFor]:
    made: list[Harness] = []

    def make(
        scenario: Union[Scenario, str, Path] = "updated",
        delivery: str = "immediate",
        **options: Any,
    ) -> Harness:
        harness = Harness(fake_mpclient(scenario, delivery=delivery, **options))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.unregister()


def test_manager_open_rejects_reserved_and_null_out_pointer() -> None:
    fake = FakeMpClient()
    assert hr(fake.MpManagerOpen(1, ffi.new("MPHANDLE *"))) == E_INVALIDARG
    assert hr(fake.MpManagerOpen(0, ffi.NULL)) == E_INVALIDARG
    assert fake.open_handles == {}
    assert [c.hresult for c in fake.calls_to("MpManagerOpen")] == [E_INVALIDARG, E_INVALIDARG]


def test_manager_open_fails_as_the_scenario_says() -> None:
    fake = FakeMpClient(Scenario("x", open_hresult=0x800106BA))
    assert hr(fake.MpManagerOpen(0, ffi.new("MPHANDLE *"))) == 0x800106BA
    assert fake.open_handles == {}


def test_update_start_argument_checks(harness_for: HarnessFor) -> None:
    h = harness_for()
    out = ffi.new("MPHANDLE *")
    fake = h.backend
    assert hr(fake.MpUpdateStart(h.manager, ASYNC_PROGRESS, ffi.NULL, out)) == E_INVALIDARG
    assert hr(fake.MpUpdateStart(h.manager, ASYNC_PROGRESS, h.info, ffi.NULL)) == E_INVALIDARG
    bogus = ffi.cast("MPHANDLE", 0x1234)
    assert hr(fake.MpUpdateStart(bogus, ASYNC_PROGRESS, h.info, out)) == E_HANDLE
    assert hr(fake.MpUpdateStart(ffi.NULL, ASYNC_PROGRESS, h.info, out)) == E_INVALIDARG  # [BIN]
    two_sources = ASYNC_PROGRESS | UpdateOption.HTTP | UpdateOption.UNC
    assert hr(fake.MpUpdateStart(h.manager, two_sources, h.info, out)) == E_INVALIDARG
    assert h.events == type(h.events)()  # nothing was delivered
    assert fake.updates == []
    h.close()


def test_update_start_with_an_update_handle_is_e_handle(harness_for: HarnessFor) -> None:
    h = harness_for()
    result, update = h.start()
    assert result == S_OK
    out = ffi.new("MPHANDLE *")
    assert hr(h.backend.MpUpdateStart(update, ASYNC_PROGRESS, h.info, out)) == E_HANDLE
    h.close(update)


def test_null_callback_function_is_a_violation_because_the_dll_crashes(
    harness_for: HarnessFor,
) -> None:
    h = harness_for()
    h.info.pfnCallbackFunction = ffi.NULL
    with pytest.raises(FakeViolation, match="NULL callback function"):
        h.start()
    assert h.backend.violations == [
        "MpUpdateStart was given a NULL callback function (the real DLL crashes)"
    ]
    h.backend.violations.clear()
    h.close()


def test_lenient_fake_records_violation_and_returns_invalidarg(harness_for: HarnessFor) -> None:
    h = harness_for(strict=False)
    h.info.pfnCallbackFunction = ffi.NULL
    assert h.start()[0] == E_INVALIDARG
    assert len(h.backend.violations) == 1
    h.backend.violations.clear()
    h.close()


def test_start_and_complete_are_synthesized_around_the_scenario(harness_for: HarnessFor) -> None:
    h = harness_for("already-current")
    result, update = h.start()
    assert result == S_OK
    assert h.notifies() == [
        Notify.SIGUPDATE_START,
        Notify.SIGUPDATE_SEARCH_START,
        Notify.SIGUPDATE_SEARCH_COMPLETE,
        Notify.SIGUPDATE_REQUEST_PROCESSED,
        Notify.SIGUPDATE_COMPLETE,
    ]
    first, last = h.events[0], h.events[-1]
    assert (first.hresult, first.has_data) == (S_OK, False)
    assert (last.hresult, last.has_data) == (S_FALSE, False)
    h.close(update)


def test_progress_notifications_are_dropped_without_the_progress_option(
    harness_for: HarnessFor,
) -> None:
    h = harness_for("updated")
    result, update = h.start(int(UpdateOption.ASYNC))
    assert result == S_OK
    assert Notify.SIGUPDATE_DOWNLOAD_PROGRESS not in h.notifies()
    assert Notify.SIGUPDATE_INSTALL_PROGRESS not in h.notifies()
    assert len(h.notifies()) == 16 - 6  # 4 download and 2 install progress notifications gone
    h.close(update)


@pytest.mark.parametrize("delivery", ["immediate", "thread", "timed"])
def test_synchronous_start_returns_s_ok_even_when_the_update_fails(
    harness_for: HarnessFor, delivery: str
) -> None:
    h = harness_for("network-failure", delivery=delivery)
    result, update = h.start(int(UpdateOption.PROGRESS))  # no ASYNC: returns when finished
    assert result == S_OK
    assert h.events[-1].notify == Notify.SIGUPDATE_COMPLETE
    assert h.events[-1].hresult == 0x80072EFD
    h.close(update)


def test_start_failure_from_the_scenario_delivers_nothing(harness_for: HarnessFor) -> None:
    h = harness_for("access-denied")
    result, update = h.start()
    assert result == 0x80070005
    assert update == ffi.NULL
    assert list(h.events) == []
    h.close()


def test_synchronous_start_of_a_never_ending_scenario_refuses_to_hang(
    harness_for: HarnessFor,
) -> None:
    h = harness_for("hung", delivery="immediate")
    with pytest.raises(FakeHang, match="never completes"):
        h.start(int(UpdateOption.PROGRESS))
    h.close()


def test_pause_and_resume_are_refused_and_unknown_controls_invalid(harness_for: HarnessFor) -> None:
    h = harness_for("hung", delivery="timed")
    _, update = h.start()
    assert hr(h.backend.MpUpdateControl(h.manager, Control.PAUSE)) == ERROR_INVALID_OPERATION
    assert hr(h.backend.MpUpdateControl(h.manager, Control.RESUME)) == ERROR_INVALID_OPERATION
    assert hr(h.backend.MpUpdateControl(h.manager, 7)) == E_INVALIDARG
    h.close(update)


def test_abort_is_honoured_only_while_an_update_runs(harness_for: HarnessFor) -> None:
    h = harness_for("updated", delivery="immediate")
    _, update = h.start()  # immediate: already finished when MpUpdateStart returns
    assert hr(h.backend.MpUpdateControl(h.manager, Control.ABORT)) == S_FALSE
    assert h.backend.updates[0].aborted is False
    h.close(update)


def test_abort_wants_the_manager_handle_like_the_shipped_dll(harness_for: HarnessFor) -> None:
    h = harness_for("cancelled", delivery="timed")
    _, update = h.start()
    assert hr(h.backend.MpUpdateControl(update, Control.ABORT)) == E_HANDLE
    assert hr(h.backend.MpUpdateControl(h.manager, Control.ABORT)) == S_OK
    clock = h.backend.virtual_clock
    assert clock.next_deadline() == pytest.approx(0.5)  # abort_latency of the scenario
    clock.advance(0.5)
    assert h.notifies() == [Notify.SIGUPDATE_START, Notify.SIGUPDATE_COMPLETE]
    assert h.events[-1].hresult == E_ABORT
    h.close(update)


def test_abort_handle_can_follow_the_docs_instead(harness_for: HarnessFor) -> None:
    h = harness_for("cancelled", delivery="timed", abort_handle="update")
    _, update = h.start()
    assert hr(h.backend.MpUpdateControl(h.manager, Control.ABORT)) == E_HANDLE
    assert hr(h.backend.MpUpdateControl(update, Control.ABORT)) == S_OK
    h.close(update)


def test_timed_delivery_follows_the_virtual_clock(harness_for: HarnessFor) -> None:
    h = harness_for("already-current", delivery="timed")
    _, update = h.start()
    assert h.notifies() == []
    clock = h.backend.virtual_clock
    clock.advance(0.2)
    assert h.notifies() == [Notify.SIGUPDATE_START, Notify.SIGUPDATE_SEARCH_START]
    clock.advance(10)
    assert h.notifies()[-1] == Notify.SIGUPDATE_COMPLETE
    assert clock.monotonic() == 10.2
    h.close(update)


def test_timestamps_are_filetimes_of_the_scenario_times(harness_for: HarnessFor) -> None:
    h = harness_for("already-current")
    _, update = h.start()
    base = h.events[0].filetime
    assert base == 134_116_992_000_000_000  # 2026-01-01T00:00:00Z
    assert [e.filetime - base for e in h.events] == [
        0,
        2_000_000,
        15_000_000,
        16_000_000,
        18_000_000,
    ]
    h.close(update)


def test_closing_a_running_update_aborts_it_and_delivers_complete(harness_for: HarnessFor) -> None:
    h = harness_for("cancelled", delivery="timed")
    _, update = h.start()
    h.backend.virtual_clock.advance(100)
    delivered = len(h.events)
    assert hr(h.backend.MpHandleClose(update)) == S_OK
    assert len(h.events) == delivered + 1
    assert (h.events[-1].notify, h.events[-1].hresult) == (
        Notify.SIGUPDATE_COMPLETE,
        E_ABORT,
    )
    assert h.backend.virtual_clock.next_deadline() is None
    h.close()


def test_closing_a_never_ending_thread_update_wakes_and_joins_its_worker(
    harness_for: HarnessFor,
) -> None:
    h = harness_for("hung", delivery="thread")
    _, update = h.start()
    worker = h.backend.updates[0].worker
    assert worker is not None
    assert hr(h.backend.MpHandleClose(update)) == S_OK
    assert not worker.is_alive()
    assert h.events[-1].hresult == E_ABORT
    h.close()


def test_thread_delivery_calls_back_from_another_thread(harness_for: HarnessFor) -> None:
    seen: list[str] = []
    h = harness_for(
        "already-current",
        delivery="thread",
        before_notify=lambda update, index, item: seen.append(threading.current_thread().name),
    )
    _, update = h.start()
    h.backend.updates[0].worker.join()
    assert len(seen) == 5
    assert set(seen) == {f"FakeMpClient-update-{h.backend.updates[0].handle:X}"}
    h.close(update)


def test_double_close_is_a_violation(harness_for: HarnessFor) -> None:
    h = harness_for()
    _, update = h.start()
    assert hr(h.backend.MpHandleClose(update)) == S_OK
    with pytest.raises(FakeViolation, match="closed twice"):
        h.backend.MpHandleClose(update)
    h.backend.violations.clear()
    h.close()


def test_use_after_close_is_a_violation(harness_for: HarnessFor) -> None:
    h = harness_for(strict=False)
    _, update = h.start()
    h.backend.MpHandleClose(update)
    assert hr(h.backend.MpUpdateControl(update, Control.ABORT)) == E_HANDLE
    assert h.backend.violations == [
        f"MpUpdateControl was given handle 0x{h.backend.updates[0].handle:X} after it was closed "
        "(a use-after-free in the real DLL)"
    ]
    h.backend.violations.clear()
    h.close()


def test_close_of_null_is_s_false_and_unknown_handle_is_a_violation() -> None:
    fake = FakeMpClient(strict=False)
    assert hr(fake.MpHandleClose(ffi.NULL)) == S_FALSE
    assert hr(fake.MpHandleClose(ffi.cast("MPHANDLE", 0x42))) == E_HANDLE
    assert fake.violations == ["MpHandleClose was given 0x42, which it never issued"]
    fake.violations.clear()


def test_close_from_inside_the_callback_is_a_violation(harness_for: HarnessFor) -> None:
    attempts: list[int] = []
    h = harness_for("already-current", strict=False)

    def close_inside(update: FakeUpdate, index: int, item: ScenarioNotification) -> None:
        # before_notify runs where the callback runs; emulate a callback that closes its handle
        h.backend._local.depth = 1
        try:
            attempts.append(hr(h.backend.MpHandleClose(ffi.cast("MPHANDLE", update.handle))))
        finally:
            h.backend._local.depth = 0

    def before_notify(update: FakeUpdate, index: int, item: ScenarioNotification) -> None:
        if index == 1:
            close_inside(update, index, item)

    h.backend.before_notify = before_notify
    _, update = h.start()
    assert attempts == [E_FAIL]
    assert h.backend.violations == [
        f"MpHandleClose(0x{h.backend.updates[0].handle:X}) was called from inside the callback "
        "(the real DLL hits DebugBreak)"
    ]
    h.backend.violations.clear()
    h.close(update)


def test_closing_the_manager_before_its_updates_is_a_violation(harness_for: HarnessFor) -> None:
    h = harness_for(strict=False)
    _, update = h.start()
    h.backend.MpHandleClose(h.manager)
    assert len(h.backend.violations) == 1
    assert "still open" in h.backend.violations[0]
    h.backend.violations.clear()
    h.backend.MpHandleClose(update)
    h.unregister()


def test_notification_data_is_freed_after_the_callback_returns() -> None:
    kept: list[Any] = []

    class Keeper:
        """A binding that wrongly keeps the pointer it was given."""

        def __call__(self, context: int, data: Any) -> int:
            kept.append(data)
            return 0

    fake = FakeMpClient("updated")
    out = ffi.new("MPHANDLE *")
    fake.MpManagerOpen(0, out)
    manager = out[0]
    info = ffi.new("MPCALLBACK_INFO *")
    callback = ffi.callback("MPCALLBACK_FUNCTION", Keeper())
    info.pfnCallbackFunction = callback
    fake.MpUpdateStart(manager, ASYNC_PROGRESS, info, out)
    # Every field now reads the 0xDD poison, as freed memory would.
    assert kept[0].Notify == 0xDDDDDDDD
    assert kept[3].Data.pSigUpdateData != ffi.NULL
    fake.MpHandleClose(out[0])
    fake.MpHandleClose(manager)


class Recorder:
    """A binding that copies what it is given, and notes where it was (to look again later)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, str]] = []  # Notify, TimeStamp, Path
        self.where: list[tuple[int, int, int, int]] = []  # data, sig, path address; path bytes
        self.stale: list[bool] = []  # whether the previous notification read poison already

    def __call__(self, context: int, data: Any) -> int:
        if self.where:
            self.stale.append(poisoned(*self.where[-1]))
        sig = data.Data.pSigUpdateData
        path = sig.Path if sig != ffi.NULL else ffi.NULL
        text = read_utf16(path) or ""
        self.seen.append((int(data.Notify), int(data.TimeStamp), text))
        data_at, sig_at, path_at = (int(ffi.cast("uintptr_t", p)) for p in (data, sig, path))
        self.where.append((data_at, sig_at, path_at, 2 * len(text) + 2 if path_at else 0))
        return 0


def poisoned(data: int, sig: int, path: int, path_size: int) -> bool:
    """Whether a notification's MPCALLBACK_DATA, MPSIGUPDATE_DATA and Path all read 0xDD."""
    parts = [bytes(ffi.buffer(ffi.cast("MPCALLBACK_DATA *", data)))]
    if sig:
        parts.append(bytes(ffi.buffer(ffi.cast("MPSIGUPDATE_DATA *", sig))))
    if path:
        parts.append(bytes(ffi.buffer(ffi.cast("char *", path), path_size)))
    return set(b"".join(parts)) == {0xDD}


def run_update(fake: FakeMpClient, recorder: Recorder, options: int = ASYNC_PROGRESS) -> None:
    """One update on ``fake``, start to close, its notifications going to ``recorder``."""
    callback = ffi.callback("MPCALLBACK_FUNCTION", recorder)
    info = ffi.new("MPCALLBACK_INFO *")
    info.pfnCallbackFunction = callback
    out = ffi.new("MPHANDLE *")
    assert hr(fake.MpManagerOpen(0, out)) == S_OK
    manager = out[0]
    assert hr(fake.MpUpdateStart(manager, options, info, out)) == S_OK
    if fake.delivery == "timed":
        fake.virtual_clock.run_until(lambda: fake.updates[-1].completed)
    elif fake.delivery == "thread":
        fake.updates[-1].worker.join(10)  # to the end: closing it earlier would abort it
    assert hr(fake.MpHandleClose(out[0])) == S_OK  # joins the worker in thread mode
    assert hr(fake.MpHandleClose(manager)) == S_OK


@pytest.mark.parametrize("delivery", ["immediate", "thread", "timed"])
def test_each_notification_is_poisoned_as_soon_as_its_callback_returns(delivery: str) -> None:
    fake = FakeMpClient("updated", delivery=delivery)
    recorder = Recorder()
    run_update(fake, recorder)
    assert len(recorder.seen) == 16
    assert recorder.seen[4][2].endswith("am_delta_patch_1.419.135.0.exe")  # DOWNLOAD_START's
    # Each was poisoned before the next was delivered, data, MPSIGUPDATE_DATA and path alike,
    assert recorder.stale == [True] * 15
    # and all still read the poison: they stay allocated (quarantined), as the docs promise.
    assert all(poisoned(*where) for where in recorder.where)
    fake.assert_clean()


def test_updates_of_one_scenario_share_its_plan_and_carry_their_own_times() -> None:
    fake = FakeMpClient("updated")
    first, second = Recorder(), Recorder()
    run_update(fake, first)
    run_update(fake, second)
    assert fake.updates[0].prepared is fake.updates[1].prepared  # built once
    other = FakeMpClient("updated")
    again = Recorder()
    run_update(other, again)
    assert other.updates[0].prepared is fake.updates[0].prepared  # shared by every fake
    assert again.seen == first.seen  # the same start, the same stamps
    # The second update starts where the first ended (its COMPLETE at 8.4 s): same notifications,
    # same paths, every stamp 8.4 s later.
    assert [(n, p) for n, _, p in second.seen] == [(n, p) for n, _, p in first.seen]
    assert [b[1] - a[1] for a, b in zip(first.seen, second.seen)] == [84_000_000] * 16
    # Without PROGRESS the plan differs: no progress, the stamps of the others unchanged.
    quiet = Recorder()
    run_update(FakeMpClient("updated"), quiet, options=int(UpdateOption.ASYNC))
    assert quiet.seen == [s for s in first.seen if s[0] not in PROGRESS_NOTIFICATIONS]


def test_a_scenario_s_plan_goes_with_the_scenario() -> None:
    scenario = Scenario("short-lived", notifications=(ScenarioNotification(0.5, 0x8005),))
    plan = weakref.ref(PreparedPlan.for_scenario(scenario, True))
    assert PreparedPlan.for_scenario(scenario, True) is plan()
    assert PreparedPlan.for_scenario(scenario, False) is not plan()
    del scenario
    gc.collect()
    assert plan() is None


def test_the_quarantine_keeps_the_latest_notifications_allocated_and_lets_older_go() -> None:
    fake = FakeMpClient("updated")
    recorders = [Recorder() for _ in range(QUARANTINE // 16 + 8)]
    for recorder in recorders:
        run_update(fake, recorder)
    engine: Any = fake._engine
    kept = [block.size for block in engine._quarantine]
    assert sum(kept) >= QUARANTINE > sum(kept[1:])  # the latest QUARANTINE, no more
    latest = [where for recorder in recorders for where in recorder.where][-QUARANTINE:]
    assert all(poisoned(*where) for where in latest)


def test_a_delivery_after_its_update_ended_elsewhere_comes_from_a_copy_of_its_own() -> None:
    # As when another thread ends the update (an abort's COMPLETE) while this one hands START
    # over: the engine has released the update's memory, and delivers from a fresh copy.
    fake = FakeMpClient("updated", delivery="timed")
    recorder = Recorder()
    callback = ffi.callback("MPCALLBACK_FUNCTION", recorder)
    info = ffi.new("MPCALLBACK_INFO *")
    info.pfnCallbackFunction = callback
    out = ffi.new("MPHANDLE *")
    fake.MpManagerOpen(0, out)
    manager = out[0]
    assert hr(fake.MpUpdateStart(manager, ASYNC_PROGRESS, info, out)) == S_OK
    update = fake.updates[0]
    fake._engine.finish(update)
    assert update.engine_state is None
    fake.virtual_clock.run_until(lambda: update.completed)
    assert len(recorder.seen) == 16 and recorder.seen[4][2].endswith(".exe")
    assert recorder.stale == [True] * 15
    assert all(poisoned(*where) for where in recorder.where)
    fake.MpHandleClose(out[0])
    fake.MpHandleClose(manager)
    fake.assert_clean()


def test_a_complete_inside_the_plan_goes_alone_and_ends_the_update() -> None:
    # Loading refuses a COMPLETE among the notifications; a Scenario built in code may hold one.
    items = (
        ScenarioNotification(0.1, 0x8005),
        ScenarioNotification(0.2, int(Notify.SIGUPDATE_COMPLETE), E_FAIL),
        ScenarioNotification(0.3, 0x8006),
    )
    fake = FakeMpClient(Scenario("early-end", notifications=items))
    recorder = Recorder()
    run_update(fake, recorder)
    assert [n for n, _, _ in recorder.seen] == [
        Notify.SIGUPDATE_START,
        0x8005,
        Notify.SIGUPDATE_COMPLETE,
    ]
    assert fake.updates[0].complete_hresult == E_FAIL
    assert fake.updates[0].delivered == [n for n, _, _ in recorder.seen]


def test_error_message_is_utf16_and_must_be_freed_with_mp_free_memory(
    harness_for: HarnessFor,
) -> None:
    h = harness_for()
    text = ffi.new("uint16_t **")
    assert hr(h.backend.MpErrorMessageFormat(h.manager, -2147024891, text)) == S_OK  # 0x80070005
    assert read_utf16(text[0]) == "Access is denied.\r\n"
    assert h.backend.outstanding_allocations == 1
    h.backend.MpFreeMemory(text[0])
    assert h.backend.outstanding_allocations == 0
    with pytest.raises(FakeViolation, match="freed twice"):
        h.backend.MpFreeMemory(text[0])
    h.backend.violations.clear()
    h.backend.MpFreeMemory(ffi.NULL)  # a no-op
    h.close()


def test_error_message_checks_its_arguments(harness_for: HarnessFor) -> None:
    h = harness_for()
    text = ffi.new("uint16_t **")
    assert hr(h.backend.MpErrorMessageFormat(ffi.NULL, 5, text)) == E_INVALIDARG  # [BIN]
    assert hr(h.backend.MpErrorMessageFormat(ffi.cast("MPHANDLE", 0x1234), 5, text)) == E_HANDLE
    assert hr(h.backend.MpErrorMessageFormat(h.manager, 5, ffi.NULL)) == E_INVALIDARG
    assert hr(h.backend.MpErrorMessageFormat(h.manager, 0x12345, text)) == E_FAIL  # not described
    h.close()


def test_scenario_messages_override_the_table(harness_for: HarnessFor) -> None:
    h = harness_for(Scenario("x", messages=((0x80070005, "Zugriff verweigert."),)))
    text = ffi.new("uint16_t **")
    h.backend.MpErrorMessageFormat(h.manager, -2147024891, text)
    assert read_utf16(text[0]) == "Zugriff verweigert.\r\n"
    h.backend.MpFreeMemory(text[0])
    h.close()


def test_versions_change_only_after_a_successful_update(harness_for: HarnessFor) -> None:
    h = harness_for("updated", delivery="timed")
    info = ffi.new("MPVERSION_INFO *")
    assert hr(h.backend.MpManagerVersionQuery(h.manager, info)) == S_OK
    assert info.AVSignature.Version == (1 << 48) | (419 << 32) | (120 << 16)
    _, update = h.start()
    h.backend.virtual_clock.advance(1)
    h.backend.MpManagerVersionQuery(h.manager, info)
    assert info.AVSignature.Version == (1 << 48) | (419 << 32) | (120 << 16)
    h.backend.virtual_clock.advance(60)
    h.backend.MpManagerVersionQuery(h.manager, info)
    assert info.AVSignature.Version == (1 << 48) | (419 << 32) | (135 << 16)
    assert hr(h.backend.MpManagerVersionQuery(h.manager, ffi.NULL)) == E_INVALIDARG
    assert hr(h.backend.MpManagerVersionQuery(update, info)) == E_HANDLE
    h.close(update)


def test_assert_clean_names_what_is_left(harness_for: HarnessFor) -> None:
    h = harness_for()
    _, update = h.start()
    with pytest.raises(AssertionError) as caught:
        h.backend.assert_clean()
    assert "manager handle 0x10000000 left open" in str(caught.value)
    assert "update handle 0x10000010 left open" in str(caught.value)
    h.close(update)
    h.backend.assert_clean()


def test_virtual_clock_refuses_to_wait_forever() -> None:
    from mpupdate.fakes import VirtualClock

    clock = VirtualClock()
    condition = threading.Condition()
    with condition, pytest.raises(VirtualClockStall, match="hang forever"):
        clock.wait(condition, None)


def test_bad_delivery_mode_and_abort_handle_are_refused() -> None:
    with pytest.raises(ValueError, match="delivery must be one of immediate, thread, timed"):
        FakeMpClient(delivery="later")
    with pytest.raises(ValueError, match="abort_handle must be one of manager, update, either"):
        FakeMpClient(abort_handle="both")


def test_two_threads_closing_one_handle_is_one_close_and_one_violation() -> None:
    entered, release = threading.Event(), threading.Event()

    class SlowClose(FakeMpClient):
        """Closing a running update takes a while: long enough for a second close to race it."""

        def _abort(self, update: FakeUpdate, now: bool = False) -> None:
            if now:
                entered.set()
                release.wait(10)
            super()._abort(update, now)

    h = Harness(SlowClose("hung", delivery="timed", strict=False))
    _, update = h.start()
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(hr(h.backend.MpHandleClose(update))))
    first.start()
    assert entered.wait(10)
    assert hr(h.backend.MpHandleClose(update)) == E_HANDLE  # while the first is still closing
    release.set()
    first.join(10)
    assert results == [S_OK]
    handle = h.backend.updates[0].handle
    assert h.backend.violations == [
        f"handle 0x{handle:X} was closed twice (a use-after-free in the real DLL)"
    ]
    assert [c.hresult for c in h.backend.calls_to("MpHandleClose")] == [E_HANDLE, S_OK]
    h.backend.violations.clear()
    h.close()


def test_a_scenario_path_is_accepted_as_a_path_object(tmp_path: Path) -> None:
    path = Path(tmp_path) / "mine.json"
    Scenario("mine", messages=((0x80070005, "x"),)).dump(path)
    assert FakeMpClient(path).scenario.name == "mine"


# -- never crash, never hang (the reliability issue) --------------------------------------------


def test_a_scenario_that_is_not_one_is_a_type_error_naming_what_is_accepted() -> None:
    with pytest.raises(TypeError) as info:
        FakeMpClient(123)  # type: ignore[arg-type]
    assert str(info.value) == (
        "scenario must be a Scenario, the name of a built-in scenario (a str, see "
        "mpupdate.fakes.scenarios.names()) or the path of a scenario file (a str ending in "
        ".json or a pathlib.Path), not int 123"
    )


def test_a_failing_delivery_thread_ends_the_update_and_records_a_violation() -> None:
    def fail(update: FakeUpdate, index: int, item: ScenarioNotification) -> None:
        if index == 2:
            raise RuntimeError("boom")

    fake = FakeMpClient("updated", delivery="thread", strict=False, before_notify=fail)
    # Before: the thread died, and the update waited for a COMPLETE that never came.
    result = mpupdate.update(backend=fake, check=False, timeout=30)
    assert result.outcome is mpupdate.Outcome.FAILED
    assert result.hresult == E_FAIL
    assert fake.updates[0].complete_hresult == E_FAIL
    assert fake.violations == [
        "the delivery thread of update 0x10000010 failed with RuntimeError: boom; the fake "
        "ended the update with COMPLETE(E_FAIL)"
    ]
    assert fake.live_workers == 0
    fake.clear_violations()


@pytest.mark.parametrize("delivery", ["immediate", "timed"])
@pytest.mark.parametrize("timeout", [1e15, 1e300])
def test_a_timeout_past_the_calendar_saturates_the_stamps(delivery: str, timeout: float) -> None:
    fake = FakeMpClient("hung", delivery=delivery)
    result = mpupdate.update(backend=fake, check=False, timeout=timeout)
    assert result.outcome is mpupdate.Outcome.TIMED_OUT
    assert result.events[-1].timestamp == LATEST
    assert fake.virtual_clock.now() == LATEST
    fake.assert_clean()


@pytest.mark.parametrize("delivery", ["immediate", "thread", "timed"])
def test_a_scenario_at_the_ends_of_the_calendar_runs_with_exact_stamps(delivery: str) -> None:
    base = scenarios.get("updated")
    assert base.complete is not None
    for started_at in (EARLIEST, LATEST - timedelta(seconds=base.complete.at)):
        scenario = base.replace(started_at=started_at)
        fake = FakeMpClient(scenario, delivery=delivery)
        result = mpupdate.update(backend=fake, check=False, timeout=60)
        assert result.outcome is mpupdate.Outcome.UPDATED
        stamps = [event.timestamp for event in result.events]
        assert stamps[0] == started_at
        assert EARLIEST <= stamps[-1] <= LATEST
        assert stamps[-1] - started_at == timedelta(seconds=base.complete.at)
        fake.assert_clean()


def test_plan_ticks_and_stamps_never_leave_the_filetime_range() -> None:
    items = [ScenarioNotification(0.0, 0x8002), ScenarioNotification(MAX_SECONDS, 0x8003)]
    plan = PreparedPlan(items)
    assert plan.ticks == (0, 100_000_000_000_000_000)
    for filetime in (-(10**30), -1, 0, MAX_STAMP - 5, MAX_STAMP, 10**30):
        stamped = memoryview(plan.stamped(filetime)).cast("Q")
        for slot in plan.stamp_slots:
            assert 0 <= stamped[slot] <= MAX_STAMP


def test_nested_tracking_blocks_that_saw_the_same_fakes_end_in_any_order() -> None:
    from mpupdate.fakes import tracking

    with tracking() as outer:
        with tracking() as inner:
            first = FakeMpClient("updated")
        assert outer == inner == [first]  # equal lists: the inner block removes its own
        second = FakeMpClient("updated")
    assert outer == [first, second] and inner == [first]
