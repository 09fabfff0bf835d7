"""The recorder and the trace format: a trace recorded from a fake replays to the same update on
both fakes, round-trips exactly, fails with a position and a reason, and is scrubbed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

import pytest

import mpupdate
from mpupdate import Notify, Outcome, UpdateResult
from mpupdate.backends import Backend
from mpupdate.fakes import FakeMpClient, Scenario, ScenarioError, scenarios
from mpupdate.fakes.native import NativeFakeMpClient
from mpupdate.fakes.native.build import unavailable_reason
from mpupdate.fakes.recorder import Recorder, Scrubber, record, replay
from mpupdate.fakes.trace import TRACE_FORMAT, Trace, TraceCall

_UNAVAILABLE = unavailable_reason()
KINDS = [
    "python",
    pytest.param(
        "native",
        marks=pytest.mark.skipif(_UNAVAILABLE is not None, reason=f"native fake: {_UNAVAILABLE}"),
    ),
]
#: Long enough for every built-in scenario that completes; "hung" and "cancelled" time out.
TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def _native_library_left_free() -> Iterator[None]:
    yield
    if _UNAVAILABLE is None and NativeFakeMpClient.in_use():
        NativeFakeMpClient.reset_library()


def make_fake(kind: str, scenario: Union[Scenario, str, Path]) -> Backend:
    if kind == "native":
        return NativeFakeMpClient(scenario, delivery="timed")
    return FakeMpClient(scenario, delivery="timed")


def signature(result: UpdateResult) -> tuple[Any, ...]:
    """What a replay must reproduce: outcome, every event (notify, hresult, data, callback type
    and time after START, in 100 ns ticks) and the versions."""
    start = result.events[0].filetime if result.events else 0
    events = [
        (
            e.notify,
            e.hresult,
            e.percent,
            e.total_updates,
            e.current_index,
            e.update_type,
            e.stage,
            e.path,
            e.callback_type,
            e.filetime - start,
        )
        for e in result.events
    ]
    return (
        result.outcome,
        result.hresult,
        result.message,
        result.reboot_required,
        events,
        result.versions_before,
        result.versions_after,
    )


@pytest.mark.parametrize("name", scenarios.names())
@pytest.mark.parametrize("recorded_on", KINDS)
def test_a_recorded_trace_replays_the_same_update_on_both_fakes(
    name: str, recorded_on: str, tmp_path: Path
) -> None:
    out = tmp_path / "trace.json"
    trace, result = record(out, backend=make_fake(recorded_on, name), timeout=TIMEOUT)
    assert Trace.load(out) == trace
    assert trace.outcome == result.outcome.name
    for kind in ("python", "native"):
        if kind == "native" and _UNAVAILABLE is not None:
            continue
        replayed = replay(out, native=kind == "native")
        assert signature(replayed) == signature(result), (name, kind)
    # The scenario loader, and so FakeMpClient(path), takes a trace as it is.
    fake = FakeMpClient(out, delivery="timed")
    again = mpupdate.update(backend=fake, options=trace.options, timeout=trace.timeout, check=False)
    assert signature(again) == signature(result)


def test_the_trace_holds_what_the_update_did() -> None:
    fake = FakeMpClient("network-failure", delivery="timed")
    trace, result = record(backend=fake, timeout=TIMEOUT, scrub=False)
    scenario = trace.scenario
    assert result.outcome is Outcome.FAILED
    assert scenario.complete is not None
    assert scenario.complete.hresult == 0x80072EFD
    assert scenario.complete.at == fake.scenario.complete.at  # type: ignore[union-attr]
    assert scenario.notifications == fake.scenario.notifications
    assert scenario.versions_before == fake.scenario.versions_before
    assert [call.name for call in trace.calls][:2] == ["MpManagerOpen", "MpManagerVersionQuery"]
    [start] = [call for call in trace.calls if call.name == "MpUpdateStart"]
    assert start.hresult == 0 and start.argument == result.options
    assert trace.calls[-1] == TraceCall("MpHandleClose", 0)
    assert dict(trace.recorded_with)["mpupdate"] == mpupdate.__version__
    assert dict(trace.recorded_with)["product"] == fake.scenario.versions_before.product.version
    assert trace.timeout == TIMEOUT
    text = scenario.message_for(0x80072EFD)  # what MpErrorMessageFormat said, as it said it
    assert text is not None and text.strip() == result.message


def test_a_failing_start_is_recorded_as_the_call_that_failed() -> None:
    trace, result = record(backend=FakeMpClient("access-denied"), scrub=False)
    assert result.outcome is Outcome.FAILED
    failing = [c for c in trace.calls if c.hresult is not None and c.hresult & 0x80000000]
    assert failing and failing[0].hresult == result.hresult
    assert (trace.scenario.open_hresult or trace.scenario.start_hresult) == result.hresult
    assert signature(replay(trace)) == signature(result)


def test_a_timed_out_update_is_recorded_as_never_ending_with_its_timeout() -> None:
    trace, result = record(backend=FakeMpClient("hung", delivery="timed"), timeout=30)
    assert result.outcome is Outcome.TIMED_OUT
    assert trace.scenario.complete is None
    assert trace.timeout == 30
    assert [c.name for c in trace.calls].count("MpUpdateControl") >= 1
    assert signature(replay(trace)) == signature(result)


def test_the_recorder_is_a_backend_on_the_wrapped_backends_clock() -> None:
    fake = FakeMpClient("updated", delivery="timed")
    recorder = Recorder(fake)
    assert isinstance(recorder, Backend)
    assert recorder.clock is fake.clock
    result = mpupdate.update(backend=recorder)
    assert result.outcome is Outcome.UPDATED
    assert [c.name for c in recorder.calls] == [c.function for c in fake.calls]


# -- the format -----------------------------------------------------------------------------


def recorded(name: str = "updated-three-packages") -> Trace:
    return record(backend=FakeMpClient(name, delivery="timed"), timeout=TIMEOUT)[0]


def test_load_dump_load_is_exact() -> None:
    trace = recorded()
    text = trace.dumps()
    again = Trace.loads(text)
    assert again == trace
    assert again.dumps() == text
    assert Trace.from_dict(json.loads(text)) == trace
    data = json.loads(text)
    assert data["format"] == TRACE_FORMAT and data["version"] == 1
    assert Scenario.loads(text) == trace.scenario


def test_unknown_notification_numbers_survive_a_round_trip() -> None:
    trace = recorded("unknown-notification")
    unknown = [n.notify for n in trace.scenario.notifications if n.notify not in set(Notify)]
    assert unknown
    again = Trace.loads(trace.dumps())
    assert [n.notify for n in again.scenario.notifications] == [
        n.notify for n in trace.scenario.notifications
    ]
    assert again == trace


def fails(data: Any) -> ScenarioError:
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(ScenarioError) as caught:
        Trace.loads(text, source="t.json")
    error: ScenarioError = caught.value
    return error


def test_an_unknown_trace_version_fails_with_its_position_and_reason() -> None:
    data = json.loads(recorded().dumps())
    data["version"] = 2
    error = fails(data)
    assert (error.source, error.position) == ("t.json", "$.version")
    assert "reads trace format version 1" in error.problem and "2" in error.problem
    with pytest.raises(ScenarioError, match=r"\$\.version"):
        Scenario.loads(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "position", "reason"),
    [
        (
            lambda d: d["calls"].append({"name": "MpNope", "hresult": 0}),
            "$.calls[",
            "not an export",
        ),
        (lambda d: d["calls"][0].update(hresult="0xZZ"), "$.calls[0].hresult", "not an HRESULT"),
        (lambda d: d.update(calls={}), "$.calls", "expected a list"),
        (lambda d: d["recorded_with"].update(os=5), "$.recorded_with.os", "expected a string"),
        (lambda d: d["recording"].update(outcome="FINE"), "$.recording.outcome", "unknown"),
        (lambda d: d["recording"].update(speed=1), "$.recording.speed", "unknown key"),
        (lambda d: d["recording"].update(timeout=-1), "$.recording.timeout", "seconds"),
        (lambda d: d["notifications"][2].update(at=-1), "$.notifications[2].at", "seconds"),
        (lambda d: d.pop("recorded_with"), "$", "missing key 'recorded_with'"),
        (lambda d: d.update(extra=1), "$.extra", "unknown key"),
    ],
)
def test_a_malformed_trace_fails_with_its_position_and_reason(
    change: Any, position: str, reason: str
) -> None:
    data = json.loads(recorded().dumps())
    change(data)
    error = fails(data)
    assert error.position.startswith(position), error
    assert reason in error.problem, error


def test_a_trace_that_is_not_json_fails_with_line_and_column() -> None:
    error = fails('{"format": "mpupdate-trace",\n  "version": 1,,}')
    assert error.position == "line 2, column 16"


# -- scrubbing ------------------------------------------------------------------------------

USER, HOST, DOMAIN = "zorbalina", "WKS-QUUX42", "CONTOSOCORP"
SID = "S-1-5-21-3623811015-3361044348-30300820-1013"


def planted_scenario() -> Scenario:
    base = scenarios.get("network-failure")
    path = f"C:\\Users\\{USER}\\AppData\\Local\\Temp\\{HOST}\\mpam-fe.exe"
    notifications = tuple(
        n if n.data is None else dataclasses.replace(n, data=dataclasses.replace(n.data, path=path))
        for n in base.notifications
    )
    message = f"{DOMAIN}\\{USER} ({SID}) on {HOST}.{DOMAIN.lower()}.example cannot connect"
    return base.replace(notifications=notifications, messages=((0x80072EFD, message),))


def test_machine_specific_values_are_scrubbed_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USERNAME", USER)
    monkeypatch.setenv("USER", USER)
    monkeypatch.setenv("COMPUTERNAME", HOST)
    monkeypatch.setenv("USERDOMAIN", DOMAIN)
    monkeypatch.setattr("getpass.getuser", lambda: USER)
    monkeypatch.setattr("socket.gethostname", lambda: f"{HOST}.{DOMAIN.lower()}.example")
    out = tmp_path / "trace.json"
    scrubber = Scrubber(extra=["mpam-fe"])
    trace, result = record(
        out, backend=FakeMpClient(planted_scenario(), delivery="timed"), scrub=scrubber
    )
    assert USER in result.message  # the update itself saw the planted values
    text = out.read_text(encoding="utf-8")
    for planted in (USER, HOST, DOMAIN, SID, "S-1-5-21", "mpam-fe"):
        assert planted.lower() not in text.lower(), planted
    for placeholder in ("<user>", "<host>", "<domain>", "<sid>", "<redacted>"):
        assert placeholder in text, placeholder
    assert "C:\\\\Users\\\\<user>\\\\AppData" in text
    message = trace.scenario.message_for(0x80072EFD)
    assert message == "<domain>\\<user> (<sid>) on <host> cannot connect"
    # still a valid trace, replaying to the same outcome
    assert replay(out).outcome is result.outcome


def test_the_scrubber_leaves_words_that_merely_contain_a_value() -> None:
    scrubber = Scrubber(environ={"USERNAME": "ann", "COMPUTERNAME": "box1"})
    assert scrubber.scrub("planning ANN box1 box10") == "planning <user> <host> box10"
    assert scrubber.scrub(r"C:\Users\Public\x") == r"C:\Users\Public\x"
    assert scrubber.scrub("/home/bob/x") == "/home/<user>/x"
    assert Scrubber(environ={"USER": "a"}).scrub("a b") == "a b"  # too short to replace
