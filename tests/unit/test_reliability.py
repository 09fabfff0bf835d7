"""Races, bad arguments and re-entrant consumption (the reliability issue's findings).

Each test pins a behaviour that failed before: the races are made deterministic by a fake whose
export stops at a gate until the test lets it go. Where a test must show that a thread is held
back (blocked on our lock), it gives that thread a short, bounded join and expects it alive.
"""

from __future__ import annotations

import _thread
import asyncio
import threading
from typing import Any, Optional

import pytest

import mpupdate
from mpupdate.constants import E_FAIL, SOURCE_OPTION_MASK, Notify, UpdateOption
from mpupdate.fakes import FakeMpClient
from mpupdate.machine import Outcome

#: How long a test lets a thread run before it checks that the thread is held back.
HELD = 0.2
#: Upper bound for anything a test waits for (never reached when the code is right).
BOUND = 10.0


def closes(fake: FakeMpClient) -> list[int]:
    return [call.args[0] for call in fake.calls_to("MpHandleClose")]


class Gate:
    """Stops a fake's export once, on its first matching call, until opened."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()
        self.used = False

    def stop_here(self) -> None:
        if self.used:
            return
        self.used = True
        self.reached.set()
        assert self.opened.wait(BOUND), "the test never opened the gate"


class GatedFake(FakeMpClient):
    """A fake whose MpUpdateControl, MpUpdateStart or update-handle MpHandleClose can be gated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.control_gate: Optional[Gate] = None
        self.start_gate: Optional[Gate] = None
        self.update_close_gate: Optional[Gate] = None

    def MpUpdateControl(self, handle: Any, control: int) -> int:
        if self.control_gate is not None:
            self.control_gate.stop_here()
        return super().MpUpdateControl(handle, control)

    def MpUpdateStart(self, manager: Any, options: int, info: Any, out: Any) -> int:
        if self.start_gate is not None:
            self.start_gate.stop_here()
        return super().MpUpdateStart(manager, options, info, out)

    def MpHandleClose(self, handle: Any) -> int:
        if (
            self.update_close_gate is not None
            and self.open_handles.get(int(mpupdate._native.ffi.cast("uintptr_t", handle)))
            == "update"
        ):
            self.update_close_gate.stop_here()
        return super().MpHandleClose(handle)


def run(target: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=body)
    thread.start()
    return thread, errors


# -- handle races --------------------------------------------------------------------------------


def test_close_on_another_thread_waits_for_a_cancel_using_the_handle() -> None:
    fake = GatedFake("hung", delivery="timed")
    fake.control_gate = gate = Gate()
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        canceller, cancel_errors = run(operation.cancel)
        assert gate.reached.wait(BOUND)  # the cancel is inside MpUpdateControl(update handle)
        closer, close_errors = run(operation.close)
        closer.join(HELD)
        assert closer.is_alive()  # held back: the handle the cancel uses stays open
        gate.opened.set()
        canceller.join(BOUND)
        closer.join(BOUND)
    assert cancel_errors == [] and close_errors == []
    assert fake.violations == []
    assert operation.result is not None and operation.result.outcome is Outcome.CANCELLED
    assert closes(fake) == [0x1000_0010, 0x1000_0000]


def test_cancel_after_a_close_on_another_thread_is_a_no_op() -> None:
    fake = GatedFake("hung", delivery="timed")
    fake.update_close_gate = gate = Gate()
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        closer, close_errors = run(operation.close)
        assert gate.reached.wait(BOUND)  # the close is inside MpHandleClose(update handle)
        canceller, cancel_errors = run(operation.cancel)
        canceller.join(HELD)
        assert canceller.is_alive()  # waits for the close instead of racing it
        gate.opened.set()
        closer.join(BOUND)
        canceller.join(BOUND)
    assert cancel_errors == [] and close_errors == []
    assert fake.violations == []
    # The close's own abort (update handle refused, then the manager's); none from the cancel.
    assert {call.thread for call in fake.calls_to("MpUpdateControl")} == {closer.name}


def test_client_close_waits_for_a_start_on_another_thread_and_closes_its_update_first() -> None:
    fake = GatedFake("hung", delivery="timed")
    fake.start_gate = gate = Gate()
    client = mpupdate.Client(fake)
    operations: list[mpupdate.UpdateOperation] = []
    starter, start_errors = run(lambda: operations.append(client.start_update()))
    assert gate.reached.wait(BOUND)  # inside MpUpdateStart
    closer, close_errors = run(client.close)
    closer.join(HELD)
    assert closer.is_alive()  # the manager is not closed under a starting update
    gate.opened.set()
    starter.join(BOUND)
    closer.join(BOUND)
    assert start_errors == [] and close_errors == []
    assert fake.violations == []
    assert closes(fake) == [0x1000_0010, 0x1000_0000]  # the update first, then its manager
    (operation,) = operations
    assert operation.result is not None and operation.result.outcome is Outcome.CANCELLED
    operation.close()  # closing again after the client closed: no error, nothing sent
    assert closes(fake) == [0x1000_0010, 0x1000_0000]


def test_start_update_on_a_closed_client_is_refused_before_any_call() -> None:
    fake = FakeMpClient("updated")
    client = mpupdate.Client(fake)
    client.close()
    calls = len(fake.calls)
    with pytest.raises(ValueError, match="this Client is closed; open a new one"):
        client.start_update()
    assert len(fake.calls) == calls


def test_the_manager_waits_for_an_update_close_in_flight_on_another_thread() -> None:
    # As at interpreter exit: one thread is closing the update handle (MpClient cancels and waits
    # inside MpHandleClose) while another closes the manager. The manager must go last.
    fake = GatedFake("hung", delivery="timed")
    fake.update_close_gate = gate = Gate()
    client = mpupdate.Client(fake)
    operation = client.start_update()
    closer, close_errors = run(operation.close)
    assert gate.reached.wait(BOUND)
    manager_closer, manager_errors = run(client.close)
    manager_closer.join(HELD)
    assert manager_closer.is_alive()
    gate.opened.set()
    closer.join(BOUND)
    manager_closer.join(BOUND)
    assert close_errors == [] and manager_errors == []
    assert closes(fake) == [0x1000_0010, 0x1000_0000]
    assert fake.violations == []


def test_a_second_close_returns_only_once_the_first_has() -> None:
    fake = GatedFake("hung", delivery="timed")
    fake.update_close_gate = gate = Gate()
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        first, first_errors = run(operation.close)
        assert gate.reached.wait(BOUND)
        second, second_errors = run(operation.close)
        second.join(HELD)
        assert second.is_alive()  # not back before the handle is really closed
        gate.opened.set()
        first.join(BOUND)
        second.join(BOUND)
        assert first_errors == [] and second_errors == []
        assert operation.handle is None


class RefusesLateAbort(FakeMpClient):
    """A DLL that refuses ABORT once the update has completed (E_FAIL on either handle)."""

    refused = 0

    def MpUpdateControl(self, handle: Any, control: int) -> int:
        if self.updates and self.updates[-1].completed:
            self.refused += 1
            return E_FAIL
        return super().MpUpdateControl(handle, control)


def test_cancel_after_the_update_completed_is_a_no_op_even_if_the_dll_refuses() -> None:
    fake = RefusesLateAbort("updated")  # immediate: COMPLETE arrives inside MpUpdateStart
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        assert fake.updates[-1].completed
        operation.cancel()  # COMPLETE has arrived (not yet consumed): nothing to abort
        assert fake.refused == 1  # E_FAIL is not "wrong handle kind": no second try
        assert operation.wait(BOUND).outcome is Outcome.UPDATED


# -- arguments, checked before anything opens ----------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"timeout": float("nan")}, ValueError, "timeout must be a finite number of seconds"),
        ({"timeout": float("inf")}, ValueError, "timeout must be a finite number of seconds"),
        ({"timeout": -1}, ValueError, "timeout must be a finite number of seconds >= 0"),
        ({"timeout": "5"}, TypeError, "timeout must be a number of seconds or None, not str"),
        ({"timeout": True}, TypeError, "timeout must be a number of seconds or None, not bool"),
        ({"options": 1 << 32}, ValueError, "options must be a DWORD, 0 to 0xFFFFFFFF"),
        ({"options": -1}, ValueError, "options must be a DWORD, 0 to 0xFFFFFFFF, not -0x1"),
        ({"options": 1.5}, TypeError, "options must be UpdateOption flags or an int"),
        ({"options": True}, TypeError, "options must be UpdateOption flags or an int"),
        ({"progress": 5}, TypeError, "progress must be a function taking a Progress"),
        ({"source": 1}, TypeError, "source must be a mpupdate.Source or a list of them, not int"),
        ({"source": []}, ValueError, "source must name at least one mpupdate.Source"),
        ({"source": [mpupdate.Source.MMPC, "wsus"]}, TypeError, r"source\[1\] must be a mpupdate"),
    ],
)
def test_bad_arguments_are_refused_before_any_handle_opens(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    fake = FakeMpClient("updated")
    with pytest.raises(error, match=message):
        mpupdate.update(backend=fake, **arguments)
    assert fake.calls == []
    with pytest.raises(error, match=message):
        asyncio.run(mpupdate.update_async(backend=fake, **arguments))
    assert fake.calls == []


def test_a_backend_class_instead_of_an_object_is_named() -> None:
    with pytest.raises(TypeError, match="not the class FakeMpClient: pass an instance"):
        mpupdate.update(backend=FakeMpClient)  # type: ignore[arg-type]


def test_wait_and_events_check_their_timeout_before_consuming() -> None:
    fake = FakeMpClient("updated", delivery="timed")
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        with pytest.raises(ValueError, match="timeout must be a finite number"):
            operation.wait(float("nan"))
        with pytest.raises(TypeError, match="timeout must be a number of seconds"):
            operation.events("soon")  # type: ignore[arg-type]
        assert operation.wait(BOUND).outcome is Outcome.UPDATED


def test_option_bits_in_range_still_pass_through() -> None:
    fake = FakeMpClient("updated")
    result = mpupdate.update(backend=fake, options=int(UpdateOption.PROGRESS))
    assert result.options == int(UpdateOption.PROGRESS | UpdateOption.ASYNC)


# -- consuming from the consuming thread again ---------------------------------------------------


def test_wait_inside_the_progress_function_takes_the_rest() -> None:
    fake = FakeMpClient("updated", delivery="timed")
    seen: list[Notify] = []
    results: list[mpupdate.UpdateResult] = []
    with mpupdate.Client(fake) as client:

        def progress(value: mpupdate.Progress) -> None:
            seen.append(value.event.notify)  # type: ignore[arg-type]
            if not results:
                results.append(operation.wait(BOUND))

        operation = client.start_update(progress=progress)
        result = operation.wait(BOUND)
    assert seen == [Notify.SIGUPDATE_START]  # not re-entered for what the inner wait took
    assert results == [result] and result.outcome is Outcome.UPDATED
    assert result.events[-1].notify is Notify.SIGUPDATE_COMPLETE


def test_wait_with_an_events_iterator_held_on_the_same_thread() -> None:
    fake = FakeMpClient("updated", delivery="timed")
    with mpupdate.Client(fake) as client, client.start_update() as operation:
        iterator = operation.events(BOUND)
        first = next(iterator)
        result = operation.wait(BOUND)
        assert list(iterator) == []  # wait() took the rest
    assert first.notify is Notify.SIGUPDATE_START
    assert result.outcome is Outcome.UPDATED and len(result.events) > 1
    assert fake.calls_to("MpUpdateControl") == []


# -- notifications that come too late -------------------------------------------------------------


def _notification(notify: Notify) -> Any:
    data = mpupdate._native.ffi.new("MPCALLBACK_DATA *")
    data.Notify = int(notify)
    data.Type = 6
    return data


class LateTalker(FakeMpClient):
    """A DLL that sends one more notification after COMPLETE (and keeps the callback info)."""

    def MpUpdateStart(self, manager: Any, options: int, info: Any, out: Any) -> int:
        hr = super().MpUpdateStart(manager, options, info, out)  # immediate: COMPLETE sent
        self.info = info
        self.extra = _notification(Notify.SIGUPDATE_INSTALL_START)
        info.pfnCallbackFunction(info.CallbackContext, self.extra)
        return hr


def test_notifications_after_complete_and_after_close_are_kept_apart() -> None:
    fake = LateTalker("already-current")
    result = mpupdate.update(backend=fake)
    assert result.outcome is Outcome.ALREADY_CURRENT  # the first COMPLETE decides
    assert result.events[-1].notify is Notify.SIGUPDATE_INSTALL_START  # kept, as it came
    assert [str(a) for a in result.anomalies] == [
        f"event {len(result.events) - 1}: SIGUPDATE_INSTALL_START after SIGUPDATE_COMPLETE "
        "(expected nothing)"
    ]
    # One after MpHandleClose returned finds no queue: counted as stray, never dereferenced.
    stray = mpupdate._native.stray_notifications()
    assert fake.info.pfnCallbackFunction(fake.info.CallbackContext, fake.extra) == 0
    assert mpupdate._native.stray_notifications() == stray + 1


def test_ctrl_c_while_awaiting_update_async_aborts_and_cleans_up() -> None:
    fake = FakeMpClient("hung", delivery="thread")
    started = threading.Event()

    async def main() -> None:
        def progress(value: mpupdate.Progress) -> None:
            if not started.is_set():
                started.set()
                threading.Thread(target=_thread.interrupt_main).start()  # Ctrl-C

        await mpupdate.update_async(backend=fake, progress=progress)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    assert started.is_set()
    assert fake.updates[0].aborted
    assert fake.open_handles == {} and mpupdate._native.registry_size() == 0


# -- several sources, tried in order ------------------------------------------------------------


class BySource(FakeMpClient):
    """A DLL whose update fails from some sources: ``failing`` maps a Source to the COMPLETE's
    code for updates started from it (others run the scenario)."""

    def __init__(self, failing: dict[mpupdate.Source, int], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failing = failing
        self.tried: list[int] = []

    def MpUpdateStart(self, manager: Any, options: int, info: Any, out: Any) -> int:
        self.tried.append(options)
        for source, code in self.failing.items():
            if options & SOURCE_OPTION_MASK == int(source.option):
                return code
        return super().MpUpdateStart(manager, options, info, out)


def test_sources_are_tried_in_order_until_one_updates() -> None:
    wsus, mmpc, default = mpupdate.Source.WSUS, mpupdate.Source.MMPC, mpupdate.Source.DEFAULT
    fake = BySource({wsus: 0x80240022}, "updated")
    result = mpupdate.update(source=[wsus, mmpc, default], backend=fake)
    assert result.outcome is Outcome.UPDATED and result.source is mmpc
    assert [(a.source, a.outcome, a.hresult) for a in result.attempts] == [
        (wsus, Outcome.FAILED, 0x80240022),
        (mmpc, Outcome.UPDATED, 0),
    ]
    assert all(attempt.duration >= 0 for attempt in result.attempts)
    assert len(fake.tried) == 2  # the third source was never needed


def test_when_every_source_fails_the_last_failure_is_the_result() -> None:
    wsus, mmpc = mpupdate.Source.WSUS, mpupdate.Source.MMPC
    fake = BySource({wsus: 0x80240022, mmpc: 0x80072EFD}, "updated")
    with pytest.raises(mpupdate.UpdateNetworkError) as caught:
        mpupdate.update(source=(wsus, mmpc), backend=fake)
    result = caught.value.result
    assert result is not None and result.hresult == 0x80072EFD
    assert [str(a) for a in result.attempts] == [
        "WSUS: FAILED 0x80240022 WU_E_ALL_UPDATES_FAILED",
        "MMPC: FAILED 0x80072EFD WININET_E_CANNOT_CONNECT",
    ]


def test_a_timed_out_attempt_ends_the_fallback() -> None:
    fake = FakeMpClient("hung", delivery="timed")
    sources = [mpupdate.Source.WSUS, mpupdate.Source.MMPC]
    result = mpupdate.update(source=sources, backend=fake, timeout=5, check=False)
    assert result.outcome is Outcome.TIMED_OUT
    assert [a.source for a in result.attempts] == [mpupdate.Source.WSUS]


def test_a_cancelled_attempt_ends_the_fallback() -> None:
    # The service's abort (COMPLETE with E_ABORT, at 601.9 s): somebody stopped the update, so
    # no other source is tried.
    fake = FakeMpClient("cancelled", delivery="timed")
    sources = [mpupdate.Source.WSUS, mpupdate.Source.MMPC]
    result = mpupdate.update(source=sources, backend=fake, timeout=3600, check=False)
    assert result.outcome is Outcome.CANCELLED
    assert [(a.source, a.outcome) for a in result.attempts] == [
        (mpupdate.Source.WSUS, Outcome.CANCELLED)
    ]
    assert len(fake.updates) == 1


def test_the_timeout_bounds_every_attempt_together() -> None:
    # network-failure fails after 33.8 s: the second attempt has 50 - 33.8 = 16.2 s left.
    fake = FakeMpClient("network-failure", delivery="timed")
    sources = [mpupdate.Source.WSUS, mpupdate.Source.MMPC, mpupdate.Source.DEFAULT]
    result = mpupdate.update(source=sources, backend=fake, timeout=50, check=False)
    assert [(a.source, a.outcome) for a in result.attempts] == [
        (mpupdate.Source.WSUS, Outcome.FAILED),
        (mpupdate.Source.MMPC, Outcome.TIMED_OUT),
    ]
    assert [a.duration for a in result.attempts] == pytest.approx([33.8, 16.2])


def test_a_single_source_has_no_attempts_list() -> None:
    assert mpupdate.update(backend=FakeMpClient("updated")).attempts == ()
