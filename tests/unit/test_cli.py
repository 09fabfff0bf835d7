"""The ``mpupdate`` command, run in-process (``mpupdate.cli.main``) with its output captured."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mpupdate
from mpupdate.cli import main
from mpupdate.fakes.native import NativeFakeMpClient
from mpupdate.fakes.native.build import unavailable_reason
from mpupdate.fakes.scenarios import names
from mpupdate.fakes.trace import Trace

_UNAVAILABLE = unavailable_reason()
REST = '"notifications": [], "complete": null'
SCENARIOS = Path(mpupdate.__file__).resolve().parent / "fakes" / "scenarios"


@pytest.fixture(autouse=True)
def _native_library_left_free() -> Iterator[None]:
    yield
    if _UNAVAILABLE is None and NativeFakeMpClient.in_use():
        NativeFakeMpClient.reset_library()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--version")
    assert (status, out.strip()) == (0, f"mpupdate {mpupdate.__version__}")


def test_python_dash_m_mpupdate_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mpupdate", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(mpupdate.__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"mpupdate {mpupdate.__version__}"


#: What ``mpupdate --version`` must not import (and a piped update must not import rich).
HEAVY = ("rich", "asyncio", "mpupdate.fakes", "mpupdate._display", "mpupdate._lastrun", "json")


def _imported_by(*argv: str) -> set[str]:
    """The top modules (and mpupdate's own) loaded by ``mpupdate ARGV``, in a fresh process."""
    code = (
        "import sys, io, contextlib\n"
        "from mpupdate.cli import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        f"    main({list(argv)!r})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        cwd=Path(mpupdate.__file__).resolve().parent.parent,
    )  # fmt: skip
    return set(done.stdout.split())


def test_version_imports_nothing_heavy() -> None:
    loaded = _imported_by("--version")
    assert [name for name in HEAVY if name in loaded] == []


def test_a_piped_update_imports_no_rich() -> None:
    loaded = _imported_by("update", "--simulate", "updated")  # stderr is not a terminal
    assert "mpupdate._display" in loaded and "mpupdate.fakes" in loaded
    assert not any(name == "rich" or name.startswith("rich.") for name in loaded)


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "replay", "--help")
    assert status == 0
    assert "exit status" in out and "0  the update succeeded" in out and "2  usage" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run(
            capsys,
        )[0]
        == 2
    )
    assert run(capsys, "replay")[0] == 2
    assert run(capsys, "replay", "x.json", "--delivery", "sideways")[0] == 2
    status, _, err = run(capsys, "replay", "x.json", "--timeout", "nan")
    assert status == 2 and "--timeout" in err


def test_record_needs_the_real_dll(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    out = tmp_path / "trace.json"
    status, _, err = run(capsys, "record", str(out))
    assert status == 2
    assert err.count("\n") == 1 and "needs Windows" in err
    assert not out.exists()


@pytest.mark.parametrize(("scenario", "expected"), [("updated", 0), ("network-failure", 1)])
def test_record_then_replay(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scenario: str, expected: int
) -> None:
    out = tmp_path / "trace.json"
    status, text, _ = run(capsys, "record", str(out), "--backend", f"fake:{scenario}")
    assert status == expected
    assert f"trace written to {out}" in text
    trace = Trace.load(out)
    status, text, _ = run(capsys, "replay", str(out))
    assert status == expected
    assert f"outcome: {trace.outcome}" in text
    assert "events: " in text and "versions before: product" in text


@pytest.mark.parametrize("name", names())
def test_replay_json_gives_one_object_with_the_result(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    status, out, _ = run(
        capsys, "replay", str(SCENARIOS / f"{name}.json"), "--json", "--timeout", "60"
    )
    result = json.loads(out)
    assert status == (0 if result["ok"] else 1)
    assert result["outcome"] in ("UPDATED", "ALREADY_CURRENT", "FAILED", "CANCELLED", "TIMED_OUT")
    assert isinstance(result["events"], list)
    if result["events"]:
        assert result["events"][0]["notify"] == "SIGUPDATE_START"
        assert result["events"][0]["at"] == 0


@pytest.mark.skipif(_UNAVAILABLE is not None, reason=f"native fake: {_UNAVAILABLE}")
@pytest.mark.parametrize("delivery", ["immediate", "timed"])
def test_replay_native_gives_the_same_result(
    capsys: pytest.CaptureFixture[str], delivery: str
) -> None:
    path = str(SCENARIOS / "updated-three-packages.json")
    python = run(capsys, "replay", path, "--json", "--delivery", delivery)
    native = run(capsys, "replay", path, "--json", "--delivery", delivery, "--native")
    assert python == native
    assert python[0] == 0


def test_a_never_ending_trace_needs_a_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    hung = str(SCENARIOS / "hung.json")
    status, _, err = run(capsys, "replay", hung)
    assert status == 2 and "--timeout" in err
    status, out, _ = run(capsys, "replay", hung, "--timeout", "5")
    assert status == 1 and "TIMED_OUT" in out


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"format": "mpupdate-trace", "version": 7}', "$.version"),
        (f'{{"format": "mpupdate-scenario", "version": 1, "name": 5, {REST}}}', "$.name"),
        (f'{{"format": "nope", "version": 1, "name": "x", {REST}}}', "$.format"),
        ('{"format": "mpupdate-trace",\n "version": 1,,}', "line 2, column"),
    ],
)
def test_a_malformed_trace_exits_2_naming_the_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    status, out, err = run(capsys, "replay", str(path))
    assert status == 2 and out == ""
    assert f"{path}: {where}" in err
    assert err.count("\n") == 1


def test_a_missing_trace_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "replay", str(tmp_path / "absent.json"))
    assert status == 2 and "absent.json" in err


def test_record_without_a_dll_exits_2_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mpupdate import backends, cli
    from mpupdate.constants import E_NOT_LOADED
    from mpupdate.errors import BackendUnavailableError

    def unavailable() -> None:
        raise BackendUnavailableError(
            "load MpClient", E_NOT_LOADED, "MpClient.dll was not found", "install Defender"
        )

    monkeypatch.setattr(cli, "_on_windows", lambda: True)
    monkeypatch.setattr(backends, "DllBackend", unavailable)
    out = tmp_path / "trace.json"
    status, _, err = run(capsys, "record", str(out))
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("mpupdate: error: cannot load MpClient.dll")
    assert not out.exists()
