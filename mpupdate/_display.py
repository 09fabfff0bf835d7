"""What ``mpupdate update`` shows while an update runs: the ``progress=`` function it hands the
library, and the displays behind it.

- JSON Lines on stdout (``--json``): one object per notification, as it arrives.
- On stderr, for a person: a live bar (rich, from the ``cli`` extra) when stderr is a terminal;
  sparse plain lines (each phase change and every 10 %) when it is not; nothing with
  ``--no-progress``. With ``--json``, only a terminal gets the bar (the JSON already says it
  all), and only when the JSON goes elsewhere (a file, a pipe).

rich is imported here, and only when the bar is chosen, so ``mpupdate --version`` and a piped
run never load it. Without rich, a terminal gets the plain lines and one note naming the extra.
"""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Protocol, TextIO

    from .machine import Progress

    class Display(Protocol):
        """One way of showing progress on stderr."""

        def attempt(self, source: str) -> None: ...
        def show(self, progress: Progress) -> None: ...
        def finish(self, outcome: str) -> None: ...
        def close(self) -> None: ...


__all__ = ["BarDisplay", "LineDisplay", "NoDisplay", "Reporter", "choose_display"]

RICH_MISSING = (
    "mpupdate: (a live progress bar needs rich: pip install 'mpupdate[cli]'; plain lines follow)"
)


def _hex(hresult: int) -> str:
    return f"0x{hresult & 0xFFFFFFFF:08X}"


def _package_text(progress: Progress) -> str:
    if progress.package is None or progress.packages is None:
        return ""
    return f"package {progress.package}/{progress.packages}"


class NoDisplay:
    """``--no-progress`` (or ``--json`` off a terminal): nothing on stderr."""

    def attempt(self, source: str) -> None:
        pass

    def show(self, progress: Progress) -> None:
        pass

    def finish(self, outcome: str) -> None:
        pass

    def close(self) -> None:
        pass


class LineDisplay:
    """Sparse plain lines on a stream that is not a terminal: one at each phase change and at
    each new tenth of the percent, ``mpupdate: [SOURCE]  40% downloading, package 1 of 3``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.source = "default"
        self._phase: Any = None
        self._decile = -1

    def attempt(self, source: str) -> None:
        self.source = source
        self._phase = None
        self._decile = -1

    def show(self, progress: Progress) -> None:
        decile = progress.percent // 10
        if progress.phase is self._phase and decile <= self._decile:
            return
        self._phase, self._decile = progress.phase, decile
        where = ""
        if progress.package is not None and progress.packages is not None:
            where = f", package {progress.package} of {progress.packages}"
        self.stream.write(
            f"mpupdate: [{self.source}] {progress.percent:3d}% {progress.phase.value}{where}\n"
        )
        self.stream.flush()

    def finish(self, outcome: str) -> None:
        pass

    def close(self) -> None:
        pass


class BarDisplay:
    """The live bar on a terminal (rich): one row per attempt, with the source, the stage, the
    overall percent, package i/n and the elapsed time. Redrawn at once when what it shows
    changes (so a fast update is still seen passing through its stages), and four times a
    second otherwise (so the elapsed time moves while the service is silent)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            # (markup off: "[default]" is text here, not a rich style)
            TextColumn("{task.fields[source]}", markup=False),
            TextColumn("{task.fields[stage]:<12}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[package]:<13}", markup=False),
            TimeElapsedColumn(),
            console=Console(file=stream),
            refresh_per_second=4,
            # stdout is not the bar's: JSON Lines (and anything else) written there must reach
            # it, not be drawn above the bar on stderr. Writes to stderr (a logged warning)
            # are drawn above the bar, which stays whole.
            redirect_stdout=False,
        )
        self._task: Any = None
        self._shown: Any = None
        self._bar.start()

    def attempt(self, source: str) -> None:
        self._task = self._bar.add_task(
            "", total=100, source=f"[{source}]", stage="starting", package=""
        )
        self._shown = None

    def show(self, progress: Progress) -> None:
        shown = (progress.percent, progress.phase, progress.package, progress.packages)
        if shown == self._shown:
            return
        self._shown = shown
        self._bar.update(
            self._task,
            completed=progress.percent,
            stage=progress.phase.value,
            package=_package_text(progress),
        )
        self._bar.refresh()

    def finish(self, outcome: str) -> None:
        if self._task is None:
            return
        self._bar.update(self._task, stage=outcome.lower().replace("_", " "))
        self._bar.stop_task(self._task)  # its elapsed time stops here
        self._bar.refresh()
        self._task = None

    def close(self) -> None:
        self._bar.stop()


def choose_display(json_lines: bool, quiet: bool, stream: TextIO, stdout: TextIO) -> Display:
    """The display for these options, this stderr (``stream``) and this stdout (see the
    module's docstring). With ``--json`` and stdout a terminal too, the JSON scrolls there and
    no bar is drawn: the two would share the screen's lines."""
    if quiet or (json_lines and _is_terminal(stdout)):
        return NoDisplay()
    terminal = _is_terminal(stream)
    if terminal:
        try:
            return BarDisplay(stream)
        except ImportError:
            print(RICH_MISSING, file=stream, flush=True)
    if json_lines:
        return NoDisplay()
    return LineDisplay(stream)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or an odd stream
        return False


class Reporter:
    """The ``progress=`` function of every attempt: JSON Lines to ``out`` (with ``--json``), and
    the display on stderr. :meth:`attempt` names the source each attempt starts with."""

    def __init__(self, json_lines: bool, display: Display, out: Optional[TextIO] = None) -> None:
        self.json_lines = json_lines
        self.display = display
        self.out = out
        self.source = "default"

    def attempt(self, source: str) -> None:
        self.source = source
        self.display.attempt(source)

    def __call__(self, progress: Progress) -> None:
        if self.json_lines:
            from .events import notify_name

            event = progress.event
            line = {
                "type": "event",
                "source": self.source,
                "notify": notify_name(event.notify),
                "hresult": _hex(event.hresult),
                "percent": progress.percent,
                "phase": progress.phase.value,
                "package": progress.package,
                "packages": progress.packages,
                "path": event.path,
            }
            out = self.out if self.out is not None else sys.stdout
            out.write(json.dumps(line) + "\n")
            out.flush()
        self.display.show(progress)
