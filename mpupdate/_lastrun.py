"""The record of the last ``mpupdate update``, which ``mpupdate status`` reports (and exports as
OpenMetrics), since MpClient.dll tells the versions and their times but not how the last update
went.

Where it lives: ``$MPUPDATE_STATE_DIR`` if set; else ``%ProgramData%\\mpupdate`` on Windows (the
update is machine-wide) and ``$XDG_STATE_HOME/mpupdate`` (default ``~/.local/state/mpupdate``)
elsewhere. Real updates go to ``last-update.json``; simulated ones (``--simulate`` or
``$MPUPDATE_BACKEND``) to ``last-update-simulated.json``, so a rehearsal never passes for the
machine's own record.

The record is the final ``--json`` object of that run plus ``finished_at`` (this machine's clock,
ISO 8601 UTC). It is written whole (a temporary file, then a rename); a record that cannot be
written is a warning, never a changed exit status, and one that cannot be read is reported by
``status`` and otherwise ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["ENV_STATE_DIR", "LastRunError", "load", "path", "save"]

ENV_STATE_DIR = "MPUPDATE_STATE_DIR"


class LastRunError(Exception):
    """The record exists but cannot be read or is not one of ours."""


def directory() -> str:
    """Where the records live (see the module's docstring)."""
    chosen = os.environ.get(ENV_STATE_DIR)
    if chosen:
        return chosen
    if _windows():
        base = os.environ.get("PROGRAMDATA") or r"C:\ProgramData"  # (names are case-blind)
        return os.path.join(base, "mpupdate")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "mpupdate")


def _windows() -> bool:
    return sys.platform == "win32"  # a call: the type checkers' platform is not the run's


def path(simulated: bool) -> str:
    """The record of real (``simulated=False``) or simulated updates."""
    name = "last-update-simulated.json" if simulated else "last-update.json"
    return os.path.join(directory(), name)


def save(record: dict[str, Any], simulated: bool) -> str:
    """Write ``record`` whole; returns its path. Raises OSError when it cannot be written."""
    target = path(simulated)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    temporary = f"{target}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(record, stream, indent=1)  # ASCII: a lone surrogate is an escape
            stream.write("\n")
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    return target


def load(simulated: bool) -> Optional[dict[str, Any]]:
    """The record, or None when there is none yet; LastRunError when it is unreadable."""
    target = path(simulated)
    try:
        with open(target, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LastRunError(
            f"{target}: cannot be read: {exc.strerror or exc}; the next update rewrites it"
        ) from exc
    except UnicodeDecodeError as exc:
        raise LastRunError(
            f"{target}: not UTF-8 text ({exc.reason}); the next update rewrites it"
        ) from exc
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise LastRunError(f"{target}: not JSON ({exc}); the next update rewrites it") from exc
    if not isinstance(record, dict) or not _valid(record):
        raise LastRunError(
            f"{target}: not a record of 'mpupdate update' (it needs type 'result', outcome, "
            "hresult, hresult_name, exit_status, duration_seconds and finished_at); the next "
            "update rewrites it"
        )
    return record


def _valid(record: dict[str, Any]) -> bool:
    from .filetime import parse_moment

    try:
        finished = parse_moment(str(record.get("finished_at")))
    except ValueError:
        return False
    duration = record.get("duration_seconds")
    return (
        record.get("type") == "result"
        and finished.tzinfo is not None
        and all(isinstance(record.get(key), str) for key in ("outcome", "hresult", "hresult_name"))
        and type(record.get("exit_status")) is int
        and isinstance(duration, (int, float))
        and not isinstance(duration, bool)
        and 0 <= duration < float("inf")
    )
