"""Client and UpdateOperation over the Python fake: handles, waiting, cancelling, timeouts."""

from __future__ import annotations

import _thread
import gc
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import pytest

import mpupdate
from mpupdate import _native
from mpupdate.backends import EXPORTS, ClockedBackend, DllBackend, backend_clock
from mpupdate.clock import SYSTEM_CLOCK
from mpupdate.constants import (
    E_ABORT,
    E_ACCESSDENIED,
    E_HANDLE,
    E_INVALIDARG,
    E_TIMEOUT,
    S_OK,
    Notify,
    Source,
    UpdateOption,
)
from mpupdate.errors import Step, to_signed
from mpupdate.fakes import FakeMpClient, FakeUpdate, Scenario, ScenarioComplete
from mpupdate.handles import HandleKind
from mpupdate.machine import Outcome, Phase

UPDATED_PERCENTS = [0, 2, 10, 10, 10, 20, 31, 41, 52, 52, 52, 73, 95, 95, 95, 100]


def closes(fake: FakeMpClient) -> list[int]:
    return [call.args[0] for call in fake.calls_to("MpHandleClose")]


def test_client_opens_one_manager_handle_and_closes_it_once() -> None:
    fake = FakeMpClient()
    with mpupdate.Client(fake) as client:
        assert fake.open_handles == {0x1000_0000: "manager"}
        assert not client.closed
    # Forget that mypy narrowed client.closed to False above (python/mypy#11969): leaving the
    # block closed the client, and without this mypy takes the rest of the test for unreachable.
    client = client
    assert client.closed
    client.close()  # a second close does nothing
    assert closes(fake) == [0x1000_0000]
    with pytest.raises(ValueError, match="this Client is closed"):
        client.version()


def test_version_reports_the_component_versions() -> None:
    with mpupdate.Client(FakeMpClient("updated")) as client:
        versions = client.version()
    assert versions.av_signature.version == "1.419.120.0"
    assert versions.engine.version == "1.1.24090.11"
    assert versions.product.updated_at == datetime(2025, 12, 10, 3, tzinfo=timezone.utc)
    assert versions.av_signature.updated_at == datetime(2025, 12, 30, 9, tzinfo=timezone.utc)
    with mpupdate.Client(FakeMpClient(Scenario("undated"))) as client:
        assert client.version().product.updated_at is None  # FILETIME 0: never updated


def test_error_message_comes_from_the_dll_and_is_freed() -> None:
    fake = FakeMpClient(Scenario("x", messages=((0x80072EFD, "Keine Verbindung."),)))
    with mpupdate.Client(fake) as client:
        assert client.error_message(0x80072EFD) == "Keine Verbindung."
        assert client.error_message(0x80070005) == "Access is denied."
        # The fake cannot describe this one (E_FAIL): the offline table answers.
        assert client.error_message(0x80991234) == "An error this package has no description for."
    assert fake.outstanding_allocations == 0
    assert len(fake.calls_to("MpFreeMemory")) == 2


def test_manager_open_failure_raises_the_cause_class() -> None:
    with pytest.raises(mpupdate.ServiceUnavailableError) as caught:
        mpupdate.Client(FakeMpClient(Scenario("x", open_hresult=0x800106BA)))
    assert caught.value.function == "MpManagerOpen"
    assert caught.value.hresult == 0x800106BA


def test_start_failure_raises_and_leaves_nothing_open() -> None:
    fake = FakeMpClient("access-denied")
    with mpupdate.Client(fake) as client:
        with pytest.raises(mpupdate.AccessDeniedError) as caught:
            client.start_update()
        assert _native.registry_size() == 0
    error = caught.value
    assert (error.function, error.hresult, error.message) == (
        "MpUpdateStart",
        E_ACCESSDENIED,
        "Access is denied.",
    )
    assert error.hint is not None and "elevated" in error.hint


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, UpdateOption.ASYNC | UpdateOption.PROGRESS),
        ({"source": Source.MMPC}, UpdateOption.ASYNC | UpdateOption.PROGRESS | UpdateOption.HTTP),
        ({"source": Source.WSUS, "options": 0}, UpdateOption.ASYNC | UpdateOption.MANAGED),
        ({"options": 0x400, "blocking": True}, 0x400),  # raw, unnamed bits pass through
    ],
)
def test_start_update_passes_the_options_it_documents(
    kwargs: dict[str, Any], expected: int
) -> None:
    fake = FakeMpClient("already-current")
    with mpupdate.Client(fake) as client, client.start_update(**kwargs) as operation:
        result = operation.wait()
    assert fake.updates[0].options == int(expected)
    assert result.options == int(expected)


def test_source_must_be_a_source() -> None:
    with mpupdate.Client(FakeMpClient()) as client, pytest.raises(TypeError, match="Source"):
        client.start_update(source="MMPC")  # type: ignore[arg-type]


@pytest.mark.parametrize("delivery", ["immediate", "thread", "timed"])
def test_events_run_to_complete_and_close_the_update_handle(delivery: str) -> None:
    fake = FakeMpClient("updated", delivery=delivery)
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        events = list(operation.events())
        assert events[0].notify is Notify.SIGUPDATE_START
        assert events[-1].notify is Notify.SIGUPDATE_COMPLETE
        assert len(events) == 16
        assert fake.open_handles == {0x1000_0000: "manager"}
        result = operation.wait()
    assert result.events == tuple(events)
    assert result.outcome is Outcome.UPDATED
    assert operation.percent == 100
    assert operation.phase is Phase.DONE
    assert closes(fake).count(0x1000_0010) == 1


def test_result_is_ready_when_the_complete_event_is_yielded() -> None:
    with mpupdate.Client(FakeMpClient("updated", delivery="timed")) as client:
        operation = client.start_update()
        for event in operation.events():
            if event.notify is Notify.SIGUPDATE_COMPLETE:
                assert operation.result is not None
                assert operation.result.outcome is Outcome.UPDATED
            else:
                assert operation.result is None
        operation.close()


def test_leaving_the_event_loop_early_does_not_cancel() -> None:
    fake = FakeMpClient("updated", delivery="timed")
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        for event in operation.events():
            if event.notify is Notify.SIGUPDATE_DOWNLOAD_START:
                break
        assert operation.result is None
        result = operation.wait()
    assert result.outcome is Outcome.UPDATED
    assert fake.calls_to("MpUpdateControl") == []


def test_progress_function_sees_monotone_overall_progress() -> None:
    seen: list[mpupdate.Progress] = []
    fake = FakeMpClient("updated", delivery="timed")
    with mpupdate.Client(fake) as client, client.start_update(progress=seen.append) as operation:
        operation.wait()
    assert [p.percent for p in seen] == UPDATED_PERCENTS
    assert seen[5].phase is Phase.DOWNLOADING
    assert (seen[5].package, seen[5].packages) == (1, 1)
    assert seen[-1].event.notify is Notify.SIGUPDATE_COMPLETE


def test_three_packages_progress_is_monotone_and_ends_at_100() -> None:
    seen: list[int] = []
    result = mpupdate.update(
        backend=FakeMpClient("updated-three-packages", delivery="timed"),
        progress=lambda p: seen.append(p.percent),
    )
    assert result.outcome is Outcome.UPDATED
    assert seen == sorted(seen)
    assert seen[-1] == 100
    assert seen[-2] == 95
    assert len(set(seen)) > 10


def test_cancel_aborts_through_the_manager_handle_and_remembers_it() -> None:
    fake = FakeMpClient("cancelled", delivery="timed")
    with mpupdate.Client(fake) as client:
        with client.start_update() as operation:
            for event in operation.events():
                if event.notify is Notify.SIGUPDATE_DOWNLOAD_PROGRESS:
                    operation.cancel()
            result = operation.wait()
        assert operation.abort_handle == "manager"
        assert client.abort_handle == "manager"
        controls = [(c.args[0], c.hresult) for c in fake.calls_to("MpUpdateControl")]
        assert controls == [(0x1000_0010, E_HANDLE), (0x1000_0000, S_OK)]
        with client.start_update() as second:
            second.events().__next__()
            second.cancel()
            second.wait()
        # The handle that worked is tried first next time: one call, not two.
        assert [c.args[0] for c in fake.calls_to("MpUpdateControl")][2:] == [0x1000_0000]
    assert result.outcome is Outcome.CANCELLED
    assert result.hresult == E_ABORT
    assert result.events[-1].notify is Notify.SIGUPDATE_COMPLETE
    assert result.events[-1].hresult == E_ABORT
    # one progress notification arrived, then the abort took 0.5 s of virtual time
    assert [e.notify for e in result.events].count(Notify.SIGUPDATE_DOWNLOAD_PROGRESS) == 1
    assert result.duration.total_seconds() == pytest.approx(21.7 + 0.5)


def test_cancel_uses_the_update_handle_where_the_dll_follows_the_docs() -> None:
    fake = FakeMpClient("cancelled", delivery="timed", abort_handle="update")
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        next(operation.events())
        operation.cancel()
        assert operation.wait().outcome is Outcome.CANCELLED
        assert operation.abort_handle == "update"
    assert len(fake.calls_to("MpUpdateControl")) == 1


class NewerDll(FakeMpClient):
    """Answers E_INVALIDARG, not E_HANDLE, to MpUpdateControl with a handle of the wrong kind,
    as newer DLLs do (MPCLIENT.md section 5). ``refuse_every_handle`` makes every kind wrong."""

    refuse_every_handle = False

    def MpUpdateControl(self, hMpHandle: Any, control: int) -> int:
        value = self._value(hMpHandle)
        wanted = ("manager", "update") if self.abort_handle == "either" else (self.abort_handle,)
        if self.refuse_every_handle or self.open_handles.get(value) not in wanted:
            self._log("MpUpdateControl", (value, int(control)), E_INVALIDARG)
            return to_signed(E_INVALIDARG)
        return super().MpUpdateControl(hMpHandle, control)


def controls(fake: FakeMpClient) -> list[tuple[int, Any]]:
    return [(c.args[0], c.hresult) for c in fake.calls_to("MpUpdateControl")]


def test_cancel_falls_back_to_the_manager_handle_on_e_invalidarg_and_remembers_it() -> None:
    fake = NewerDll("cancelled", delivery="timed")  # wants the manager handle
    with mpupdate.Client(fake) as client:
        with client.start_update() as operation:
            next(operation.events())
            operation.cancel()
            result = operation.wait()
        assert operation.abort_handle == "manager"
        assert client.abort_handle == "manager"
        assert controls(fake) == [(0x1000_0010, E_INVALIDARG), (0x1000_0000, S_OK)]
        with client.start_update() as second:
            next(second.events())
            second.cancel()
            assert second.wait().outcome is Outcome.CANCELLED
        assert controls(fake)[2:] == [(0x1000_0000, S_OK)]  # the manager first: one call
        assert second.abort_handle == "manager"
    assert result.outcome is Outcome.CANCELLED
    assert result.events[-1].hresult == E_ABORT


def test_cancel_falls_back_to_the_update_handle_on_e_invalidarg_and_remembers_it() -> None:
    fake = NewerDll("cancelled", delivery="timed", abort_handle="update")
    with mpupdate.Client(fake) as client:
        client.abort_handle = "manager"  # as if the manager handle had worked last time
        with client.start_update() as operation:
            next(operation.events())
            operation.cancel()
            result = operation.wait()
        assert operation.abort_handle == "update"
        assert client.abort_handle == "update"
        assert controls(fake) == [(0x1000_0000, E_INVALIDARG), (0x1000_0010, S_OK)]
        with client.start_update() as second:
            next(second.events())
            second.cancel()
            assert second.wait().outcome is Outcome.CANCELLED
        assert controls(fake)[2:] == [(0x1000_0020, S_OK)]  # the update handle first: one call
        assert second.abort_handle == "update"
    assert result.outcome is Outcome.CANCELLED
    assert result.events[-1].hresult == E_ABORT


def test_cancel_refused_as_the_wrong_kind_by_both_handles_raises_invalid_argument() -> None:
    fake = NewerDll("cancelled", delivery="timed", abort_handle="update")
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        next(operation.events())
        fake.refuse_every_handle = True
        with pytest.raises(mpupdate.InvalidArgumentError) as caught:
            operation.cancel()
        assert caught.value.function == "MpUpdateControl"
        assert controls(fake) == [(0x1000_0010, E_INVALIDARG), (0x1000_0000, E_INVALIDARG)]
        assert operation.abort_handle is None and client.abort_handle is None
        fake.refuse_every_handle = False
        operation.close()
    assert operation.result is not None and operation.result.outcome is Outcome.CANCELLED


class AbortDenied(FakeMpClient):
    """MpUpdateControl needs administrator rights: refuse it."""

    def MpUpdateControl(self, hMpHandle: Any, control: int) -> int:
        self._log("MpUpdateControl", (self._value(hMpHandle), control), E_ACCESSDENIED)
        return to_signed(E_ACCESSDENIED)


def test_cancel_refused_raises_and_close_still_stops_the_update() -> None:
    fake = AbortDenied("cancelled", delivery="timed")
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        next(operation.events())
        with pytest.raises(mpupdate.AccessDeniedError) as caught:
            operation.cancel()
        assert caught.value.function == "MpUpdateControl"
        operation.close()
    result = operation.result
    assert result is not None and result.outcome is Outcome.CANCELLED
    assert [str(a) for a in result.anomalies] == [
        "MpUpdateControl(ABORT) failed: 0x80070005 E_ACCESSDENIED"
    ]


def test_cancel_after_the_end_does_nothing() -> None:
    fake = FakeMpClient("already-current")
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        operation.wait()
        operation.cancel()
    assert fake.calls_to("MpUpdateControl") == []


def test_timeout_on_the_virtual_clock_aborts_closes_and_reports_timed_out() -> None:
    fake = FakeMpClient("hung", delivery="timed")
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        result = operation.wait(timeout=30)
        assert fake.virtual_clock.monotonic() == 30
    assert result.outcome is Outcome.TIMED_OUT
    assert result.hresult == E_TIMEOUT
    assert result.message == "The update did not finish within 30 s and was aborted."
    assert [e.notify for e in result.events] == [
        Notify.SIGUPDATE_START,
        Notify.SIGUPDATE_SEARCH_START,
        Notify.SIGUPDATE_COMPLETE,
    ]
    assert result.events[-1].hresult == E_ABORT
    assert closes(fake) == [0x1000_0010, 0x1000_0000]
    assert not result.ok


def test_events_iteration_ends_on_timeout_with_the_result_set() -> None:
    fake = FakeMpClient("cancelled", delivery="timed")
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        events = list(operation.events(timeout=60))
        assert operation.result is not None
        assert operation.result.outcome is Outcome.TIMED_OUT
    progress = [e for e in events if e.notify is Notify.SIGUPDATE_DOWNLOAD_PROGRESS]
    assert [e.percent for e in progress] == [1, 2]  # at 21.7 s and 41.7 s


def test_an_update_finished_before_the_timeout_took_effect_is_reported_as_finished() -> None:
    # Immediate delivery: COMPLETE is already queued when the wait starts with timeout 0.
    with mpupdate.Client(FakeMpClient("updated")) as client, client.start_update() as operation:
        result = operation.wait(timeout=0)
    assert result.outcome is Outcome.UPDATED


def test_ctrl_c_in_the_progress_function_cleans_up_then_reraises() -> None:
    fake = FakeMpClient("cancelled", delivery="timed")

    def interrupt(progress: mpupdate.Progress) -> None:
        if progress.event.notify is Notify.SIGUPDATE_DOWNLOAD_START:
            raise KeyboardInterrupt

    with mpupdate.Client(fake) as client:
        operation = client.start_update(progress=interrupt)
        with pytest.raises(KeyboardInterrupt):
            operation.wait()
        assert fake.open_handles == {0x1000_0000: "manager"}
    assert operation.result is not None
    assert operation.result.outcome is Outcome.CANCELLED
    assert operation.result.events[-1].hresult == E_ABORT
    assert closes(fake).count(0x1000_0010) == 1


def test_raising_progress_function_cancels_and_its_exception_comes_out() -> None:
    fake = FakeMpClient("cancelled", delivery="timed")

    class Boom(Exception):
        pass

    def explode(progress: mpupdate.Progress) -> None:
        if progress.percent >= 10:
            raise Boom("stop here")

    with pytest.raises(Boom, match="stop here") as caught:
        mpupdate.update(backend=fake, progress=explode)
    assert caught.traceback[-1].name == "explode"
    assert fake.calls_to("MpUpdateControl")[-1].hresult == S_OK
    assert fake.updates[0].aborted


def test_ctrl_c_while_waiting_in_c_aborts_closes_and_is_reraised() -> None:
    # The consumer waits in C without the GIL, in slices: SIGINT must still get through.
    fake = FakeMpClient("hung", delivery="thread")

    def interrupt(progress: mpupdate.Progress) -> None:
        if progress.event.notify is Notify.SIGUPDATE_START:  # the wait for more comes next
            threading.Thread(target=_thread.interrupt_main).start()  # SIGINT, as Ctrl-C

    with mpupdate.Client(fake) as client:
        operation = client.start_update(progress=interrupt)
        with pytest.raises(KeyboardInterrupt):
            operation.wait()
        assert operation.result is not None
        assert operation.result.outcome is Outcome.CANCELLED
        assert operation.handle is None
        assert fake.updates[0].aborted
    assert closes(fake) == [0x1000_0010, 0x1000_0000]
    assert _native.registry_size() == 0


def test_strict_mode_stops_at_a_protocol_violation() -> None:
    fake = FakeMpClient("unknown-notification", delivery="timed")
    with mpupdate.Client(fake) as client:
        operation = client.start_update(strict=True)
        with pytest.raises(mpupdate.ProtocolError) as caught:
            operation.wait()
        operation.close()
    assert caught.value.position == 10
    assert caught.value.event.notify == 0x800E
    assert str(caught.value) == (
        "event 10: unknown notification UNKNOWN_0x800E (expected a known notification)"
    )
    assert operation.result is not None
    assert operation.result.outcome is Outcome.CANCELLED


def test_lenient_mode_keeps_the_unknown_notification_and_an_anomaly() -> None:
    result = mpupdate.update(backend=FakeMpClient("unknown-notification"))
    assert result.outcome is Outcome.UPDATED
    assert result.events[10].notify == 0x800E
    assert result.events[10].name == "UNKNOWN_0x800E"
    assert [str(a) for a in result.anomalies] == [
        "event 10: unknown notification UNKNOWN_0x800E (expected a known notification)"
    ]


def test_blocking_start_returns_after_the_update_finished() -> None:
    fake = FakeMpClient("network-failure", delivery="thread")
    with mpupdate.Client(fake) as client, client.start_update(blocking=True) as operation:
        assert fake.updates[0].completed  # MpUpdateStart returned only once it was over
        result = operation.wait()
    assert result.outcome is Outcome.FAILED
    assert result.hresult == 0x80072EFD
    assert fake.updates[0].options == int(UpdateOption.PROGRESS)


def test_closing_the_client_closes_a_running_update_first() -> None:
    fake = FakeMpClient("cancelled", delivery="timed")
    client = mpupdate.Client(fake)
    operation = client.start_update()
    client.close()
    assert closes(fake) == [0x1000_0010, 0x1000_0000]
    assert operation.result is not None
    assert operation.result.outcome is Outcome.CANCELLED
    assert fake.violations == []


def test_an_abandoned_operation_closes_its_handle_when_collected() -> None:
    fake = FakeMpClient("updated")
    with mpupdate.Client(fake) as client:
        client.start_update()  # result dropped on the floor
        gc.collect()
        assert fake.open_handles == {0x1000_0000: "manager"}
        assert _native.registry_size() == 0


def test_two_threads_cannot_consume_one_update() -> None:
    fake = FakeMpClient("cancelled", delivery="timed")
    errors: list[BaseException] = []
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        iterator = operation.events()
        next(iterator)

        def second_consumer() -> None:
            try:
                next(operation.events())
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=second_consumer)
        worker.start()
        worker.join()
        iterator.close()
    assert len(errors) == 1
    assert str(errors[0]) == "another thread is already consuming this update's events"


class NullData(FakeMpClient):
    """A DLL that sends one notification with a NULL MPCALLBACK_DATA pointer first."""

    def MpUpdateStart(self, hMpHandle: Any, options: int, info: Any, out: Any) -> int:
        if info != _native.ffi.NULL:
            info.pfnCallbackFunction(info.CallbackContext, _native.ffi.NULL)
        return super().MpUpdateStart(hMpHandle, options, info, out)


def test_a_null_notification_becomes_an_anomaly_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="mpupdate"):
        result = mpupdate.update(backend=NullData("already-current"))
    assert result.outcome is Outcome.ALREADY_CURRENT
    assert [str(a) for a in result.anomalies] == [
        "1 notification(s) arrived with a NULL MPCALLBACK_DATA pointer"
    ]
    # counted in C, logged once, on the caller's thread (never on the DLL's)
    assert [(r.message, r.threadName) for r in caplog.records] == [
        (
            "mpupdate: 1 notification(s) arrived with a NULL MPCALLBACK_DATA pointer",
            threading.current_thread().name,
        )
    ]


def test_a_notification_for_an_unknown_context_is_counted_and_ignored() -> None:
    before = _native.stray_notifications()
    data = _native.ffi.new("MPCALLBACK_DATA *")
    data.Notify = int(Notify.SIGUPDATE_START)
    assert _native.lib.mpupdate_callback(987654321, data) == 0
    assert _native.stray_notifications() == before + 1


class SilentOnClose(FakeMpClient):
    """A DLL that, when an update is aborted or closed, just stops: no final COMPLETE."""

    def _emit_abort_complete(self, update: FakeUpdate, at: float) -> None:
        return None


@pytest.mark.parametrize("fake_class", [FakeMpClient, SilentOnClose])
def test_close_from_another_thread_ends_a_waiting_consumer(fake_class: type) -> None:
    fake = fake_class("hung", delivery="thread")
    results: list[mpupdate.UpdateResult] = []
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        waiting = threading.Event()

        def consume() -> None:
            for event in operation.events():
                if event.notify is Notify.SIGUPDATE_SEARCH_START:
                    waiting.set()  # from here on it waits for a COMPLETE that never comes
            results.append(operation.wait())

        consumer = threading.Thread(target=consume)
        consumer.start()
        assert waiting.wait(10)
        operation.close()
        consumer.join(10)
        assert not consumer.is_alive()
    assert [r.outcome for r in results] == [Outcome.CANCELLED]
    assert closes(fake).count(0x1000_0010) == 1


def test_a_complete_that_breaks_the_grammar_still_ends_the_update_in_strict_mode() -> None:
    # S_OK straight after START: the grammar wants a search first, but the update did finish.
    fake = FakeMpClient(Scenario("short", complete=ScenarioComplete(1.0, S_OK)), delivery="timed")
    with mpupdate.Client(fake) as client:
        operation = client.start_update(strict=True)
        with pytest.raises(mpupdate.ProtocolError) as caught:
            operation.wait()
        operation.close()
    assert str(caught.value) == (
        "event 1: SIGUPDATE_COMPLETE after SIGUPDATE_START (expected SIGUPDATE_SEARCH_START)"
    )
    assert fake.calls_to("MpUpdateControl") == []  # nothing to abort: it had finished
    assert operation.result is not None
    assert operation.result.outcome is Outcome.UPDATED


# -- the seams: the backend's clock, handle kinds, the failing step -----------------------------


class ExportsOnly:
    """A backend with the seven exports and nothing else (no clock), delegating to a fake."""

    def __init__(self, fake: FakeMpClient) -> None:
        self.fake = fake
        for name in EXPORTS:
            setattr(self, name, getattr(fake, name))


class NoClockYet(ExportsOnly):
    clock = None


def test_the_client_waits_on_the_backends_own_clock() -> None:
    timed = FakeMpClient("updated", delivery="timed")
    threaded = FakeMpClient("updated", delivery="thread")
    assert isinstance(timed, ClockedBackend)
    with mpupdate.Client(timed) as on_virtual, mpupdate.Client(threaded) as on_system:
        assert on_virtual.clock is timed.virtual_clock
        assert on_system.clock is SYSTEM_CLOCK
    assert DllBackend.clock is SYSTEM_CLOCK


@pytest.mark.parametrize("backend_class", [ExportsOnly, NoClockYet])
def test_a_backend_without_a_clock_runs_on_the_system_clock(backend_class: type) -> None:
    backend = backend_class(FakeMpClient("already-current"))
    assert not isinstance(backend, ClockedBackend) or backend.clock is None
    assert backend_clock(backend) is SYSTEM_CLOCK
    with mpupdate.Client(backend) as client:
        assert client.clock is SYSTEM_CLOCK
        result = client.start_update().wait()
    assert result.outcome is Outcome.ALREADY_CURRENT
    assert backend.fake.open_handles == {}


def test_abort_handle_is_a_handle_kind_equal_to_its_old_text() -> None:
    fake = FakeMpClient("cancelled", delivery="timed")
    with mpupdate.Client(fake) as client:
        assert client.abort_handle is None
        with client.start_update() as operation:
            next(operation.events())
            operation.cancel()
            operation.wait()
        client = client  # forget that mypy narrowed client.abort_handle to None (python/mypy#11969)
        assert operation.abort_handle is HandleKind.MANAGER
        assert client.abort_handle is HandleKind.MANAGER
        # A str, not a literal: mypy takes a str-enum member and a str literal for never equal
        # (python/mypy#19576) and would skip the rest of the test as unreachable.
        manager: str = "manager"
        assert operation.abort_handle == manager and f"{operation.abort_handle}" == manager
        client.abort_handle = "update"  # text is taken, and becomes the kind
        assert client.abort_handle is HandleKind.UPDATE
        client.abort_handle = None
        with pytest.raises(ValueError, match="must be 'manager', 'update' or None, not 'Manager'"):
            client.abort_handle = "Manager"
        assert client.abort_handle is None


@pytest.mark.parametrize(
    ("fake", "timeout", "step", "error_class"),
    [
        (
            lambda: FakeMpClient(Scenario("x", open_hresult=0x800106BA)),
            None,
            Step.MP_MANAGER_OPEN,
            mpupdate.UpdateServiceUnavailableError,
        ),
        (
            lambda: FakeMpClient("access-denied"),
            None,
            Step.MP_UPDATE_START,
            mpupdate.UpdateAccessDeniedError,
        ),
        (
            lambda: FakeMpClient("network-failure"),
            None,
            Step.UPDATE_COMPLETE,
            mpupdate.UpdateNetworkError,
        ),
        (lambda: FakeMpClient("hung", delivery="timed"), 5, Step.UPDATE_WAIT, mpupdate.UpdateError),
    ],
    ids=["open", "start", "complete", "wait"],
)
def test_a_failed_update_names_the_step_that_failed(
    fake: Callable[[], FakeMpClient],
    timeout: Optional[float],
    step: Step,
    error_class: type[mpupdate.UpdateError],
) -> None:
    with pytest.raises(mpupdate.UpdateError) as caught:
        mpupdate.update(backend=fake(), timeout=timeout)
    error = caught.value
    assert type(error) is error_class
    assert error.function is step
    assert error.result is not None
    assert str(error).startswith(f"signature update {error.result.outcome.name} ({step.value}): ")
    result = mpupdate.update(backend=fake(), timeout=timeout, check=False)
    assert result.outcome is error.result.outcome


def test_an_unloadable_backend_is_raised_whatever_check_says() -> None:
    with pytest.raises(mpupdate.BackendUnavailableError) as caught:
        mpupdate.update(backend="dll:relative/MpClient.dll", check=False)
    assert caught.value.function is Step.LOAD_MPCLIENT


class CloseRefused(FakeMpClient):
    """Closes every handle, then answers E_ACCESSDENIED anyway."""

    def MpHandleClose(self, hMpHandle: Any) -> int:
        super().MpHandleClose(hMpHandle)
        return to_signed(E_ACCESSDENIED)


def test_a_failed_close_is_logged_with_the_kind_of_handle(caplog: pytest.LogCaptureFixture) -> None:
    fake = CloseRefused("already-current")
    with caplog.at_level("WARNING", logger="mpupdate"), mpupdate.Client(fake) as client:
        result = client.start_update().wait()
    assert [r.getMessage() for r in caplog.records] == [
        "mpupdate: MpHandleClose(update handle) failed: 0x80070005 E_ACCESSDENIED",  # the handle
        "mpupdate: MpHandleClose(update handle) failed: 0x80070005 E_ACCESSDENIED",  # the anomaly
        "mpupdate: MpHandleClose(manager handle) failed: 0x80070005 E_ACCESSDENIED",
    ]
    assert [str(a) for a in result.anomalies] == [
        "MpHandleClose(update handle) failed: 0x80070005 E_ACCESSDENIED"
    ]


def test_a_queue_overflow_keeps_the_outcome_and_names_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Immediate delivery: all 16 notifications arrive before the consumer takes any.
    real = _native.Sink
    monkeypatch.setattr(_native, "Sink", lambda: real(max_records=4))
    result = mpupdate.update(backend=FakeMpClient("updated"), check=False)
    assert result.outcome is Outcome.UPDATED  # COMPLETE has reserved places
    assert [e.notify for e in result.events[:4]] == [
        Notify.SIGUPDATE_START,
        Notify.SIGUPDATE_SEARCH_START,
        Notify.SIGUPDATE_SEARCH_COMPLETE,
        Notify.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE,
    ]
    assert result.events[-1].notify is Notify.SIGUPDATE_COMPLETE and len(result.events) == 5
    assert str(result.anomalies[0]) == (
        "11 notification(s) were dropped: more than 4 arrived before they were taken (the "
        "queue's bound; SIGUPDATE_COMPLETE and INTERNAL_FAILURE are always kept)"
    )
    assert _native.registry_size() == 0
