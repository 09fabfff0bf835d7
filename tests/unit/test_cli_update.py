"""``mpupdate update``, ``status`` and ``scenarios``: in-process (``mpupdate.cli.main``) with the
output captured, and a few runs of ``python -m mpupdate`` (from a folder outside the checkout)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest

import mpupdate
from mpupdate.backends import ENV_BACKEND
from mpupdate.cli import main
from mpupdate.fakes import FakeMpClient
from mpupdate.fakes.clock import DEFAULT_START
from mpupdate.fakes.scenarios import get, names

SCENARIOS = Path(mpupdate.__file__).resolve().parent / "fakes" / "scenarios"

#: Each built-in scenario's exit status through ``update --simulate NAME --timeout 60``.
EXIT_STATUS = {
    "access-denied": 4,
    "already-current": 0,
    "cancelled": 3,
    "hung": 3,
    "network-failure": 1,
    "reboot-required": 6,
    "service-unavailable": 4,
    "unknown-notification": 0,
    "updated": 0,
    "updated-three-packages": 0,
}

RESULT_FIELDS = {
    "type",
    "outcome",
    "hresult",
    "hresult_name",
    "message",
    "hint",
    "reboot_required",
    "attempts",
    "versions_before",
    "versions_after",
    "signature_age_hours",
    "duration_seconds",
    "anomalies",
    "exit_status",
}
EVENT_FIELDS = {
    "type",
    "source",
    "notify",
    "hresult",
    "percent",
    "phase",
    "package",
    "packages",
    "path",
}
ATTEMPT_FIELDS = {"source", "outcome", "hresult", "hresult_name", "message", "duration_seconds"}

#: Each built-in scenario's AV signature age in hours once ``update`` ends (on the simulated
#: clock, which starts at DEFAULT_START): a fresh update makes it 0; a failed one leaves the
#: 2025-12-30T09:00Z signatures (39 h before the start) as they were; already-current's are 3 h.
AGE_HOURS = {
    "already-current": 3 + 1.8 / 3600,
    "cancelled": 39 + 60 / 3600,  # (--timeout 60 ends it first)
    "hung": 39 + 60 / 3600,  # (--timeout 60)
    "network-failure": 39 + 33.8 / 3600,
    "reboot-required": 0.0,
    "service-unavailable": 39 + 2 / 3600,
    "unknown-notification": 0.0,
    "updated": 0.0,
    "updated-three-packages": 0.0,
}


@pytest.fixture(autouse=True)
def _no_backend_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BACKEND, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    """Every line of ``out`` parsed as JSON: events with the documented fields, then one
    result with exactly the documented fields."""
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and all(isinstance(line, dict) for line in lines)
    *events, result = lines
    assert all(event["type"] == "event" and set(event) == EVENT_FIELDS for event in events)
    assert result["type"] == "result" and set(result) == RESULT_FIELDS
    assert all(set(attempt) == ATTEMPT_FIELDS for attempt in result["attempts"])
    return lines


def dated_scenario(tmp_path: Path, updated_at: Optional[datetime]) -> str:
    """``updated``, its AV signatures (before and after) stamped ``updated_at`` (None: never)."""
    body = json.loads((SCENARIOS / "updated.json").read_text(encoding="utf-8"))
    for when in ("versions_before", "versions_after"):
        version = body[when]["av_signature"]["version"]
        if updated_at is None:
            body[when]["av_signature"] = version
        else:
            stamp = updated_at.isoformat().replace("+00:00", "Z")
            body[when]["av_signature"] = {"version": version, "updated_at": stamp}
    path = tmp_path / "dated.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


#: When ``updated`` ends on the simulated clock.
UPDATED_ENDS = DEFAULT_START + timedelta(seconds=8.4)


def test_every_scenario_has_an_expected_status() -> None:
    assert sorted(EXIT_STATUS) == names()


@pytest.mark.parametrize("scenario", sorted(EXIT_STATUS))
def test_exit_status_of_each_scenario(capsys: pytest.CaptureFixture[str], scenario: str) -> None:
    status, out, err = run(capsys, "update", "--simulate", scenario, "--timeout", "60")
    assert status == EXIT_STATUS[scenario], (out, err)
    assert out.startswith("outcome: ")
    if status not in (0, 6):
        assert "mpupdate: error: update" in err


@pytest.mark.parametrize("scenario", sorted(EXIT_STATUS))
def test_json_lines(capsys: pytest.CaptureFixture[str], scenario: str) -> None:
    status, out, err = run(capsys, "update", "--simulate", scenario, "--timeout", "60", "--json")
    *events, result = json_lines(out)
    assert result["exit_status"] == status == EXIT_STATUS[scenario]
    notify = [event["notify"] for event in events]
    if status != 3:  # (cancelled ends after ten minutes: --timeout 60 comes first)
        assert len(notify) >= len(get(scenario).notifications)
    if get(scenario).complete is not None and status != 3:
        assert notify[-1] == "SIGUPDATE_COMPLETE"
    assert "mpupdate: [" not in err  # progress went to stdout, as JSON
    for event in events:
        assert re.fullmatch(r"0x[0-9A-F]{8}", event["hresult"])
        assert 0 <= event["percent"] <= 100
    assert [a["source"] for a in result["attempts"]] == ["default"]
    assert all(event["source"] == "default" for event in events)
    if scenario in AGE_HOURS:
        assert result["signature_age_hours"] == pytest.approx(AGE_HOURS[scenario], abs=1e-9)
    else:  # MpUpdateStart failed: no versions after it
        assert result["versions_after"] is None and result["signature_age_hours"] is None
    assert re.fullmatch(r"0x[0-9A-F]{8}", result["hresult"])
    assert (result["hint"] is None) == (status in (0, 6))
    assert result["reboot_required"] == (scenario == "reboot-required")
    if scenario == "updated":
        assert result["outcome"] == "UPDATED" and result["hresult_name"] == "S_OK"
        assert result["versions_before"]["av_signature"] == "1.419.120.0"
        assert result["versions_after"]["av_signature"] == "1.419.135.0"
        assert result["duration_seconds"] == pytest.approx(8.4)
        assert events[-1]["notify"] == "SIGUPDATE_COMPLETE" and events[-1]["percent"] == 100
    if scenario == "unknown-notification":
        assert len(result["anomalies"]) == 1


def test_human_progress_is_sparse_and_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "update", "--simulate", "updated-three-packages")
    progress = [line for line in err.splitlines() if line.startswith("mpupdate: [default]")]
    events = len(get("updated-three-packages").notifications) + 1
    assert status == 0 and 3 < len(progress) < events
    assert progress[-1].endswith("100% done, package 3 of 3")
    assert "outcome: UPDATED" in out and "mpupdate: [" not in out
    status, out, err = run(capsys, "update", "--simulate", "updated", "--no-progress")
    assert status == 0 and err == "" and "versions after" in out


def test_fallback_tries_every_source_until_one_succeeds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["update", "--source", "wsus", "--source", "mmpc", "--json"]
    status, out, _ = run(capsys, *argv, "--simulate", "network-failure")
    result = json_lines(out)[-1]
    assert status == 1 and result["outcome"] == "FAILED"
    assert [(a["source"], a["outcome"]) for a in result["attempts"]] == [
        ("wsus", "FAILED"),
        ("mmpc", "FAILED"),
    ]
    for attempt in result["attempts"]:
        assert attempt["hresult"] == "0x80072EFD"
        assert attempt["hresult_name"] == "WININET_E_CANNOT_CONNECT"
        assert attempt["duration_seconds"] == pytest.approx(33.8)
    assert result["duration_seconds"] == pytest.approx(67.6)

    status, out, _ = run(capsys, *argv, "--simulate", "already-current")
    result = json_lines(out)[-1]
    assert status == 0
    assert [(a["source"], a["outcome"]) for a in result["attempts"]] == [
        ("wsus", "ALREADY_CURRENT")
    ]


def test_fallback_shares_one_timeout_and_stops_when_cancelled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["update", "--source", "wsus", "--source", "mmpc", "--source", "default", "--json"]
    status, out, _ = run(capsys, *argv, "--simulate", "network-failure", "--timeout", "50")
    result = json_lines(out)[-1]
    assert status == 3 and result["outcome"] == "TIMED_OUT"
    assert [(a["source"], a["outcome"]) for a in result["attempts"]] == [
        ("wsus", "FAILED"),
        ("mmpc", "TIMED_OUT"),
    ]  # 33.8 s, then the 16.2 s left of --timeout 50
    assert [a["duration_seconds"] for a in result["attempts"]] == pytest.approx([33.8, 16.2])
    assert result["duration_seconds"] == pytest.approx(50)
    status, out, _ = run(capsys, *argv, "--simulate", "cancelled", "--timeout", "3600")
    result = json_lines(out)[-1]
    assert status == 3 and [(a["source"], a["outcome"]) for a in result["attempts"]] == [
        ("wsus", "CANCELLED")
    ]
    events = json_lines(out)[:-1]
    assert {event["source"] for event in events} == {"wsus"}


@pytest.mark.parametrize(
    ("hresult", "status", "hint"),
    [
        ("0x80070005", 4, "hint: run from an elevated (administrator) prompt"),
        ("0x8024402C", 1, "hint: check DNS and the WinHTTP proxy"),
        ("0x800106BA", 4, "hint: the Microsoft Defender Antivirus service (WinDefend) is not"),
        ("0x80240022", 1, "hint: try the MMPC source (--source mmpc)"),  # the command's words
    ],
)
def test_a_failure_prints_its_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hresult: str, status: int, hint: str
) -> None:
    body = json.loads((SCENARIOS / "service-unavailable.json").read_text(encoding="utf-8"))
    body["complete"]["hresult"] = hresult
    path = tmp_path / "failing.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    got, out, err = run(capsys, "update", "--simulate", str(path), "--no-progress")
    assert got == status
    assert hint in err.splitlines()[-1] and f"mpupdate: error: update FAILED: {hresult}" in err
    got, out, _ = run(capsys, "update", "--simulate", str(path), "--json")
    assert hint.removeprefix("hint: ") in json_lines(out)[-1]["hint"]


def test_fallback_in_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "update", "--source", "file-shares", "--source", "microsoft-update",
        "--simulate", "network-failure", "--no-progress",
    )  # fmt: skip
    assert status == 1
    assert "attempt: file-shares FAILED 0x80072EFD" in out
    assert "attempt: microsoft-update FAILED" in out
    assert "hint: check the firewall" in err


@pytest.mark.parametrize(
    ("hours_old", "max_age", "expected"), [(5, 6, 0), (5, 4, 5), (5, 5, 0), (0.5, 0.25, 5)]
)
def test_max_age(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    hours_old: float,
    max_age: float,
    expected: int,
) -> None:
    scenario = dated_scenario(tmp_path, UPDATED_ENDS - timedelta(hours=hours_old))
    argv = ["update", "--simulate", scenario, "--max-age", str(max_age), "--json"]
    status, out, err = run(capsys, *argv)
    result = json_lines(out)[-1]
    assert status == result["exit_status"] == expected
    assert result["outcome"] == "UPDATED"  # stale or not, the update itself succeeded
    assert result["signature_age_hours"] == hours_old  # (an age of exactly max_age passes)
    assert ("--max-age allows" in err) == (expected == 5)


def test_max_age_with_an_unknown_age_is_stale(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    undated = dated_scenario(tmp_path, None)
    status, out, err = run(capsys, "update", "--simulate", undated, "--max-age", "1e6")
    assert status == 5 and "of unknown age" in err and "outcome: UPDATED" in out
    assert run(capsys, "update", "--simulate", undated)[0] == 0  # no --max-age: no verdict
    # an environment problem still wins
    assert run(capsys, "update", "--simulate", "access-denied", "--max-age", "1")[0] == 4


@pytest.mark.parametrize("scenario", sorted(EXIT_STATUS))
@pytest.mark.parametrize("max_age", [24, 2])
def test_max_age_of_every_scenario(
    capsys: pytest.CaptureFixture[str], scenario: str, max_age: float
) -> None:
    status, out, _ = run(
        capsys, "update", "--simulate", scenario, "--timeout", "60", "--max-age", str(max_age),
        "--json",
    )  # fmt: skip
    age = AGE_HOURS.get(scenario)
    if EXIT_STATUS[scenario] == 4:
        expected = 4  # an environment problem wins over stale signatures
    elif age is None or age > max_age:
        expected = 5  # stale, whatever the update did (timed out, failed, cancelled)
    else:
        expected = EXIT_STATUS[scenario]
    assert status == json_lines(out)[-1]["exit_status"] == expected


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "update", "--source", "carrier-pigeon")[0] == 2
    assert run(capsys, "update", "--simulate", "no-such-scenario")[0] == 2
    assert run(capsys, "update", "--simulate", "updated", "--max-age", "-1")[0] == 2
    assert run(capsys, "update", "--simulate", "updated", "--timeout", "inf")[0] == 2
    status, _, err = run(capsys, "update", "--simulate", "hung")
    assert status == 2 and "--timeout" in err
    assert run(capsys, "status", "--json", "--openmetrics")[0] == 2


def test_help_documents_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "update", "--help")
    assert status == 0
    for code in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert re.search(rf"^  {code} ", out, re.MULTILINE), code
    assert mpupdate.cli.__doc__ is not None and "130" in mpupdate.cli.__doc__


def test_no_defender(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    status, out, err = run(capsys, "update")
    assert (status, out) == (4, "")
    assert "no Microsoft Defender" in err and "--simulate" in err
    status, out, err = run(capsys, "update", "--json")
    result = json.loads(out)
    assert status == result["exit_status"] == 4 and result["attempts"] == []
    status, out, err = run(capsys, "status")
    assert (status, out) == (4, "") and "mpupdate status --simulate" in err


def test_backend_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_BACKEND, "fake:reboot-required")
    assert run(capsys, "update", "--no-progress")[0] == 6
    monkeypatch.setenv(ENV_BACKEND, "bogus")
    assert run(capsys, "update")[0] == 2


#: The built-in scenarios' platform components and signatures were updated at these times.
PLATFORM_UPDATED = datetime(2025, 12, 10, 3, tzinfo=timezone.utc)
SIGNATURES_UPDATED = datetime(2025, 12, 30, 9, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("simulate", "variable", "simulated"),
    [
        ("updated", None, True),
        (None, "fake:updated", True),
        (None, "fake", True),
        (None, "dll", False),
        (None, "dll:C:\\elsewhere\\MpClient.dll", False),
        (None, None, False),
    ],
)
def test_which_runs_are_simulated(
    monkeypatch: pytest.MonkeyPatch,
    simulate: Optional[str],
    variable: Optional[str],
    simulated: bool,
) -> None:
    # A simulated run keeps its record apart from the machine's (last-update-simulated.json).
    if variable is not None:
        monkeypatch.setenv(ENV_BACKEND, variable)
    assert mpupdate.cli._simulated(simulate) is simulated


def test_a_backend_variable_run_keeps_the_simulated_record(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MPUPDATE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv(ENV_BACKEND, "fake:already-current")
    assert run(capsys, "update", "--no-progress")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-update-simulated.json"]


def test_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "status", "--simulate", "updated")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "simulated clock      2026-01-01T00:00:00Z"
    assert "engine               1.1.24090.11  updated 2025-12-10T03:00:00Z (525.0 h ago)" in lines
    assert "av_signature         1.419.120.0  updated 2025-12-30T09:00:00Z (39.0 h ago)" in lines
    assert out.splitlines()[-1] == "last update          none recorded"
    updated_at = DEFAULT_START - timedelta(hours=3)
    status, out, _ = run(
        capsys, "status", "--simulate", dated_scenario(tmp_path, updated_at), "--json"
    )
    body = json.loads(out)
    assert status == 0 and body["type"] == "status" and body["last_update"] is None
    assert (body["now"], body["simulated"]) == ("2026-01-01T00:00:00Z", True)
    assert body["components"]["av_signature"] == {
        "version": "1.419.120.0",
        "updated_at": "2025-12-31T21:00:00Z",
        "age_seconds": 3 * 3600.0,
    }
    assert body["signature_age_hours"] == 3.0
    assert body["components"]["engine"] == {
        "version": "1.1.24090.11",
        "updated_at": "2025-12-10T03:00:00Z",
        "age_seconds": (DEFAULT_START - PLATFORM_UPDATED).total_seconds(),
    }
    undated = dated_scenario(tmp_path, None)
    body = json.loads(run(capsys, "status", "--simulate", undated, "--json")[1])
    assert body["components"]["av_signature"]["age_seconds"] is None
    assert body["signature_age_hours"] is None


def openmetrics(text: str) -> dict[str, Any]:
    """``text`` parsed by prometheus_client's OpenMetrics parser: {family name: family}."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    parsed = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    families = {family.name: family for family in parsed}
    assert all(family.type == "gauge" for family in families.values())  # (textfile collectors)
    return families


def samples(family: Any) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}


def test_status_openmetrics(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    scenario = dated_scenario(tmp_path, DEFAULT_START - timedelta(hours=2))
    status, out, err = run(capsys, "status", "--simulate", scenario, "--openmetrics")
    assert status == 0 and err == ""
    families = openmetrics(out)
    assert set(families) == {
        "mpupdate_component_info",
        "mpupdate_signature_updated_timestamp_seconds",
        "mpupdate_signature_age_seconds",
    }  # no update recorded yet
    info = samples(families["mpupdate_component_info"])
    assert len(info) == 8 and set(info.values()) == {1.0}
    assert info[(("component", "engine"), ("version", "1.1.24090.11"))] == 1.0
    ages = samples(families["mpupdate_signature_age_seconds"])
    assert ages == {
        (("component", "av_signature"),): 7200.0,
        (("component", "as_signature"),): 39 * 3600.0,
        (("component", "nis_signature"),): 39 * 3600.0,
    }
    stamps = samples(families["mpupdate_signature_updated_timestamp_seconds"])
    assert (
        stamps[(("component", "av_signature"),)] == (DEFAULT_START - timedelta(hours=2)).timestamp()
    )
    assert stamps[(("component", "nis_signature"),)] == SIGNATURES_UPDATED.timestamp()
    assert families["mpupdate_signature_age_seconds"].unit == "seconds"


@pytest.mark.parametrize(
    ("scenario", "outcome", "hresult", "success", "exit_status", "duration"),
    [
        ("network-failure", "FAILED", "0x80072EFD", 0, 1, 67.6),
        ("reboot-required", "UPDATED", "0x00000000", 1, 6, 8.4),
        ("already-current", "ALREADY_CURRENT", "0x00000001", 1, 0, 1.8),
    ],
)
def test_status_reports_the_last_update(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    scenario: str,
    outcome: str,
    hresult: str,
    success: int,
    exit_status: int,
    duration: float,
) -> None:
    monkeypatch.setenv("MPUPDATE_STATE_DIR", str(tmp_path / "state"))
    before = datetime.now(timezone.utc).timestamp()
    sources = ["--source", "wsus", "--source", "mmpc"]
    assert run(capsys, "update", "--simulate", scenario, *sources, "--no-progress")[0] == (
        exit_status
    )
    after = datetime.now(timezone.utc).timestamp()
    assert (tmp_path / "state" / "last-update-simulated.json").is_file()
    assert not (tmp_path / "state" / "last-update.json").exists()  # not the machine's record

    status, out, err = run(capsys, "status", "--simulate", "updated", "--openmetrics")
    assert status == 0 and err == ""
    families = openmetrics(out)
    (labels,) = samples(families["mpupdate_last_update_info"])
    assert dict(labels)["outcome"] == outcome and dict(labels)["hresult"] == hresult
    assert samples(families["mpupdate_last_update_success"]) == {(): success}
    assert samples(families["mpupdate_last_update_exit_status"]) == {(): exit_status}
    assert samples(families["mpupdate_last_update_duration_seconds"]) == {
        (): pytest.approx(duration)
    }
    finished = samples(families["mpupdate_last_update_timestamp_seconds"])[()]
    assert before <= finished <= after

    body = json.loads(run(capsys, "status", "--simulate", "updated", "--json")[1])
    last = body["last_update"]
    assert (last["outcome"], last["hresult"], last["exit_status"]) == (
        outcome,
        hresult,
        exit_status,
    )
    assert [a["source"] for a in last["attempts"]] == ["wsus", "mmpc"][: len(last["attempts"])]
    text = run(capsys, "status", "--simulate", "updated")[1]
    assert text.splitlines()[-1].startswith(f"last update          {outcome} ({hresult} ")


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"type": "result"}',
        b'{"type": "result", "outcome": "UPDATED", "hresult": "0x0", "hresult_name": "S_OK", '
        b'"exit_status": "0", "duration_seconds": 1, "finished_at": "2026-01-01T00:00:00Z"}',
        b'{"type": "result", "outcome": "UPDATED", "hresult": "0x0", "hresult_name": "S_OK", '
        b'"exit_status": 0, "duration_seconds": 1, "finished_at": "yesterday"}',
        b'{"type": "result", "outcome": "UPDATED", "hresult": "0x0", "hresult_name": "S_OK", '
        b'"exit_status": 0, "duration_seconds": NaN, "finished_at": "2026-01-01T00:00:00Z"}',
    ],
)
def test_a_damaged_record_is_reported_and_ignored(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: bytes,
) -> None:
    monkeypatch.setenv("MPUPDATE_STATE_DIR", str(tmp_path))
    (tmp_path / "last-update-simulated.json").write_bytes(content)
    status, out, err = run(capsys, "status", "--simulate", "updated", "--openmetrics")
    assert status == 0
    assert "mpupdate: warning: the last update's record is ignored" in err
    assert "last-update-simulated.json" in err and "the next update rewrites it" in err
    assert "mpupdate_last_update" not in out
    openmetrics(out)
    # and the next update does rewrite it
    assert run(capsys, "update", "--simulate", "updated", "--no-progress")[0] == 0
    status, out, err = run(capsys, "status", "--simulate", "updated", "--openmetrics")
    assert err == "" and "mpupdate_last_update_success 1" in out


def test_labels_from_a_record_are_escaped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MPUPDATE_STATE_DIR", str(tmp_path))
    odd = 'A "quoted"\\ back\\slash\nnewline'
    record = {
        "type": "result",
        "outcome": odd,
        "hresult": "0x80004005",
        "hresult_name": "E_FAIL",
        "exit_status": 1,
        "duration_seconds": 2.5,
        "finished_at": "2026-01-01T00:00:00Z",
    }
    (tmp_path / "last-update-simulated.json").write_text(json.dumps(record), encoding="utf-8")
    status, out, _ = run(capsys, "status", "--simulate", "updated", "--openmetrics")
    (labels,) = samples(openmetrics(out)["mpupdate_last_update_info"])
    assert status == 0 and dict(labels)["outcome"] == odd


def test_an_unwritable_record_is_a_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    monkeypatch.setenv("MPUPDATE_STATE_DIR", str(tmp_path / "a-file" / "state"))
    status, out, err = run(capsys, "update", "--simulate", "updated", "--json")
    assert status == 0 and json_lines(out)[-1]["exit_status"] == 0
    assert "mpupdate: warning: the result was not recorded" in err
    assert "MPUPDATE_STATE_DIR" in err


def test_where_the_record_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mpupdate import _lastrun

    monkeypatch.delenv("MPUPDATE_STATE_DIR")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert _lastrun.path(False) == os.path.join(str(tmp_path), "mpupdate", "last-update.json")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))  # (what expanduser reads on Windows)
    assert _lastrun.path(True) == os.path.join(
        str(tmp_path), ".local", "state", "mpupdate", "last-update-simulated.json"
    )
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("PROGRAMDATA", str(tmp_path / "ProgramData"))
    assert _lastrun.path(False) == os.path.join(
        str(tmp_path / "ProgramData"), "mpupdate", "last-update.json"
    )


def test_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "scenarios")
    lines = out.splitlines()
    assert status == 0 and [line.split()[0] for line in lines] == names()
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # each with its description


# -- as a program -------------------------------------------------------------------------------


def command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "mpupdate", *argv]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_BACKEND}
    env.update(extra)
    return env


@pytest.mark.parametrize("scenario", sorted(EXIT_STATUS))
def test_program_every_scenario_as_json_lines(tmp_path: Path, scenario: str) -> None:
    done = subprocess.run(
        command("update", "--simulate", scenario, "--timeout", "60", "--json"),
        capture_output=True, text=True, check=False, cwd=tmp_path, env=child_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == EXIT_STATUS[scenario], done.stderr
    *events, result = json_lines(done.stdout)  # nothing on stdout but JSON
    assert result["exit_status"] == done.returncode
    assert result["reboot_required"] is (scenario == "reboot-required")
    assert events or scenario == "access-denied"  # (MpUpdateStart failed: nothing to tell)
    assert "\x1b" not in done.stdout + done.stderr  # no terminal here: no escape codes
    assert "mpupdate: [" not in done.stderr  # --json off a terminal: no progress lines


def test_program_writes_text_it_cannot_encode_as_escapes(tmp_path: Path) -> None:
    # A path from the DLL with a lone surrogate (UTF-16 need not be well formed) and an accent:
    # JSON Lines escape them; the human output on an ASCII-only stdout escapes the accent; the
    # record is written. Before, the first such event raised UnicodeEncodeError inside the
    # progress function, which aborted the update.
    body = json.loads((SCENARIOS / "updated.json").read_text(encoding="utf-8"))
    odd = "C:\\Temp\\bad\ud800name\u00e9.exe"
    for item in body["notifications"]:
        if item.get("data", {}).get("path"):
            item["data"]["path"] = odd
    scenario = tmp_path / "odd-paths.json"
    scenario.write_text(json.dumps(body), encoding="utf-8")
    state = tmp_path / "state"
    for env in ({}, {"PYTHONIOENCODING": "ascii"}):
        done = subprocess.run(
            command("update", "--simulate", str(scenario), "--json"),
            capture_output=True, check=False, cwd=tmp_path, timeout=60,
            env=child_env(MPUPDATE_STATE_DIR=str(state), **env),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        *events, result = json_lines(done.stdout.decode("ascii"))  # ASCII, whatever the locale
        assert result["outcome"] == "UPDATED"
        assert odd in {event["path"] for event in events}
    record = json.loads((state / "last-update-simulated.json").read_text(encoding="ascii"))
    assert record["exit_status"] == 0
    # the DLL's message for a failure, in German, on an ASCII-only stdout and stderr
    failing = json.loads((SCENARIOS / "network-failure.json").read_text(encoding="utf-8"))
    failing["messages"] = {"0x80072EFD": "Keine Verbindung m\u00f6glich \ud800"}
    scenario.write_text(json.dumps(failing), encoding="utf-8")
    done = subprocess.run(
        command("update", "--simulate", str(scenario), "--no-progress"),
        capture_output=True, check=False, cwd=tmp_path, timeout=60,
        env=child_env(MPUPDATE_STATE_DIR=str(state), PYTHONIOENCODING="ascii"),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert b"Keine Verbindung m\\xf6glich \\ud800" in done.stdout
    assert b"Traceback" not in done.stderr


def test_program_no_defender(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("Windows may have Defender")
    done = subprocess.run(
        command("update"),
        capture_output=True, text=True, check=False, cwd=tmp_path, env=child_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 4 and done.stdout == ""
    assert "no Microsoft Defender" in done.stderr and "--simulate" in done.stderr


#: Runs the command in a child on a Python fake whose hung update waits in real time, and writes
#: what the fake saw once the command returned: the exit status, the handles left open, aborts.
CTRL_C_CHILD = """
import json, sys
import mpupdate.backends
from mpupdate.cli import main
from mpupdate.fakes import FakeMpClient

fake = FakeMpClient("hung", delivery="thread")
mpupdate.backends.resolve_backend = lambda spec=None: fake
try:
    status = main(sys.argv[2:])
finally:
    report = {
        "open_handles": len(fake.open_handles),
        "aborted": [update.aborted for update in fake.updates],
        "violations": [str(v) for v in fake.violations],
    }
    with open(sys.argv[1], "w", encoding="utf-8") as stream:
        json.dump(report, stream)
sys.exit(status)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX-only here")
@pytest.mark.parametrize("json_output", [True, False])
def test_program_ctrl_c(tmp_path: Path, json_output: bool) -> None:
    script = tmp_path / "child.py"
    script.write_text(CTRL_C_CHILD, encoding="utf-8")
    report = tmp_path / "report.json"
    argv = ["update", "--timeout", "3600", "--source", "wsus", "--source", "mmpc"]
    argv += ["--json"] if json_output else []
    child = subprocess.Popen(
        [sys.executable, str(script), str(report), *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=child_env(**{ENV_BACKEND: "fake:hung"}),
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stderr is not None
        if json_output:
            assert json.loads(child.stdout.readline())["type"] == "event"
        else:  # the first progress line says the update is running
            assert child.stderr.readline().startswith("mpupdate: [wsus]")
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    assert "mpupdate: interrupted: the update was aborted" in err
    seen = json.loads(report.read_text(encoding="utf-8"))
    assert seen == {"open_handles": 0, "aborted": [True], "violations": []}
    if json_output:
        result = json.loads(out.splitlines()[-1])
        assert result["type"] == "result" and result["outcome"] == "CANCELLED"
        assert result["exit_status"] == 130
        assert [(a["source"], a["outcome"]) for a in result["attempts"]] == [
            ("wsus", "CANCELLED")
        ]  # the fallback stopped: mmpc was never tried
    else:
        assert out.startswith("outcome: CANCELLED (0x80004004 E_ABORT: interrupted (Ctrl-C))")


def test_without_rich_a_terminal_gets_plain_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mpupdate import _display

    monkeypatch.setattr(_display, "_is_terminal", lambda stream: True)
    monkeypatch.setitem(sys.modules, "rich.console", None)  # import rich.console: ImportError
    status, out, err = run(capsys, "update", "--simulate", "updated")
    assert status == 0 and out.startswith("outcome: UPDATED")
    lines = err.splitlines()
    assert lines[0] == _display.RICH_MISSING and "pip install 'mpupdate[cli]'" in lines[0]
    assert lines[-1] == "mpupdate: [default] 100% done, package 1 of 1"


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone away (``mpupdate ... | head -1``, after one line)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def write(self, text: str) -> int:
        if self.lines >= 1:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines += text.count("\n")
        return super().write(text)


def test_a_closed_stdout_aborts_the_update_and_stops_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeMpClient("updated-three-packages", delivery="timed")
    monkeypatch.setattr(mpupdate.backends, "resolve_backend", lambda spec=None: fake)
    monkeypatch.setenv(ENV_BACKEND, "fake:updated-three-packages")
    pipe = ClosedPipe()
    monkeypatch.setattr(sys, "stdout", pipe)
    assert main(["update", "--json"]) == 141
    assert pipe.getvalue().count("\n") == 1  # the line written before the reader left
    assert fake.updates[0].aborted and fake.open_handles == {}
