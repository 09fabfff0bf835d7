"""What every implementation of MpClient.dll must do, checked on every lane.

The same test body runs against the Python fake, the native fake (through the compiled module)
and, on Windows with ``--run-real``, the real DLL. Exact values are asserted where MPCLIENT.md
states them (BIN/DOC); the fakes' scenario-dependent values only on scripted lanes.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

import mpupdate
from mpupdate import Notify, Outcome
from mpupdate._native import ffi
from mpupdate.constants import (
    E_ABORT,
    E_ACCESSDENIED,
    E_HANDLE,
    E_INVALIDARG,
    ERROR_INVALID_OPERATION,
    PROGRESS_NOTIFICATIONS,
    S_FALSE,
    S_OK,
    Control,
    UpdateOption,
)
from mpupdate.errors import to_signed, to_unsigned
from mpupdate.events import read_utf16
from mpupdate.fakes import FakeMpClient, FakeViolation
from mpupdate.fakes.session import RawSession
from mpupdate.results import outcome_of

from .conftest import Lane

ASYNC_PROGRESS = int(UpdateOption.ASYNC | UpdateOption.PROGRESS)
#: The bits of 0x1F8, which the DLL's option check counts as update sources [BIN].
SOURCE_BITS = [0x8, 0x10, 0x20, 0x40, 0x80, 0x100]
#: What that check refuses [BIN, 4.18.1909.6]: every pair of source bits, all six at once, and
#: each bit of 0x78 together with the unnamed bit 0x200.
REFUSED_OPTIONS = [
    *(a | b for a, b in itertools.combinations(SOURCE_BITS, 2)),
    0x1F8,
    *(bit | 0x200 for bit in (0x8, 0x10, 0x20, 0x40)),
]
#: What it lets through: no source bit, one source bit, 0x200 alone or with a source bit outside
#: 0x78, and unnamed bits outside 0x1F8 | 0x200 beside a source bit.
ACCEPTED_OPTIONS = [0x0, *SOURCE_BITS, 0x200, 0x200 | 0x80, 0x200 | 0x100, 0x4 | 0x8, 0x400 | 0x100]
#: Long enough for a real update over a slow link; the fakes finish in milliseconds.
REAL_TIMEOUT = 1800.0


def hr(value: int) -> int:
    return to_unsigned(value)


def test_manager_open_checks_its_arguments(lane: Lane) -> None:
    backend = lane.backend()
    assert hr(backend.MpManagerOpen(1, ffi.new("MPHANDLE *"))) == E_INVALIDARG  # [BIN]
    assert hr(backend.MpManagerOpen(0, ffi.NULL)) == E_INVALIDARG  # [BIN]


def test_update_start_requires_callback_info_and_an_out_pointer(lane: Lane) -> None:
    backend = lane.backend()
    session = RawSession(backend)
    info = session.info
    try:
        out = ffi.new("MPHANDLE *")
        # [BIN] callback info is required, whatever the docs say
        assert (
            hr(backend.MpUpdateStart(session.manager, ASYNC_PROGRESS, ffi.NULL, out))
            == E_INVALIDARG
        )
        assert (
            hr(backend.MpUpdateStart(session.manager, ASYNC_PROGRESS, info, ffi.NULL))
            == E_INVALIDARG
        )
        # [BIN] more than one update-source bit
        two = ASYNC_PROGRESS | int(UpdateOption.HTTP | UpdateOption.UNC)
        assert hr(backend.MpUpdateStart(session.manager, two, info, out)) == E_INVALIDARG
        assert session.events == []
    finally:
        session.close()


def test_a_null_manager_handle_is_an_invalid_argument(lane: Lane) -> None:
    # [BIN] the x64 DLL of 4.18.1909.6, called under Wine: E_INVALIDARG, not E_HANDLE, for NULL
    backend = lane.backend()
    session = RawSession(backend, open_manager=False)
    info = session.info
    try:
        out = ffi.new("MPHANDLE *")
        assert hr(backend.MpUpdateStart(ffi.NULL, ASYNC_PROGRESS, info, out)) == E_INVALIDARG
        assert hr(backend.MpUpdateStart(ffi.NULL, ASYNC_PROGRESS, ffi.NULL, out)) == E_INVALIDARG
        assert out[0] == ffi.NULL
        text = ffi.new("uint16_t **")
        denied = to_signed(E_ACCESSDENIED)
        assert hr(backend.MpErrorMessageFormat(ffi.NULL, denied, text)) == E_INVALIDARG
        assert text[0] == ffi.NULL
        assert session.events == []
    finally:
        session.unregister()


def test_a_handle_that_was_never_issued_is_an_invalid_handle(lane: Lane) -> None:
    lane.require_scripted()  # the real DLL would dereference it
    backend = lane.backend()
    session = RawSession(backend, open_manager=False)
    info = session.info
    try:
        bogus = ffi.cast("MPHANDLE", 0x42)
        out = ffi.new("MPHANDLE *")
        assert hr(backend.MpUpdateStart(bogus, ASYNC_PROGRESS, info, out)) == E_HANDLE
        text = ffi.new("uint16_t **")
        denied = to_signed(E_ACCESSDENIED)
        assert hr(backend.MpErrorMessageFormat(bogus, denied, text)) == E_HANDLE
        assert out[0] == ffi.NULL and text[0] == ffi.NULL
    finally:
        session.unregister()


def _start_answers(lane: Lane, options: list[int], **backend_options: Any) -> dict[str, Any]:
    """What MpUpdateStart answers to each of ``options`` (with ASYNC | PROGRESS) on one manager,
    keyed by hex; accepted updates are closed at once (on the fakes that waits for them)."""
    backend = lane.backend(**backend_options)
    session = RawSession(backend)
    info = session.info
    answers: dict[str, Any] = {}
    try:
        for value in options:
            out = ffi.new("MPHANDLE *")
            answer = hr(backend.MpUpdateStart(session.manager, ASYNC_PROGRESS | value, info, out))
            answers[hex(value)] = answer
            if out[0] != ffi.NULL:
                assert hr(backend.MpHandleClose(out[0])) == S_OK
        answers["completes"] = [e.notify for e in session.events].count(Notify.SIGUPDATE_COMPLETE)
    finally:
        session.close()
    return answers


def test_update_start_refuses_the_option_combinations_the_dll_refuses(lane: Lane) -> None:
    # [BIN] the option check of 4.18.1909.6; nothing starts, so this is safe on the real lane
    answers = _start_answers(lane, REFUSED_OPTIONS)
    assert answers == {**{hex(o): E_INVALIDARG for o in REFUSED_OPTIONS}, "completes": 0}


def test_update_start_accepts_the_option_combinations_the_dll_lets_through(lane: Lane) -> None:
    lane.require_scripted()  # each of these would start a real update (0x200's meaning unknown)
    answers = _start_answers(lane, ACCEPTED_OPTIONS, scenario="updated", delivery="immediate")
    assert answers == {
        **{hex(o): S_OK for o in ACCEPTED_OPTIONS},
        "completes": len(ACCEPTED_OPTIONS),
    }


def test_pause_and_resume_are_refused(lane: Lane) -> None:
    backend = lane.backend()
    session = RawSession(backend)
    try:  # [BIN] 0x800710DD on the manager handle
        assert (
            hr(backend.MpUpdateControl(session.manager, Control.PAUSE)) == ERROR_INVALID_OPERATION
        )
        assert (
            hr(backend.MpUpdateControl(session.manager, Control.RESUME)) == ERROR_INVALID_OPERATION
        )
    finally:
        session.close()


def test_closing_null_is_s_false(lane: Lane) -> None:
    assert hr(lane.backend().MpHandleClose(ffi.NULL)) == S_FALSE  # [BIN]


def test_error_message_is_utf16_text_released_with_mp_free_memory(lane: Lane) -> None:
    backend = lane.backend()
    session = RawSession(backend)
    text = ffi.new("uint16_t **")
    try:
        assert (
            hr(backend.MpErrorMessageFormat(session.manager, to_signed(E_ACCESSDENIED), text))
            == S_OK
        )
        message = read_utf16(text[0])
        assert message is not None and message.strip()
        if lane.scripted:
            assert message == "Access is denied.\r\n"
    finally:
        backend.MpFreeMemory(text[0])
        session.close()


def test_version_query_reports_the_components(lane: Lane) -> None:
    backend = lane.backend("updated")
    with mpupdate.Client(backend) as client:
        versions = client.version()
    assert versions.product.raw != 0 or lane.scripted
    if lane.scripted:
        assert versions.as_dict() == {
            "product": "4.18.24090.11",
            "service": "4.18.24090.11",
            "file_system_filter": "4.18.24090.11",
            "engine": "1.1.24090.11",
            "as_signature": "1.419.120.0",
            "av_signature": "1.419.120.0",
            "nis_engine": "1.1.24090.11",
            "nis_signature": "1.419.120.0",
        }


@pytest.mark.parametrize("delivery", ["immediate", "thread", "timed"])
def test_an_update_runs_from_start_to_complete(lane: Lane, delivery: str) -> None:
    if not lane.scripted and delivery != "thread":
        pytest.skip("the real DLL has one delivery: its own threads")
    backend = lane.backend("updated", delivery=delivery)
    result = mpupdate.update(backend=backend, check=False, timeout=REAL_TIMEOUT)
    assert result.events[0].notify is Notify.SIGUPDATE_START
    assert result.events[0].hresult == S_OK and not result.events[0].has_data  # synthesized
    last = result.events[-1]
    assert last.notify is Notify.SIGUPDATE_COMPLETE and not last.has_data
    assert result.outcome is outcome_of(last.hresult)
    assert [e for e in result.events if e.notify is Notify.SIGUPDATE_COMPLETE] == [last]
    if lane.scripted:
        assert result.outcome is Outcome.UPDATED
        assert len(result.events) == 16
        assert result.anomalies == ()
    lane.assert_clean(backend)


def test_progress_notifications_need_the_progress_option(lane: Lane) -> None:
    backend = lane.backend("updated")
    result = mpupdate.update(backend=backend, options=0, check=False, timeout=REAL_TIMEOUT)
    assert result.options == int(UpdateOption.ASYNC)
    assert [e.name for e in result.events if e.notify in PROGRESS_NOTIFICATIONS] == []
    assert result.events[-1].notify is Notify.SIGUPDATE_COMPLETE


def test_cancel_ends_the_update_and_says_which_handle_worked(lane: Lane) -> None:
    backend = lane.backend("cancelled", delivery="timed")
    with mpupdate.Client(backend) as client, client.start_update() as operation:
        first = next(operation.events(timeout=REAL_TIMEOUT))
        assert first.notify is Notify.SIGUPDATE_START
        operation.cancel()
        result = operation.wait(timeout=REAL_TIMEOUT)
    if lane.scripted:
        assert result.outcome is Outcome.CANCELLED
        assert operation.abort_handle == "manager"  # [BIN] 4.18.1909.6, imitated by the fakes
        assert result.events[-1].hresult == 0x80004004
    else:  # the update may have finished before the abort arrived; record what happened
        assert result.outcome in (Outcome.CANCELLED, Outcome.UPDATED, Outcome.ALREADY_CURRENT)
        if result.outcome is Outcome.CANCELLED:
            assert operation.abort_handle in ("manager", "update")
    lane.assert_clean(backend)


@pytest.mark.parametrize("delivery", ["immediate", "thread", "timed"])
def test_a_synchronous_start_returns_s_ok_for_a_failed_update(lane: Lane, delivery: str) -> None:
    lane.require_scripted()
    backend = lane.backend("network-failure", delivery=delivery)
    with mpupdate.Client(backend) as client, client.start_update(blocking=True) as operation:
        result = operation.wait()  # MpUpdateStart returned S_OK, and only then
    assert result.outcome is Outcome.FAILED
    assert result.hresult == 0x80072EFD  # the outcome is only in COMPLETE [BIN]
    assert result.options == int(UpdateOption.PROGRESS)


def test_a_failed_start_sends_no_notification(lane: Lane) -> None:
    lane.require_scripted()
    backend = lane.backend("access-denied")
    with pytest.raises(mpupdate.UpdateAccessDeniedError) as caught:
        mpupdate.update(backend=backend)
    assert caught.value.function == "MpUpdateStart"
    assert caught.value.result is not None and caught.value.result.events == ()


def test_an_abort_from_another_thread_inside_start_s_callback_sends_start_once(
    lane: Lane,
) -> None:
    # MpClient sends START ahead of an early abort's COMPLETE, but never twice: here the abort
    # arrives (from another thread) while START's own callback is still running.
    lane.require_scripted()
    backend = lane.backend("updated", delivery="immediate")
    assert isinstance(backend, FakeMpClient)  # the native fake is one too
    session = RawSession(backend)
    seen: list[tuple[int, int]] = []
    answers: list[int] = []

    def abort() -> None:
        answers.append(to_unsigned(backend.MpUpdateControl(session.manager, int(Control.ABORT))))

    def callback(context: int, data: Any) -> int:
        seen.append((int(data.Notify), to_unsigned(data.hResult)))
        if len(seen) == 1:
            aborter = threading.Thread(target=abort)
            aborter.start()
            aborter.join()
        return 0

    keep = ffi.callback("MPCALLBACK_FUNCTION", callback)
    info = ffi.new("MPCALLBACK_INFO *")
    info.pfnCallbackFunction = keep
    out = ffi.new("MPHANDLE *")
    try:
        assert to_unsigned(backend.MpUpdateStart(session.manager, ASYNC_PROGRESS, info, out)) == 0
        assert answers == [S_OK]
        assert seen == [(Notify.SIGUPDATE_START, S_OK), (Notify.SIGUPDATE_COMPLETE, E_ABORT)]
        assert list(backend.updates[0].delivered) == [
            Notify.SIGUPDATE_START,
            Notify.SIGUPDATE_COMPLETE,
        ]
    finally:
        session.close(out[0])


@pytest.mark.parametrize("delivery", ["immediate", "timed"])
def test_a_hold_applies_to_thread_delivery_only(lane: Lane, delivery: str) -> None:
    # Elsewhere the caller's own thread delivers: holding it would block MpUpdateStart for good.
    lane.require_scripted()
    backend = lane.backend("updated", delivery=delivery)
    assert isinstance(backend, FakeMpClient)
    backend.hold(1)
    result = mpupdate.update(backend=backend, check=False)
    assert result.outcome is Outcome.UPDATED


def test_a_strict_violation_is_raised_after_the_call_did_what_the_dll_does(lane: Lane) -> None:
    # The DLL frees a manager handle even while its update is open: both fakes close it, log the
    # call, and only then raise, so their states after a violation agree.
    lane.require_scripted()
    backend = lane.backend("hung", delivery="immediate")
    assert isinstance(backend, FakeMpClient)
    session = RawSession(backend)
    result, update = session.start()
    assert result == S_OK
    with pytest.raises(FakeViolation, match="was closed while its update handle"):
        backend.MpHandleClose(session.manager)
    update_value = int(ffi.cast("uintptr_t", update))
    assert backend.open_handles == {update_value: "update"}
    assert backend.calls_to("MpHandleClose")[-1].hresult == S_OK
    backend.clear_violations()
    session.manager = ffi.NULL  # closed above
    session.close(update)
