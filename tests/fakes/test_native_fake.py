"""The native (C) fake of MpClient.dll: built, loaded through DllBackend, and held to the Python
FakeMpClient, its reference, call for call and event for event."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mpupdate
from mpupdate import Outcome
from mpupdate._native import CALLBACK, Sink, ffi, lib
from mpupdate.backends import EXPORTS
from mpupdate.constants import (
    E_ABORT,
    E_ACCESSDENIED,
    E_FAIL,
    E_HANDLE,
    E_INVALIDARG,
    ERROR_INVALID_OPERATION,
    S_FALSE,
    S_OK,
    Notify,
    UpdateOption,
)
from mpupdate.errors import to_signed, to_unsigned
from mpupdate.events import Event, read_utf16
from mpupdate.fakes import (
    FakeHang,
    FakeMpClient,
    FakeViolation,
    Scenario,
    VirtualClock,
    VirtualClockStall,
    scenarios,
)
from mpupdate.fakes.native import NativeFakeMpClient, native_library
from mpupdate.fakes.native.build import (
    NativeFakeBuildError,
    build_native_fake,
    unavailable_reason,
)
from mpupdate.fakes.session import RawSession as Harness
from mpupdate.fakes.strategies import any_scenarios

_UNAVAILABLE = unavailable_reason()
pytestmark = pytest.mark.skipif(_UNAVAILABLE is not None, reason=f"native fake: {_UNAVAILABLE}")


def need_compiler(directory: Path) -> None:
    """Skip a test that compiles into ``directory`` where only a prebuilt library exists."""
    why = unavailable_reason(directory)
    if why is not None:
        pytest.skip(f"compiles the native fake: {why}")


MODES = ["immediate", "thread", "timed"]
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
ASYNC = int(UpdateOption.ASYNC)
ASYNC_PROGRESS = int(UpdateOption.ASYNC | UpdateOption.PROGRESS)
Fake = Union[FakeMpClient, NativeFakeMpClient]
ScenarioLike = Union[Scenario, str, Path]
#: The native fixture: native(scenario="updated", delivery="immediate", **options).
MakeNative = Callable[..., NativeFakeMpClient]


def hr(value: int) -> int:
    return to_unsigned(value)


@pytest.fixture
def native() -> Iterator[MakeNative]:
    """Make NativeFakeMpClients; each must end clean, and the library is left reusable."""
    made: list[NativeFakeMpClient] = []

    def make(
        scenario: ScenarioLike = "updated", delivery: str = "immediate", **options: Any
    ) -> NativeFakeMpClient:
        fake = NativeFakeMpClient(scenario, delivery=delivery, **options)
        made.append(fake)
        return fake

    yield make
    try:
        for fake in made:  # a replaced fake is checked on the snapshot it kept
            fake.assert_clean()
    finally:
        if NativeFakeMpClient.in_use():
            NativeFakeMpClient.reset_library()


@contextmanager
def fresh_native(scenario: ScenarioLike, **options: Any) -> Iterator[NativeFakeMpClient]:
    """A NativeFakeMpClient for one Hypothesis example: checked clean, never left in use."""
    fake = NativeFakeMpClient(scenario, **options)
    try:
        yield fake
        fake.assert_clean()
    finally:
        if NativeFakeMpClient.in_use():
            NativeFakeMpClient.reset_library()


def test_build_reuses_the_cached_library(tmp_path: Path) -> None:
    need_compiler(tmp_path)
    first = build_native_fake(tmp_path)
    stamp = first.stat().st_mtime_ns
    again = build_native_fake(tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp
    assert first.parent == tmp_path.resolve()
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left


def test_build_honours_the_environment_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_compiler(tmp_path)
    monkeypatch.setenv("MPUPDATE_NATIVE_FAKE_DIR", str(tmp_path))
    assert build_native_fake().parent == tmp_path.resolve()


def test_build_failure_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC", "false --pretend-compiler")
    with pytest.raises(NativeFakeBuildError, match=r"(?s)false --pretend-compiler.*mpfake\.c"):
        build_native_fake(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_library_loads_through_dll_backend_with_every_export() -> None:
    library = native_library()
    assert library.backend.path == str(library.path)
    assert lib.mpupdate_missing_exports() == 0
    assert library.lib.mpfake_abi_version() == 2
    names = [library.string(library.lib.mpfake_export_name(i)) for i in range(len(EXPORTS))]
    assert names == list(EXPORTS)  # the model's numbering is the one list's
    assert library.lib.mpfake_export_name(len(EXPORTS)) == library.ffi.NULL


def test_deliver_refuses_items_whose_offsets_or_path_do_not_fit() -> None:
    from mpupdate.fakes.dll import prepare_notification
    from mpupdate.fakes.scenario import ScenarioNotification, SigUpdateData

    library = native_library()
    ffi_c = library.ffi
    seen: list[int] = []

    def callback(context: int, data: Any) -> int:
        seen.append(int(data.Notify))
        return 0

    keep = ffi.callback("MPCALLBACK_FUNCTION", callback)
    address = int(ffi.cast("uintptr_t", keep))
    item = ScenarioNotification(0.0, 0x8006, 0, SigUpdateData(5, 1, 0, 2, 2, "C:\\x"))
    good = prepare_notification(item, 0)
    unterminated = good.data[:-2] + b"xx"
    cases = [
        (good.data, good.data_offset, good.path_offset, 1),
        (unterminated, good.data_offset, good.path_offset, 0),  # the path would run off the end
        (good.data, good.data_offset, len(good.data), 0),  # the path starts past the end
        (good.data, 3, 0, 0),  # MPSIGUPDATE_DATA misaligned
        (good.data[:8], 0, 0, 0),  # shorter than MPCALLBACK_DATA
        (good.data, 0, good.path_offset, 0),  # a path without its data
    ]
    for data, data_offset, path_offset, delivered in cases:
        array = ffi_c.new("mpfake_notification[1]")
        buffer = ffi_c.from_buffer("uint8_t[]", data)
        array[0].bytes = buffer
        array[0].size = len(data)
        array[0].data_offset = data_offset
        array[0].path_offset = path_offset
        assert library.lib.mpfake_deliver(address, 0, array, 1, ffi_c.NULL) == delivered
    assert seen == [0x8006]


# -- the exports, call for call against the Python fake -----------------------------------------


def script(fake: Fake) -> list[Any]:
    """Every argument check and misuse, in one sequence; returns what each call answered."""
    results: list[Any] = []
    h_sink = Sink()
    token = h_sink.token
    try:
        info = ffi.new("MPCALLBACK_INFO *")
        info.pfnCallbackFunction = CALLBACK
        info.CallbackContext = token
        out = ffi.new("MPHANDLE *")
        results.append(fake.MpManagerOpen(1, out))
        results.append(fake.MpManagerOpen(0, ffi.NULL))
        results.append(fake.MpManagerOpen(0, out))
        manager = out[0]
        up = ffi.new("MPHANDLE *")
        results.append(fake.MpUpdateStart(manager, ASYNC, ffi.NULL, up))
        results.append(fake.MpUpdateStart(manager, ASYNC, info, ffi.NULL))
        two_sources = ASYNC | int(UpdateOption.HTTP | UpdateOption.UNC)
        results.append(fake.MpUpdateStart(manager, two_sources, info, up))
        results.append(fake.MpUpdateStart(ffi.cast("MPHANDLE", 0x42), ASYNC, info, up))
        results.append(fake.MpUpdateStart(manager, ASYNC, ffi.new("MPCALLBACK_INFO *"), up))
        results.append(fake.MpUpdateStart(manager, ASYNC | int(UpdateOption.HTTP), info, up))
        update = up[0]
        results.append(fake.MpUpdateStart(update, ASYNC, info, ffi.new("MPHANDLE *")))
        for handle, control in ((update, 0), (manager, 1), (manager, 2), (manager, 7)):
            results.append(fake.MpUpdateControl(handle, control))
        results.append(fake.MpUpdateControl(manager, 0))
        results.append(fake.MpUpdateControl(manager, 0))
        text = ffi.new("uint16_t **")
        denied = to_signed(E_ACCESSDENIED)
        results.append(fake.MpErrorMessageFormat(update, denied, text))
        results.append(fake.MpErrorMessageFormat(manager, denied, ffi.NULL))
        results.append(fake.MpErrorMessageFormat(manager, 0x12345678, text))
        results.append(fake.MpErrorMessageFormat(manager, denied, text))
        results.append(read_utf16(text[0]))
        results.append(fake.outstanding_allocations)
        fake.MpFreeMemory(text[0])
        fake.MpFreeMemory(text[0])
        fake.MpFreeMemory(ffi.NULL)
        results.append(fake.outstanding_allocations)
        version = ffi.new("MPVERSION_INFO *")
        results.append(fake.MpManagerVersionQuery(update, version))
        results.append(fake.MpManagerVersionQuery(manager, ffi.NULL))
        results.append(fake.MpManagerVersionQuery(manager, version))
        results.append(bytes(ffi.buffer(version)))
        results.append(fake.MpHandleClose(manager))  # while its update is open
        results.append(fake.MpHandleClose(update))
        results.append(fake.MpHandleClose(update))
        results.append(fake.MpHandleClose(ffi.NULL))
        results.append(fake.MpHandleClose(ffi.cast("MPHANDLE", 0x42)))
        results.append(fake.MpManagerVersionQuery(manager, version))
        results.append(fake.MpUpdateControl(manager, 0))
        results.append(h_sink.take())
    finally:
        h_sink.close()
    return results


def normalized_calls(fake: Fake) -> list[tuple[Any, ...]]:
    return [
        (c.function, () if c.function == "MpFreeMemory" else c.args, c.hresult) for c in fake.calls
    ]


def delivered(fake: Fake) -> list[list[int]]:
    return [list(update.delivered) for update in fake.updates]


def normalized_violations(fake: Fake) -> list[str]:
    return [re.sub(r"MpFreeMemory\(0x[0-9A-F]+\)", "MpFreeMemory(p)", v) for v in fake.violations]


@pytest.mark.parametrize("delivery", ["immediate", "timed"])
@pytest.mark.parametrize("name", ["updated", "hung"])
def test_every_export_answers_like_the_python_fake(
    native: MakeNative, name: str, delivery: str
) -> None:
    reference = FakeMpClient(name, delivery=delivery, strict=False)
    fake = native(name, delivery=delivery, strict=False)
    try:
        expected = script(reference)
        assert script(fake) == expected
        assert normalized_calls(fake) == normalized_calls(reference)
        assert normalized_violations(fake) == normalized_violations(reference)
        assert len(fake.violations) == 7
        assert delivered(fake) == delivered(reference)
    finally:  # the violations were provoked on purpose
        reference.violations.clear()
        fake.clear_violations()


def test_argument_checks_give_the_dll_s_hresults(native: MakeNative) -> None:
    fake = native("updated", strict=False)
    out = ffi.new("MPHANDLE *")
    assert hr(fake.MpManagerOpen(1, out)) == E_INVALIDARG
    assert hr(fake.MpManagerOpen(0, ffi.NULL)) == E_INVALIDARG
    h = Harness(fake)
    up = ffi.new("MPHANDLE *")
    assert hr(fake.MpUpdateStart(h.manager, ASYNC, ffi.NULL, up)) == E_INVALIDARG
    assert hr(fake.MpUpdateStart(h.manager, ASYNC | 0x8 | 0x100, h.info, up)) == E_INVALIDARG
    assert hr(fake.MpUpdateStart(ffi.cast("MPHANDLE", 0x1234), ASYNC, h.info, up)) == E_HANDLE
    result, update = h.start()
    assert result == S_OK
    assert hr(fake.MpUpdateStart(update, ASYNC, h.info, up)) == E_HANDLE
    assert hr(fake.MpUpdateControl(update, 0)) == E_HANDLE  # the shipped DLL wants the manager
    assert hr(fake.MpUpdateControl(h.manager, 1)) == ERROR_INVALID_OPERATION
    assert hr(fake.MpUpdateControl(h.manager, 2)) == ERROR_INVALID_OPERATION
    assert hr(fake.MpUpdateControl(h.manager, 3)) == E_INVALIDARG
    assert hr(fake.MpUpdateControl(h.manager, 0)) == S_FALSE  # nothing running
    assert hr(fake.MpHandleClose(ffi.NULL)) == S_FALSE
    assert fake.violations == []
    h.close(update)


def test_strict_mode_raises_after_the_offending_call(native: MakeNative) -> None:
    fake = native("updated")
    h = Harness(fake)
    with pytest.raises(FakeViolation, match="NULL callback function"):
        fake.MpUpdateStart(h.manager, ASYNC, ffi.new("MPCALLBACK_INFO *"), ffi.new("MPHANDLE *"))
    with pytest.raises(FakeViolation, match="0x42, which it never issued"):
        fake.MpHandleClose(ffi.cast("MPHANDLE", 0x42))
    assert fake.calls_to("MpHandleClose")[-1].hresult == E_HANDLE
    assert fake.call_count("MpUpdateStart") == 1
    fake.clear_violations()
    h.close()


def test_start_failure_and_open_failure_come_from_the_scenario(native: MakeNative) -> None:
    fake = native("access-denied")
    h = Harness(fake)
    assert h.start() == (E_ACCESSDENIED, ffi.NULL)
    assert h.notifies() == []
    h.close()
    scenario = scenarios.get("updated").replace(open_hresult=0x800106BA)
    fake = native(scenario)
    assert hr(fake.MpManagerOpen(0, ffi.new("MPHANDLE *"))) == 0x800106BA
    assert fake.open_handles == {}


def test_progress_is_dropped_without_the_progress_option(native: MakeNative) -> None:
    fake = native("updated")
    h = Harness(fake)
    _, update = h.start(ASYNC)
    notifies = h.notifies()
    assert notifies[0] == Notify.SIGUPDATE_START and notifies[-1] == Notify.SIGUPDATE_COMPLETE
    assert Notify.SIGUPDATE_DOWNLOAD_PROGRESS not in notifies
    assert Notify.SIGUPDATE_INSTALL_PROGRESS not in notifies
    h.close(update)


@pytest.mark.parametrize("delivery", MODES)
def test_synchronous_start_returns_s_ok_after_a_failed_update(
    native: MakeNative, delivery: str
) -> None:
    fake = native("network-failure", delivery=delivery)
    h = Harness(fake)
    result, update = h.start(int(UpdateOption.PROGRESS))
    assert result == S_OK
    assert h.notifies()[-1] == Notify.SIGUPDATE_COMPLETE  # delivered before the return
    assert h.events[-1].hresult == 0x80072EFD
    h.close(update)


def test_synchronous_start_of_a_never_ending_scenario_refuses_to_hang(
    native: MakeNative,
) -> None:
    fake = native("hung", delivery="timed")
    h = Harness(fake)
    with pytest.raises(FakeHang, match="never completes"):
        h.start(int(UpdateOption.PROGRESS))
    assert fake.open_handles == {fake.calls[0].args[1]: "manager"}
    h.close()


def test_abort_handle_can_be_the_update_or_either(native: MakeNative) -> None:
    fake = native("hung", abort_handle="update")
    h = Harness(fake)
    _, update = h.start()
    assert hr(fake.MpUpdateControl(h.manager, 0)) == E_HANDLE
    assert hr(fake.MpUpdateControl(update, 0)) == S_OK
    assert hr(fake.MpUpdateControl(update, 0)) == S_FALSE
    assert h.notifies()[-1] == Notify.SIGUPDATE_COMPLETE
    h.close(update)
    fake = native("hung", abort_handle="either")
    h = Harness(fake)
    _, update = h.start()
    assert hr(fake.MpUpdateControl(h.manager, 0)) == S_OK
    h.close(update)


def test_error_message_text_is_utf16_and_freed_with_mp_free_memory(
    native: MakeNative,
) -> None:
    text_in = "Zugriff verweigert \U0001f512 ü"  # outside the BMP: a surrogate pair in UTF-16
    scenario = scenarios.get("updated").replace(messages=((0x80070005, text_in),))
    fake = native(scenario, strict=False)
    h = Harness(fake)
    text = ffi.new("uint16_t **")
    assert hr(fake.MpErrorMessageFormat(h.manager, to_signed(0x80070005), text)) == S_OK
    assert read_utf16(text[0]) == text_in + "\r\n"
    assert fake.outstanding_allocations == 1
    fake.MpFreeMemory(text[0])
    assert fake.outstanding_allocations == 0
    assert hr(fake.MpErrorMessageFormat(h.manager, 0x7654321, text)) == E_FAIL
    assert hr(fake.MpErrorMessageFormat(h.manager, to_signed(0x800106BA), text)) == S_OK
    assert (read_utf16(text[0]) or "").endswith("\r\n")
    fake.MpFreeMemory(text[0])
    assert fake.violations == []
    h.close()


def test_versions_change_only_after_a_successful_update(native: MakeNative) -> None:
    fake = native("updated")
    with mpupdate.Client(backend=fake) as client:
        before = client.version()
        assert before == scenarios.get("updated").versions_before
        client.start_update().wait()
        assert client.version() == scenarios.get("updated").versions_after


# -- the scenario library, end to end, against the Python fake ----------------------------------


def timeout_for(name: str, delivery: str) -> Optional[float]:
    if name != "hung":
        return None
    return 0.2 if delivery == "thread" else 5.0  # thread mode waits in real time


def comparable(result: mpupdate.UpdateResult, delivery: str) -> mpupdate.UpdateResult:
    """The whole result; in thread mode without its wall-clock times (real threads, real time)."""
    if delivery != "thread":  # virtual time: the same instants to the microsecond
        return result
    return result.replace(started_at=EPOCH, finished_at=EPOCH)


@pytest.mark.parametrize("delivery", MODES)
@pytest.mark.parametrize("name", scenarios.names())
def test_every_scenario_gives_the_python_fake_s_result(
    native: MakeNative, name: str, delivery: str
) -> None:
    timeout = timeout_for(name, delivery)
    reference = FakeMpClient(name, delivery=delivery)
    expected = mpupdate.update(backend=reference, check=False, timeout=timeout)
    fake = native(name, delivery=delivery)
    result = mpupdate.update(backend=fake, check=False, timeout=timeout)
    assert comparable(result, delivery) == comparable(expected, delivery)
    assert normalized_calls(fake) == normalized_calls(reference)
    assert delivered(fake) == delivered(reference)
    assert fake.open_handles == {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=any_scenarios(),
    never_ends=st.booleans(),
    abort_latency=st.sampled_from([0.0, 0.25, 3.0]),
    delivery=st.sampled_from(["immediate", "timed", "thread"]),
    progress=st.booleans(),
    timeout=st.sampled_from([None, 0.5, 4.0, 1000.0]),
)
def test_drawn_scenarios_give_the_python_fake_s_events(
    scenario: Scenario,
    never_ends: bool,
    abort_latency: float,
    delivery: str,
    progress: bool,
    timeout: Optional[float],
) -> None:
    if never_ends:
        scenario = scenario.replace(complete=None, abort_latency=abort_latency)
        if timeout is None or delivery == "thread":  # thread mode would wait in real time
            timeout, delivery = 4.0, "timed"
    options = int(UpdateOption.PROGRESS) if progress else 0
    reference = FakeMpClient(scenario, delivery=delivery)
    expected = mpupdate.update(backend=reference, check=False, timeout=timeout, options=options)
    with fresh_native(scenario, delivery=delivery) as fake:
        result = mpupdate.update(backend=fake, check=False, timeout=timeout, options=options)
        assert comparable(result, delivery) == comparable(expected, delivery)
        assert normalized_calls(fake) == normalized_calls(reference)


def cancel_after(backend: Fake, count: int, close: bool) -> tuple[Any, ...]:
    """Consume ``count`` events, then cancel (or close) the update; what came, and the calls."""
    with mpupdate.Client(backend=backend) as client, client.start_update() as op:
        for seen, _ in enumerate(op.events(timeout=50.0), start=1):
            if seen == count and close:
                op.close()
            elif seen == count:
                op.cancel()
        result = op.wait(timeout=50.0)
    return result.events, result.outcome, normalized_calls(backend)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=any_scenarios(),
    never_ends=st.booleans(),
    abort_latency=st.sampled_from([0.0, 0.25, 3.0]),
    delivery=st.sampled_from(["immediate", "timed"]),
    count=st.integers(1, 6),
    abort_handle=st.sampled_from(["manager", "update", "either"]),
    close=st.booleans(),
)
def test_updates_cancelled_mid_way_end_like_the_python_fake_s(
    scenario: Scenario,
    never_ends: bool,
    abort_latency: float,
    delivery: str,
    count: int,
    abort_handle: str,
    close: bool,
) -> None:
    scenario = scenario.replace(abort_latency=abort_latency)
    if never_ends:
        scenario = scenario.replace(complete=None)
    reference = FakeMpClient(scenario, delivery=delivery, abort_handle=abort_handle)
    expected = cancel_after(reference, count, close)
    with fresh_native(scenario, delivery=delivery, abort_handle=abort_handle) as fake:
        assert cancel_after(fake, count, close) == expected


@pytest.mark.parametrize("delivery", MODES)
def test_blocking_starts_match_the_python_fake(native: MakeNative, delivery: str) -> None:
    def run(backend: Fake) -> list[Event]:
        with mpupdate.Client(backend=backend) as client:
            events: list[Event] = []
            for _ in range(2):
                with client.start_update(blocking=True) as op:
                    events += list(op.events())
            return events

    reference = FakeMpClient("updated", delivery=delivery)
    fake = native("updated", delivery=delivery)
    assert run(fake) == run(reference)
    # The second update starts where the first ended: its stamps are 8.4 s later.
    starts = [u.wall_filetime for u in fake.updates]
    assert starts[1] - starts[0] == 84_000_000


# -- threads, time and memory -------------------------------------------------------------------


def test_thread_delivery_calls_back_from_a_thread_python_did_not_create(
    native: MakeNative,
) -> None:
    fake = native("updated", delivery="thread")
    h = Harness(fake)
    python_threads = {t.ident for t in threading.enumerate()}
    _, update = h.start()
    assert h.wait_for(16)
    h.close(update)
    # The compiled callback records the calling thread, as threading numbers threads.
    assert len(set(h.threads)) == 1 and len(h.threads) == 16
    assert h.threads[0] not in python_threads
    assert fake.live_workers == 0


def test_immediate_delivery_calls_back_on_the_calling_thread(native: MakeNative) -> None:
    h = Harness(native("updated"))
    _, update = h.start()
    assert set(h.threads) == {threading.get_ident()}
    h.close(update)


def test_timed_delivery_follows_the_library_s_virtual_clock(native: MakeNative) -> None:
    fake = native("updated", delivery="timed")
    h = Harness(fake)
    _, update = h.start()
    clock = fake.clock
    assert isinstance(clock, VirtualClock)  # in timed mode (for mypy: fake.clock is a Clock)
    assert h.notifies() == [] and clock.next_deadline() == 0.0
    clock.advance_to(1.0)
    assert h.notifies() == [Notify.SIGUPDATE_START, Notify.SIGUPDATE_SEARCH_START]
    assert clock.monotonic() == 1.0
    condition = threading.Condition()
    with condition:
        clock.wait(condition, 100.0)  # jumps to the next notification only
    assert clock.monotonic() == 1.5 and len(h.notifies()) == 3
    with condition:
        clock.wait(condition, 0.05)  # or to the deadline, when that comes first
    assert clock.monotonic() == 1.55 and len(h.notifies()) == 3
    clock.run_until(lambda: len(h.notifies()) == 16)
    with condition, pytest.raises(VirtualClockStall):
        clock.wait(condition, None)
    h.close(update)


def test_a_synchronous_never_ending_thread_update_waits_for_an_abort(
    native: MakeNative,
) -> None:
    fake = native("hung", delivery="thread")
    h = Harness(fake)
    returned: list[tuple[int, Any]] = []
    caller = threading.Thread(target=lambda: returned.append(h.start(int(UpdateOption.PROGRESS))))
    caller.start()
    assert h.wait_for(2)
    assert caller.is_alive() and fake.live_workers == 1
    assert hr(fake.MpUpdateControl(h.manager, 0)) == S_OK
    caller.join(5)
    assert returned and returned[0][0] == S_OK
    assert h.notifies()[-1] == Notify.SIGUPDATE_COMPLETE
    complete = h.events[-1]
    assert complete.hresult == E_ABORT
    assert complete.filetime - h.events[0].filetime == 7_000_000  # 0.2 s + 0.5 s latency
    h.close(returned[0][1])


def test_closing_a_running_thread_update_delivers_complete_before_returning(
    native: MakeNative,
) -> None:
    fake = native("hung", delivery="thread")
    h = Harness(fake)
    _, update = h.start()
    assert h.wait_for(2)
    assert hr(fake.MpHandleClose(update)) == S_OK
    assert h.notifies()[-1] == Notify.SIGUPDATE_COMPLETE  # already there: no waiting
    assert fake.live_workers == 0
    h.close()


def test_an_update_aborted_before_it_began_still_sends_start(native: MakeNative) -> None:
    fake = native("updated", delivery="thread")
    fake.hold(0)
    h = Harness(fake)
    _, update = h.start()
    assert fake.wait_held(1)
    assert hr(fake.MpUpdateControl(h.manager, 0)) == S_OK
    assert h.wait_for(2)
    assert h.notifies() == [Notify.SIGUPDATE_START, Notify.SIGUPDATE_COMPLETE]
    h.close(update)


def test_close_from_inside_the_callback_is_refused(native: MakeNative) -> None:
    fake = native("already-current", strict=False)
    answers: list[int] = []

    def closing(context: int, data: Any) -> int:  # a callback that misbehaves, as C could
        if not answers:
            answers.append(hr(fake.MpHandleClose(ffi.cast("MPHANDLE", 0x10000010))))
        return 0

    callback = ffi.callback("MPCALLBACK_FUNCTION", closing)
    h = Harness(fake)
    h.info.pfnCallbackFunction = callback
    _, update = h.start()
    assert answers == [E_FAIL]
    assert fake.violations == [
        "MpHandleClose(0x10000010) was called from inside the callback "
        "(the real DLL hits DebugBreak)"
    ]
    fake.clear_violations()
    h.close(update)


@pytest.mark.parametrize("delivery", ["immediate", "thread"])
def test_notification_data_is_poisoned_right_after_the_callback(
    native: MakeNative, delivery: str
) -> None:
    fake = native("updated", delivery=delivery)
    fake.quarantine()  # keep the freed blocks mapped so reading them is safe
    seen: list[tuple[int, int, int, str]] = []
    addresses: list[tuple[int, ...]] = []
    finished = threading.Event()

    def keep(context: int, data: Any) -> int:
        sig = data.Data.pSigUpdateData
        path = sig.Path if sig != ffi.NULL else ffi.NULL
        addresses.append(tuple(int(ffi.cast("uintptr_t", p)) for p in (data, sig, path)))
        seen.append((data.Notify, data.hResult, data.Type, read_utf16(path) or ""))
        if data.Notify == Notify.SIGUPDATE_COMPLETE:
            finished.set()
        return 0

    callback = ffi.callback("MPCALLBACK_FUNCTION", keep)
    info = ffi.new("MPCALLBACK_INFO *")
    info.pfnCallbackFunction = callback
    out = ffi.new("MPHANDLE *")
    assert hr(fake.MpManagerOpen(0, out)) == S_OK
    manager = out[0]
    assert hr(fake.MpUpdateStart(manager, ASYNC_PROGRESS, info, out)) == S_OK
    update = out[0]
    assert finished.wait(5)
    assert hr(fake.MpHandleClose(update)) == S_OK  # joins the worker in thread mode
    assert hr(fake.MpHandleClose(manager)) == S_OK
    assert len(seen) == 16 and seen[0] == (Notify.SIGUPDATE_START, 0, 6, "")
    assert seen[4][3].endswith("am_delta_patch_1.419.135.0.exe")  # DOWNLOAD_START's path
    for data_address, sig_address, path_address in addresses:
        data = ffi.cast("MPCALLBACK_DATA *", data_address)
        assert data.Notify == 0xDDDDDDDD and data.TimeStamp == 0xDDDDDDDDDDDDDDDD
        if sig_address:
            poisoned = bytes(ffi.buffer(ffi.cast("MPSIGUPDATE_DATA *", sig_address)))
            assert set(poisoned) == {0xDD}
        if path_address:
            assert ffi.cast("uint16_t *", path_address)[0] == 0xDDDD


# -- one configuration at a time ----------------------------------------------------------------


def test_a_new_configuration_is_refused_while_handles_are_open(
    native: MakeNative,
) -> None:
    first = native("updated")
    out = ffi.new("MPHANDLE *")
    first.MpManagerOpen(0, out)
    with pytest.raises(RuntimeError, match=r"0x10000000 \(manager\) are open"):
        native("already-current")
    assert first.MpHandleClose(out[0]) == S_OK
    second = native("already-current")
    assert not first.active and second.active
    assert [c.function for c in first.calls] == ["MpManagerOpen", "MpHandleClose"]
    with pytest.raises(RuntimeError, match="replaced by a newer"):
        first.MpManagerOpen(0, out)
    assert second.calls == []


# -- stress ---------------------------------------------------------------------------------------


def test_two_hundred_async_updates_on_library_threads_lose_nothing(
    native: MakeNative,
) -> None:
    fake = native("updated", delivery="thread", abort_handle="update")
    fake.hold(5)  # every worker stops before its first download progress
    plan = [
        Notify.SIGUPDATE_START,
        Notify.SIGUPDATE_SEARCH_START,
        Notify.SIGUPDATE_SEARCH_COMPLETE,
        Notify.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE,
        Notify.SIGUPDATE_DOWNLOAD_START,
    ]
    with mpupdate.Client(backend=fake) as client:
        operations = [client.start_update() for _ in range(200)]
        handles = [int(ffi.cast("uintptr_t", op.handle)) for op in operations]
        assert fake.wait_held(200, timeout=10)
        for op in operations[::3]:
            op.cancel()  # the held worker wakes and ends with COMPLETE(E_ABORT)
        fake.release_holds()
        results = [op.wait(timeout=10) for op in operations]
        for op in operations:
            op.close()
    delivered = {u.handle: u.delivered for u in fake.updates}
    for index, (handle, result) in enumerate(zip(handles, results)):
        notifies = [event.notify for event in result.events]
        assert notifies == list(delivered[handle])  # nothing lost, nothing added
        if index % 3 == 0:
            assert result.outcome is Outcome.CANCELLED
            assert notifies == [*plan, Notify.SIGUPDATE_COMPLETE]
        else:
            assert result.outcome is Outcome.UPDATED and len(notifies) == 16
    assert fake.open_handles == {} and fake.live_workers == 0
    assert not any(update.running for update in fake.updates)


def test_never_ending_updates_cancelled_from_python_all_end(native: MakeNative) -> None:
    fake = native("hung", delivery="thread", abort_handle="either")
    with mpupdate.Client(backend=fake) as client:
        operations = [client.start_update() for _ in range(50)]
        for op in operations[::2]:
            op.cancel()
        results = [op.wait(timeout=5) for op in operations[::2]]
        for op in operations[1::2]:
            op.close()  # closing cancels the update and waits for it
    assert {r.outcome for r in results} == {Outcome.CANCELLED}
    assert all(r.events[-1].hresult == E_ABORT for r in results)
    assert all(u.delivered[-1] == Notify.SIGUPDATE_COMPLETE for u in fake.updates)
    assert fake.open_handles == {} and fake.live_workers == 0


# -- never crash, never hang (the reliability issue) --------------------------------------------


def test_a_failing_native_delivery_thread_ends_the_update(native: MakeNative) -> None:
    def fail(update: Any, index: int, item: Any) -> None:
        if index == 2:
            raise RuntimeError("boom")

    fake = native("updated", delivery="thread", strict=False)
    fake.before_notify = fail
    # Before: the exception ended the library's thread and the update never completed.
    result = mpupdate.update(backend=fake, check=False, timeout=30)
    assert result.outcome is Outcome.FAILED
    assert result.hresult == E_FAIL
    assert fake.violations == [
        "the delivery thread of update 0x10000010 failed with RuntimeError: boom; the fake "
        "ended the update with COMPLETE(E_FAIL)"
    ]
    fake.clear_violations()


@pytest.mark.parametrize("delivery", MODES)
def test_native_stamps_at_the_ends_of_the_calendar(native: MakeNative, delivery: str) -> None:
    base = scenarios.get("updated")
    assert base.complete is not None
    latest = datetime.max.replace(tzinfo=timezone.utc) - timedelta(seconds=base.complete.at)
    for started_at in (datetime(1601, 1, 1, tzinfo=timezone.utc), latest):
        fake = native(base.replace(started_at=started_at), delivery=delivery)
        result = mpupdate.update(backend=fake, check=False, timeout=60)
        assert result.outcome is Outcome.UPDATED
        assert result.events[0].timestamp == started_at
        assert result.events[-1].timestamp - started_at == timedelta(seconds=base.complete.at)


@pytest.mark.parametrize("delivery", ["immediate", "timed"])
def test_native_timeout_past_the_calendar_saturates(native: MakeNative, delivery: str) -> None:
    fake = native("hung", delivery=delivery)
    result = mpupdate.update(backend=fake, check=False, timeout=1e300)
    assert result.outcome is Outcome.TIMED_OUT
    assert result.events[-1].timestamp == datetime.max.replace(tzinfo=timezone.utc)
