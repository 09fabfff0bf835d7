"""``mpupdate update`` in a real pseudo-terminal: what a person watching sees (the live bar, its
stages, a percent rising to 100, the final lines), and that the same command off a terminal
writes no escape codes. POSIX only (``pty``); the bar needs rich, a test dependency."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Optional

import pytest

from mpupdate.backends import ENV_BACKEND
from mpupdate.fakes.scenarios import get

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")

#: CSI sequences (colours, cursor moves, erase) and OSC sequences.
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_PERCENT = re.compile(r"(\d{1,3})%")


def terminal_env(**extra: str) -> dict[str, str]:
    """The environment of an interactive shell: a capable TERM, nothing that forces or forbids
    colour or terminal behaviour, and no backend of the caller's."""
    drop = {ENV_BACKEND, "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CI")}
    env.update(TERM="xterm-256color", **extra)
    return env


def _openpty(rows: int, columns: int) -> tuple[int, int]:
    """A pseudo-terminal of that size: (master, slave) file descriptors."""
    if sys.platform == "win32":  # (the module is skipped there; this is for the type checker)
        raise NotImplementedError("no pseudo-terminals on Windows")
    else:
        import fcntl
        import termios

        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        return master, slave


class Terminal:
    """A child running ``python -m mpupdate ARGV`` with a 100x30 pseudo-terminal as its stdin,
    stdout (unless ``stdout`` is given) and stderr; :meth:`read_until` and :meth:`finish` collect
    what it draws."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        stdout: Optional[IO[bytes]] = None,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.master, slave = _openpty(rows=30, columns=100)
        self.child = subprocess.Popen(
            [sys.executable, "-m", "mpupdate", *argv],
            stdin=slave, stdout=slave if stdout is None else stdout, stderr=slave, cwd=cwd,
            env=terminal_env(**(env or {})),
        )  # fmt: skip
        os.close(slave)
        self.raw = b""

    def _read(self, deadline: float) -> bool:
        """Read what is there (waiting until ``deadline``); False once the child closed it."""
        ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every writer has gone
            return False
        self.raw += chunk
        return bool(chunk)

    def read_until(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in visible(self.raw):
            assert time.monotonic() < deadline, f"{text!r} never appeared in {self.raw!r}"
            assert self._read(deadline), f"the child ended before {text!r}: {self.raw!r}"

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            assert time.monotonic() < deadline, "the child did not finish"
        os.close(self.master)
        return self.child.wait(timeout=max(1.0, deadline - time.monotonic()))

    def kill(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()


def visible(raw: bytes) -> str:
    """The text drawn, escape codes removed; each redraw of the bar a line of its own."""
    text = _ESCAPES.sub(b"", raw).decode("utf-8", "replace")
    return "\n".join(line for line in re.split(r"\r\n|\r|\n", text) if line.strip())


def run_in_terminal(tmp_path: Path, *argv: str) -> tuple[int, bytes, list[str]]:
    terminal = Terminal(list(argv), tmp_path)
    try:
        status = terminal.finish()
    finally:
        terminal.kill()
    return status, terminal.raw, visible(terminal.raw).splitlines()


def bar_frames(lines: list[str], source: str) -> list[str]:
    return [line for line in lines if line.lstrip().startswith(f"[{source}]") and "%" in line]


def test_the_bar_shows_stages_packages_and_a_percent_rising_to_100(tmp_path: Path) -> None:
    status, raw, lines = run_in_terminal(tmp_path, "update", "--simulate", "updated-three-packages")
    assert status == 0
    frames = bar_frames(lines, "default")
    assert len(frames) >= 10, lines  # redrawn as the update moved, not only at its end
    percents = [int(_PERCENT.search(frame).group(1)) for frame in frames]  # type: ignore[union-attr]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    assert len(set(percents)) >= 8
    stages = [frame.split()[1] for frame in frames]
    order = [s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]]
    for stage in ("searching", "downloading", "installing", "finishing"):
        assert stage in order, order
    assert order.index("searching") < order.index("downloading") < order.index("finishing")
    assert any("package 1/3" in f for f in frames) and any("package 3/3" in f for f in frames)
    assert re.search(r"\d+:\d\d:\d\d", frames[-1])  # the elapsed time
    assert "updated" in frames[-1].split()  # the row ends with the attempt's outcome
    # after the bar, the summary: its last line is the last thing on the screen
    summary = lines[len(lines) - lines[::-1].index(frames[-1]) :]
    assert summary[0] == "outcome: UPDATED (0x00000000 S_OK: Signatures updated.)"
    assert summary[-1] == "AV signatures age: 0.0 hours"
    assert raw.rstrip().endswith(b"AV signatures age: 0.0 hours")
    assert b"\x1b[?25l" in raw and raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l")  # cursor back


def test_one_row_per_attempt_in_a_fallback(tmp_path: Path) -> None:
    status, _, lines = run_in_terminal(
        tmp_path, "update", "--simulate", "network-failure", "--source", "wsus", "--source",
        "mmpc",
    )  # fmt: skip
    assert status == 1
    for source in ("wsus", "mmpc"):
        frames = bar_frames(lines, source)
        assert frames and "failed" in frames[-1].split(), (source, lines)
    assert any(line.startswith("outcome: FAILED (0x80072EFD") for line in lines)
    assert any(line.startswith("hint: ") for line in lines)


def test_no_progress_draws_no_bar(tmp_path: Path) -> None:
    status, raw, lines = run_in_terminal(
        tmp_path, "update", "--simulate", "updated", "--no-progress"
    )
    assert status == 0 and b"\x1b[" not in raw and "━" not in raw.decode()
    assert lines[0] == "outcome: UPDATED (0x00000000 S_OK: Signatures updated.)"


def test_ctrl_c_in_a_terminal(tmp_path: Path) -> None:
    terminal = Terminal(["update", "--timeout", "3600"], tmp_path, env={ENV_BACKEND: "fake:hung"})
    try:
        terminal.read_until("searching")
        terminal.child.send_signal(signal.SIGINT)
        status = terminal.finish()
    finally:
        terminal.kill()
    lines = visible(terminal.raw).splitlines()
    assert status == 130
    assert "cancelled" in bar_frames(lines, "default")[-1].split()
    assert "mpupdate: interrupted: the update was aborted" in lines
    assert terminal.raw.rfind(b"\x1b[?25h") > terminal.raw.rfind(b"\x1b[?25l")  # cursor back


@pytest.mark.parametrize("json_output", [False, True])
def test_off_a_terminal_no_escape_codes(tmp_path: Path, json_output: bool) -> None:
    argv = ["update", "--simulate", "updated-three-packages"] + (["--json"] if json_output else [])
    done = subprocess.run(
        [sys.executable, "-m", "mpupdate", *argv],
        capture_output=True, check=False, cwd=tmp_path, env=terminal_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 0
    assert b"\x1b" not in done.stdout and b"\x1b" not in done.stderr
    progress = done.stderr.decode().splitlines()
    if json_output:
        assert progress == []
    else:
        assert progress and all(line.startswith("mpupdate: [default] ") for line in progress)
        assert progress[-1] == "mpupdate: [default] 100% done, package 3 of 3"


def test_json_to_a_file_while_the_bar_draws_on_the_terminal(tmp_path: Path) -> None:
    # mpupdate update --json > out.jsonl, from an interactive shell: stderr is the terminal.
    out = tmp_path / "out.jsonl"
    with out.open("wb") as stream:
        terminal = Terminal(
            ["update", "--simulate", "unknown-notification", "--json"], tmp_path, stdout=stream
        )
        try:
            status = terminal.finish()
        finally:
            terminal.kill()
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert status == 0 and lines[-1]["type"] == "result" and lines[-1]["exit_status"] == 0
    # every notification, START and COMPLETE, then the result
    assert len(lines) == len(get("unknown-notification").notifications) + 3
    drawn = visible(terminal.raw).splitlines()
    assert "updated" in bar_frames(drawn, "default")[-1].split()  # the bar, on the terminal
    assert '"type"' not in terminal.raw.decode()  # and no JSON there


def test_json_on_the_terminal_draws_no_bar(tmp_path: Path) -> None:
    # stdout and stderr both the terminal: the JSON Lines scroll there, one whole object a line.
    status, raw, lines = run_in_terminal(tmp_path, "update", "--simulate", "updated", "--json")
    assert status == 0 and "\u2501" not in raw.decode()  # no bar
    objects = [json.loads(line) for line in lines]
    assert objects[-1]["type"] == "result" and objects[-1]["exit_status"] == 0
    assert len(objects) == len(get("updated").notifications) + 3
