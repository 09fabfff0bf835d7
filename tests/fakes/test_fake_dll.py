"""FakeMpClient's exports, called directly as the compiled module would be called."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Union

import pytest

from mpupdate._native import ffi, unregister
from mpupdate.constants import (
    E_ABORT,
    E_FAIL,
    E_HANDLE,
    E_INVALIDARG,
    ERROR_INVALID_OPERATION,
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
)
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
    assert h.sink.events == type(h.sink.events)()  # nothing was delivered
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
    first, last = h.sink.events[0], h.sink.events[-1]
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
    assert h.sink.events[-1].notify == Notify.SIGUPDATE_COMPLETE
    assert h.sink.events[-1].hresult == 0x80072EFD
    h.close(update)


def test_start_failure_from_the_scenario_delivers_nothing(harness_for: HarnessFor) -> None:
    h = harness_for("access-denied")
    result, update = h.start()
    assert result == 0x80070005
    assert update == ffi.NULL
    assert list(h.sink.events) == []
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
    assert h.sink.events[-1].hresult == E_ABORT
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
    base = h.sink.events[0].filetime
    assert base == 134_116_992_000_000_000  # 2026-01-01T00:00:00Z
    assert [e.filetime - base for e in h.sink.events] == [
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
    delivered = len(h.sink.events)
    assert hr(h.backend.MpHandleClose(update)) == S_OK
    assert len(h.sink.events) == delivered + 1
    assert (h.sink.events[-1].notify, h.sink.events[-1].hresult) == (
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
    assert h.sink.events[-1].hresult == E_ABORT
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
    unregister(h.token)


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
