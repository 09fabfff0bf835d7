"""``mpupdate update``, ``status`` and ``scenarios``: in-process (``mpupdate.cli.main``) with the
output captured, and a few runs of ``python -m mpupdate`` (from a folder outside the checkout)."""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import mpupdate
from mpupdate.backends import ENV_BACKEND
from mpupdate.cli import main
from mpupdate.fakes import FakeMpClient
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
}
EVENT_FIELDS = {"type", "notify", "hresult", "percent", "phase", "package", "packages", "path"}


@pytest.fixture(autouse=True)
def _no_backend_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BACKEND, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and all(isinstance(line, dict) for line in lines)
    *events, result = lines
    assert all(event["type"] == "event" and set(event) >= EVENT_FIELDS for event in events)
    assert result["type"] == "result" and set(result) >= RESULT_FIELDS
    return lines


def dated_scenario(tmp_path: Path, updated_at: datetime) -> str:
    """``updated``, its AV signatures (before and after) stamped ``updated_at``."""
    body = json.loads((SCENARIOS / "updated.json").read_text(encoding="utf-8"))
    stamp = updated_at.isoformat().replace("+00:00", "Z")
    for when in ("versions_before", "versions_after"):
        version = body[when]["av_signature"]
        body[when]["av_signature"] = {"version": version, "updated_at": stamp}
    path = tmp_path / "dated.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    return str(path)


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


def test_fallback_in_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "update", "--source", "file-shares", "--source", "microsoft-update",
        "--simulate", "network-failure", "--no-progress",
    )  # fmt: skip
    assert status == 1
    assert "attempt: file-shares FAILED 0x80072EFD" in out
    assert "attempt: microsoft-update FAILED" in out
    assert "hint: check the firewall" in err


@pytest.mark.parametrize(("hours_old", "max_age", "expected"), [(5, 6, 0), (5, 4, 5)])
def test_max_age(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    hours_old: float,
    max_age: float,
    expected: int,
) -> None:
    updated_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=hours_old)
    scenario = dated_scenario(tmp_path, updated_at)
    argv = ["update", "--simulate", scenario, "--max-age", str(max_age), "--json"]
    status, out, err = run(capsys, *argv)
    result = json_lines(out)[-1]
    assert status == result["exit_status"] == expected
    assert result["outcome"] == "UPDATED"  # stale or not, the update itself succeeded
    assert result["signature_age_hours"] == pytest.approx(hours_old, abs=0.1)
    assert ("--max-age allows" in err) == (expected == 5)


def test_max_age_against_a_2026_stamp(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    updated_at = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    age = (datetime.now(timezone.utc) - updated_at).total_seconds() / 3600
    scenario = dated_scenario(tmp_path, updated_at)
    assert run(capsys, "update", "--simulate", scenario, "--max-age", str(age + 24))[0] == 0
    assert run(capsys, "update", "--simulate", scenario, "--max-age", str(age - 24))[0] == 5


def test_max_age_with_an_unknown_age_is_stale(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "update", "--simulate", "updated", "--max-age", "1e6")
    assert status == 5 and "of unknown age" in err
    # an environment problem still wins
    assert run(capsys, "update", "--simulate", "access-denied", "--max-age", "1")[0] == 4


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


def test_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "status", "--simulate", "updated")
    assert status == 0 and "engine" in out and "1.419.120.0" in out
    updated_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    status, out, _ = run(
        capsys, "status", "--simulate", dated_scenario(tmp_path, updated_at), "--json"
    )
    body = json.loads(out)
    assert status == 0 and body["type"] == "status"
    av = body["components"]["av_signature"]
    assert av["version"] == "1.419.120.0"
    assert datetime.fromisoformat(av["updated_at"].replace("Z", "+00:00")) == updated_at
    assert av["age_seconds"] == pytest.approx(3 * 3600, abs=60)
    assert body["signature_age_hours"] == pytest.approx(3, abs=0.02)
    assert body["components"]["engine"] == {
        "version": "1.1.24090.11",
        "updated_at": None,
        "age_seconds": None,
    }


# -- a small strict parser of the OpenMetrics text format -----------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(rf"({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)\}})? (\S+)")
_DESCRIPTOR = re.compile(rf"# (TYPE|HELP|UNIT) ({_NAME}) (.*)")


def parse_openmetrics(text: str) -> dict[str, dict[str, Any]]:
    """``{family: {"type", "help", "unit", "samples": [(labels, value)]}}``; asserts validity."""
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    families: dict[str, dict[str, Any]] = {}
    current = None
    for line in text.splitlines()[:-1]:
        descriptor = _DESCRIPTOR.fullmatch(line)
        if descriptor:
            kind, name, value = descriptor.groups()
            if name != current:
                assert name not in families, f"family {name} is interleaved"
                families[name] = {"samples": []}
                current = name
            assert kind.lower() not in families[name], f"two {kind} for {name}"
            families[name][kind.lower()] = value
            continue
        assert not line.startswith("#"), f"unexpected comment {line!r}"
        sample = _SAMPLE.fullmatch(line)
        assert sample, f"not a sample line: {line!r}"
        name, labels_text, value = (
            sample.group(1),
            sample.group(2),
            sample.group(sample.lastindex or 0),
        )
        assert name == current, f"sample {name} outside its family"
        labels = dict(re.findall(_LABEL, labels_text or ""))
        number = float(value)
        assert not math.isnan(number)
        assert labels not in [s[0] for s in families[name]["samples"]], "duplicate sample"
        families[name]["samples"].append((labels, number))
    for name, family in families.items():
        assert family.get("type") == "gauge", name
        if "unit" in family:
            assert name.endswith("_" + family["unit"]), name
    return families


def test_status_openmetrics(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    updated_at = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    scenario = dated_scenario(tmp_path, updated_at)
    status, out, err = run(capsys, "status", "--simulate", scenario, "--openmetrics")
    assert status == 0 and err == ""
    families = parse_openmetrics(out)
    info = families["mpupdate_component_info"]["samples"]
    assert ({"component": "engine", "version": "1.1.24090.11"}, 1.0) in info
    assert len(info) == 8
    ((labels, age),) = families["mpupdate_signature_age_seconds"]["samples"]
    assert labels == {"component": "av_signature"} and age == pytest.approx(7200, abs=60)
    ((labels, stamp),) = families["mpupdate_signature_updated_timestamp_seconds"]["samples"]
    assert labels == {"component": "av_signature"} and stamp == updated_at.timestamp()


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


def test_program_json_update(tmp_path: Path) -> None:
    done = subprocess.run(
        command("update", "--simulate", "reboot-required", "--json"),
        capture_output=True, text=True, check=False, cwd=tmp_path, env=child_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 6, done.stderr
    assert json_lines(done.stdout)[-1]["reboot_required"] is True


def test_program_no_defender(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("Windows may have Defender")
    done = subprocess.run(
        command("update"),
        capture_output=True, text=True, check=False, cwd=tmp_path, env=child_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 4 and done.stdout == ""
    assert "no Microsoft Defender" in done.stderr and "--simulate" in done.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX-only here")
def test_program_ctrl_c(tmp_path: Path) -> None:
    child = subprocess.Popen(
        command("update", "--timeout", "3600", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=child_env(**{ENV_BACKEND: "fake:hung"}),
    )  # fmt: skip
    try:
        assert child.stdout is not None
        first = json.loads(child.stdout.readline())
        assert first["type"] == "event"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    result = json.loads(out.splitlines()[-1])
    assert result["type"] == "result" and result["outcome"] == "CANCELLED"
    assert result["exit_status"] == 130 and result["attempts"][-1]["outcome"] == "CANCELLED"
    assert "interrupted" in err


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
