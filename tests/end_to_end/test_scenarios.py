"""Every built-in scenario, end to end through the public API, in every delivery mode."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

import mpupdate
from mpupdate import Outcome
from mpupdate.fakes import FakeMpClient, scenarios

MODES = ["immediate", "thread", "timed"]


class Expected(NamedTuple):
    outcome: Outcome
    hresult: int
    events: int
    reboot: bool
    av_after: Optional[str]
    error: type[mpupdate.UpdateError]
    anomalies: int = 0


EXPECTED = {
    "access-denied": Expected(
        Outcome.FAILED, 0x80070005, 0, False, None, mpupdate.UpdateAccessDeniedError
    ),
    "already-current": Expected(
        Outcome.ALREADY_CURRENT, 0x1, 5, False, "1.419.120.0", mpupdate.UpdateError
    ),
    "cancelled": Expected(
        Outcome.CANCELLED, 0x80004004, 36, False, "1.419.120.0", mpupdate.UpdateError
    ),
    "hung": Expected(Outcome.TIMED_OUT, 0x800705B4, 3, False, "1.419.120.0", mpupdate.UpdateError),
    "network-failure": Expected(
        Outcome.FAILED, 0x80072EFD, 9, False, "1.419.120.0", mpupdate.UpdateNetworkError
    ),
    "reboot-required": Expected(
        Outcome.UPDATED, 0x0, 17, True, "1.419.135.0", mpupdate.UpdateError
    ),
    "service-unavailable": Expected(
        Outcome.FAILED, 0x800106BA, 2, False, "1.419.120.0", mpupdate.UpdateServiceUnavailableError
    ),
    "unknown-notification": Expected(
        Outcome.UPDATED, 0x0, 17, False, "1.419.135.0", mpupdate.UpdateError, anomalies=1
    ),
    "updated": Expected(Outcome.UPDATED, 0x0, 16, False, "1.419.135.0", mpupdate.UpdateError),
    "updated-three-packages": Expected(
        Outcome.UPDATED, 0x0, 36, False, "1.419.135.0", mpupdate.UpdateError
    ),
}


def timeout_for(name: str, delivery: str) -> Optional[float]:
    if name != "hung":
        return None
    return 0.05 if delivery == "thread" else 5.0  # thread mode waits in real time


def test_the_table_covers_every_built_in_scenario() -> None:
    assert sorted(EXPECTED) == scenarios.names()


def check(result: mpupdate.UpdateResult, expected: Expected) -> None:
    assert result.outcome is expected.outcome
    assert result.hresult == expected.hresult
    assert len(result.events) == expected.events
    assert result.reboot_required is expected.reboot
    assert len(result.anomalies) == expected.anomalies
    assert result.ok is (expected.outcome in (Outcome.UPDATED, Outcome.ALREADY_CURRENT))
    if expected.av_after is None:
        assert result.versions_after is None
    else:
        assert result.versions_after is not None
        assert result.versions_after.av_signature.version == expected.av_after
    if result.events:
        assert result.events[0].notify is mpupdate.Notify.SIGUPDATE_START
        assert result.events[-1].notify is mpupdate.Notify.SIGUPDATE_COMPLETE


@pytest.mark.parametrize("delivery", MODES)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_update_returns_the_expected_result(name: str, delivery: str) -> None:
    fake = FakeMpClient(name, delivery=delivery)
    result = mpupdate.update(backend=fake, check=False, timeout=timeout_for(name, delivery))
    check(result, EXPECTED[name])
    assert result.source is mpupdate.Source.DEFAULT


@pytest.mark.parametrize("delivery", MODES)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_update_with_check_raises_for_every_failed_outcome(name: str, delivery: str) -> None:
    expected = EXPECTED[name]
    fake = FakeMpClient(name, delivery=delivery)
    if expected.outcome in (Outcome.UPDATED, Outcome.ALREADY_CURRENT):
        assert mpupdate.update(backend=fake).outcome is expected.outcome
        return
    with pytest.raises(mpupdate.UpdateError) as caught:
        mpupdate.update(backend=fake, timeout=timeout_for(name, delivery))
    error = caught.value
    assert type(error) is expected.error
    assert error.hresult == expected.hresult
    assert error.result is not None
    check(error.result, expected)
    assert f"0x{expected.hresult:08X}" in str(error)


@pytest.mark.parametrize("delivery", MODES)
@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"access-denied"}))
def test_client_start_update_gives_the_same_result(name: str, delivery: str) -> None:
    fake = FakeMpClient(name, delivery=delivery)
    with mpupdate.Client(fake) as client:
        before = client.version()
        with client.start_update() as operation:
            events = list(operation.events(timeout=timeout_for(name, delivery)))
            result = operation.wait()
    check(result, EXPECTED[name])
    if name == "hung":  # the iteration ended at the deadline; the abort's COMPLETE came after
        assert result.events == (*events, result.events[-1])
    else:
        assert result.events == tuple(events)
    assert result.versions_before == before


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"hung"}))
def test_every_delivery_mode_gives_identical_events(name: str) -> None:
    results = [
        mpupdate.update(backend=FakeMpClient(name, delivery=mode), check=False) for mode in MODES
    ]
    assert results[0].events == results[1].events == results[2].events
    assert results[0].anomalies == results[1].anomalies == results[2].anomalies


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"hung", "unknown-notification"}))
def test_built_in_scenarios_follow_the_strict_grammar(name: str) -> None:
    result = mpupdate.update(backend=FakeMpClient(name, delivery="timed"), check=False, strict=True)
    assert result.anomalies == ()


def test_unknown_notification_breaks_strict_mode() -> None:
    with pytest.raises(mpupdate.ProtocolError, match="UNKNOWN_0x800E"):
        mpupdate.update(backend=FakeMpClient("unknown-notification", delivery="timed"), strict=True)


def test_manager_open_failure_is_a_failed_result() -> None:
    fake = FakeMpClient(scenarios.get("updated").replace(open_hresult=0x800106BA))
    result = mpupdate.update(backend=fake, check=False)
    assert (result.outcome, result.hresult, result.events) == (Outcome.FAILED, 0x800106BA, ())
    with pytest.raises(mpupdate.UpdateServiceUnavailableError) as caught:
        mpupdate.update(backend=FakeMpClient(fake.scenario))
    assert caught.value.function == "MpManagerOpen"
    assert isinstance(caught.value, mpupdate.ServiceUnavailableError)


def test_backend_strings_select_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mpupdate.update(backend="fake:already-current").outcome is Outcome.ALREADY_CURRENT
    assert mpupdate.update(backend="fake").outcome is Outcome.UPDATED
    monkeypatch.setenv("MPUPDATE_BACKEND", "fake:reboot-required")
    assert mpupdate.update().reboot_required is True


def test_backend_string_may_name_a_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    scenarios.get("service-unavailable").replace(name="mine").dump(path)
    result = mpupdate.update(backend=f"fake:{path}", check=False)
    assert result.hresult == 0x800106BA


@pytest.mark.mpupdate_real  # searches for the real DLL on purpose (and finds none)
@pytest.mark.skipif(sys.platform == "win32", reason="MpClient.dll may exist on Windows")
def test_no_backend_on_linux_says_how_to_use_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPUPDATE_BACKEND", raising=False)
    monkeypatch.delenv("MPUPDATE_MPCLIENT_PATH", raising=False)
    with pytest.raises(mpupdate.BackendUnavailableError) as caught:
        mpupdate.update()
    text = str(caught.value)
    assert "MpClient.dll exists only on Windows with Microsoft Defender" in text
    assert "backend='fake'" in text
    assert "MPUPDATE_BACKEND=fake:updated" in text


def test_bad_backend_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown backend 'fakes'"):
        mpupdate.update(backend="fakes")
    with pytest.raises(TypeError, match="lacks MpManagerOpen, MpUpdateStart"):
        mpupdate.update(backend=object())  # type: ignore[arg-type]


@pytest.mark.mpupdate_real  # searches for the real DLL on purpose (and finds none)
@pytest.mark.skipif(sys.platform != "win32", reason="searches the Windows Defender folders")
def test_no_defender_on_windows_names_the_paths_tried_and_the_fake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mpupdate.backends import locate_mpclient

    found, _ = locate_mpclient()
    if found is not None:
        pytest.skip(f"this Windows has an MpClient.dll: {found}")
    monkeypatch.delenv("MPUPDATE_BACKEND", raising=False)
    monkeypatch.delenv("MPUPDATE_MPCLIENT_PATH", raising=False)
    with pytest.raises(mpupdate.BackendUnavailableError) as caught:
        mpupdate.update()
    text = str(caught.value)
    assert "MpClient.dll was not found in the Defender folders" in text
    assert "Windows Defender\\MpClient.dll" in text
    assert "backend='fake'" in text
