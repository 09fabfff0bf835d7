"""The fault matrix: every export failing with every code users meet (MPCLIENT.md section 6), and a
raising progress function at every stage, each with the exception or outcome it must give.

Rows run on the Python fake and, where the scenario can say it (MpManagerOpen, MpUpdateStart, the
COMPLETE's code), on the native fake too. Exports a scenario cannot make fail are made to fail by
a subclass of the Python fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, Union

import pytest

import mpupdate
from mpupdate import _native
from mpupdate.constants import E_ABORT, HRESULTS, HResultCategory
from mpupdate.errors import (
    AccessDeniedError,
    InvalidArgumentError,
    InvalidHandleError,
    MpError,
    NetworkError,
    ServiceUnavailableError,
    Step,
    UpdateError,
)
from mpupdate.fakes import FakeMpClient, Scenario, ScenarioComplete
from mpupdate.fakes.native import NativeFakeMpClient
from mpupdate.fakes.native.build import unavailable_reason
from mpupdate.hresults import describe
from mpupdate.machine import Outcome

#: MPCLIENT.md section 6: the failure codes users meet (S_FALSE is not a failure).
CODES = [
    0x80070005,  # E_ACCESSDENIED
    0x80070057,  # E_INVALIDARG
    0x80070006,  # E_HANDLE
    0x800710DD,  # invalid operation
    0x80004004,  # E_ABORT
    0x800106BA,  # RPC server unavailable
    0x80070652,  # install already running
    0x80070643,  # install failure
    0x8024402C,  # WU: host name not resolved
    0x80072EFD,  # cannot connect
    0x80072EE2,  # timeout
    0x80240022,  # WU: all updates failed
    0x8024002E,  # WU: unmanaged server not allowed
    0x8050800C,  # MP: bad input data
    0x80501004,  # MP: no internet connection
    0x8050A001,  # MP: bad database (open)
    0x8050A005,  # MP: bad database (not signed)
]

#: The exception class a failed call's code must give (its category's), else MpError itself.
CLASSES = {
    HResultCategory.ACCESS_DENIED: AccessDeniedError,
    HResultCategory.SERVICE_UNAVAILABLE: ServiceUnavailableError,
    HResultCategory.NETWORK: NetworkError,
    HResultCategory.INVALID_ARGUMENT: InvalidArgumentError,
    HResultCategory.INVALID_HANDLE: InvalidHandleError,
}

Fake = Union[FakeMpClient, NativeFakeMpClient]


def expected_class(code: int) -> type[MpError]:
    return CLASSES.get(describe(code).category, MpError)


@pytest.fixture(params=["python", "native"])
def make_fake(request: pytest.FixtureRequest) -> Iterator[Callable[..., Fake]]:
    """A fake of the parametrized kind (the native one skipped where it cannot be built)."""
    if request.param == "native":
        why = unavailable_reason()
        if why is not None:
            pytest.skip(f"compiles the native fake: {why}")
    made: list[Fake] = []

    def make(scenario: Any, **options: Any) -> Fake:
        cls = FakeMpClient if request.param == "python" else NativeFakeMpClient
        fake = cls(scenario, **options)
        made.append(fake)
        return fake

    yield make
    if request.param == "native" and NativeFakeMpClient.in_use():
        NativeFakeMpClient.reset_library()


def check_error(error: MpError, step: Step, code: int) -> None:
    """The error names the call, the code (and its name), a message, and the hint we know."""
    assert error.function is step
    assert error.hresult == code
    assert f"0x{code:08X}" in str(error)
    assert error.message  # never empty: the DLL's text, the system's or our table's
    assert error.hint == describe(code).hint


# -- MpManagerOpen and MpUpdateStart: scenario-driven, both fakes --------------------------------


@pytest.mark.parametrize("code", CODES, ids=[f"0x{c:08X}" for c in CODES])
def test_manager_open_failing(make_fake: Callable[..., Fake], code: int) -> None:
    fake = make_fake(Scenario("open-fails", open_hresult=code))
    with pytest.raises(expected_class(code)) as caught:
        mpupdate.Client(fake)
    check_error(caught.value, Step.MP_MANAGER_OPEN, code)
    result = mpupdate.update(
        backend=make_fake(Scenario("open-fails", open_hresult=code)), check=False
    )
    assert (result.outcome, result.hresult, result.events) == (Outcome.FAILED, code, ())
    with pytest.raises(UpdateError) as failed:
        mpupdate.update(backend=make_fake(Scenario("open-fails", open_hresult=code)))
    check_error(failed.value, Step.MP_MANAGER_OPEN, code)
    assert failed.value.result is not None and failed.value.result.hresult == code


@pytest.mark.parametrize("code", CODES, ids=[f"0x{c:08X}" for c in CODES])
def test_update_start_failing(make_fake: Callable[..., Fake], code: int) -> None:
    fake = make_fake(Scenario("start-fails", start_hresult=code))
    with mpupdate.Client(fake) as client, pytest.raises(expected_class(code)) as caught:
        client.start_update()
    check_error(caught.value, Step.MP_UPDATE_START, code)
    assert fake.open_handles == {} and _native.registry_size() == 0
    result = mpupdate.update(
        backend=make_fake(Scenario("start-fails", start_hresult=code)), check=False
    )
    assert (result.outcome, result.hresult) == (Outcome.FAILED, code)


@pytest.mark.parametrize("code", CODES, ids=[f"0x{c:08X}" for c in CODES])
def test_complete_carrying_a_failure(make_fake: Callable[..., Fake], code: int) -> None:
    scenario = Scenario("complete-fails", complete=ScenarioComplete(at=1.0, hresult=code))
    result = mpupdate.update(backend=make_fake(scenario), check=False)
    expected = Outcome.CANCELLED if code == E_ABORT else Outcome.FAILED
    assert (result.outcome, result.hresult) == (expected, code)
    assert result.message and result.hint == describe(code).hint
    with pytest.raises(UpdateError) as caught:
        mpupdate.update(backend=make_fake(scenario))
    assert caught.value.function is Step.UPDATE_COMPLETE and caught.value.hresult == code


# -- the exports a scenario cannot make fail: the Python fake, told to fail ----------------------


class Failing(FakeMpClient):
    """Fails one export with ``code`` (every call of it), doing nothing else there."""

    def __init__(self, export: str, code: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failing, self.code = export, code

    def MpUpdateControl(self, handle: Any, control: int) -> int:
        if self.failing == "MpUpdateControl":
            return self.code
        return super().MpUpdateControl(handle, control)

    def MpManagerVersionQuery(self, handle: Any, info: Any) -> int:
        if self.failing == "MpManagerVersionQuery":
            return self.code
        return super().MpManagerVersionQuery(handle, info)

    def MpErrorMessageFormat(self, handle: Any, hresult: int, text: Any) -> int:
        if self.failing == "MpErrorMessageFormat":
            return self.code
        return super().MpErrorMessageFormat(handle, hresult, text)


@pytest.mark.parametrize("code", CODES, ids=[f"0x{c:08X}" for c in CODES])
def test_update_control_failing_on_both_handles(code: int) -> None:
    fake = Failing("MpUpdateControl", code, "hung", delivery="timed")
    with mpupdate.Client(fake) as client:
        operation = client.start_update()
        with pytest.raises(expected_class(code)) as caught:
            operation.cancel()
        check_error(caught.value, Step.MP_UPDATE_CONTROL, code)
        result = operation.wait(0.5)  # the timeout's abort fails too: closing still stops it
    assert result.outcome is Outcome.TIMED_OUT
    refused = f"MpUpdateControl(ABORT) failed: 0x{code:08X}"
    assert any(str(a).startswith(refused) for a in result.anomalies) or code == E_ABORT
    assert fake.open_handles == {}


@pytest.mark.parametrize("code", CODES, ids=[f"0x{c:08X}" for c in CODES])
def test_version_query_failing_leaves_the_versions_unknown(code: int) -> None:
    fake = Failing("MpManagerVersionQuery", code, "updated")
    result = mpupdate.update(backend=fake)
    assert result.outcome is Outcome.UPDATED
    assert result.versions_before is None and result.versions_after is None
    name = describe(code).name
    assert [str(a) for a in result.anomalies] == [
        f"versions before the update unavailable: {name}",
        f"versions after the update unavailable: {name}",
    ]
    failing = Failing("MpManagerVersionQuery", code, "updated")
    with mpupdate.Client(failing) as client, pytest.raises(expected_class(code)) as caught:
        client.version()
    check_error(caught.value, Step.MP_MANAGER_VERSION_QUERY, code)


@pytest.mark.parametrize("code", CODES, ids=[f"0x{c:08X}" for c in CODES])
def test_error_text_failing_falls_back_to_the_table(code: int) -> None:
    fake = Failing("MpErrorMessageFormat", code, "network-failure")
    result = mpupdate.update(backend=fake, check=False)
    assert result.outcome is Outcome.FAILED
    assert result.message == describe(result.hresult).message


# -- a raising progress function, at every stage -------------------------------------------------


class Stop(Exception):
    pass


@pytest.mark.parametrize("delivery", ["immediate", "thread", "timed"])
def test_a_progress_function_raising_at_each_event_cancels_and_cleans_up(
    make_fake: Callable[..., Fake], delivery: str
) -> None:
    reference = mpupdate.update(backend=FakeMpClient("updated-three-packages"))
    for stage in range(len(reference.events)):
        calls = {"n": 0}

        def progress(
            value: mpupdate.Progress, calls: dict[str, int] = calls, at: int = stage
        ) -> None:
            calls["n"] += 1
            if calls["n"] == at + 1:
                raise Stop(f"at event {at}")

        fake = make_fake("updated-three-packages", delivery=delivery)
        with pytest.raises(Stop, match=f"at event {stage}$"):
            mpupdate.update(backend=fake, progress=progress, timeout=60)
        assert calls["n"] == stage + 1  # never called again after it raised
        assert fake.open_handles == {} and _native.registry_size() == 0
        assert fake.violations == []


def test_every_failure_code_has_a_message_and_the_known_ones_a_hint() -> None:
    for code in CODES:
        info = describe(code)
        assert info.message and info.name
        if code in HRESULTS:
            assert info.hint is not None or info.category in (
                HResultCategory.ABORTED,
                HResultCategory.OTHER,
                HResultCategory.INVALID_HANDLE,
            )
