"""The trace format, version 1: a recorded update, replayable by the fakes.

A trace is a scenario (``docs/scenario-format.md``) with ``"format": "mpupdate-trace"`` and three
more top-level keys, written by :mod:`mpupdate.fakes.recorder` (``docs/traces.md``)::

    {
      "format": "mpupdate-trace", "version": 1, "name": "recorded", ...every scenario key...,
      "calls": [{"name": "MpManagerOpen", "hresult": "S_OK"},
                {"name": "MpUpdateStart", "hresult": "S_OK", "options": 6}, ...],
      "recorded_with": {"mpupdate": "0.1.0", "product": "4.18.24090.11", ...},
      "recording": {"options": 2, "timeout": 600.0, "outcome": "UPDATED"}
    }

:meth:`Trace.loads` validates the trace-only keys here and hands everything else to the scenario
loader, so a trace is refused exactly where a scenario would be, with :class:`ScenarioError`
naming the position and the reason. ``Scenario.load`` (and so ``FakeMpClient(path)``) accepts a
trace and gives its scenario. ``Trace.loads(t.dumps()) == t``, exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from mpupdate.backends import EXPORTS
from mpupdate.results import Outcome

from .scenario import (
    _SURROGATE,
    FORMAT,
    Scenario,
    _dword_problem,
    _escape_surrogate,
    _hresult_text,
    _kind,
    _member,
    _Reader,
    _seconds_problem,
    _show,
    parse_json,
    read_file,
)

__all__ = ["TRACE_FORMAT", "TRACE_VERSION", "Trace", "TraceCall"]

TRACE_FORMAT = "mpupdate-trace"
TRACE_VERSION = 1

#: The argument each call's record keeps, by export (the others keep only their HRESULT).
CALL_ARGUMENTS = {
    "MpUpdateStart": "options",
    "MpUpdateControl": "control",
    "MpErrorMessageFormat": "code",
}
_TRACE_KEYS = ("calls", "recorded_with", "recording")


@dataclass(frozen=True)
class TraceCall:
    """One call the recorder passed through: the export's ``name``, the ``hresult`` it returned
    (unsigned; None for MpFreeMemory, which returns nothing) and, for the exports in
    :data:`CALL_ARGUMENTS`, the ``argument`` that matters (options, control, code)."""

    name: str
    hresult: Optional[int] = None
    argument: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        out["hresult"] = None if self.hresult is None else _hresult_text(self.hresult)
        key = CALL_ARGUMENTS.get(self.name)
        if key is not None and self.argument is not None:
            out[key] = _hresult_text(self.argument) if key == "code" else self.argument & 0xFFFFFFFF
        return out


@dataclass(frozen=True)
class Trace:
    """A validated trace: the ``scenario`` it replays as, the ``calls`` recorded in order,
    ``recorded_with`` (name, text) pairs in file order, and how the update was run: its
    ``options`` (dwUpdateOptions without ASYNC), ``timeout`` and ``outcome`` (a name)."""

    scenario: Scenario
    calls: tuple[TraceCall, ...] = ()
    recorded_with: tuple[tuple[str, str], ...] = ()
    options: Optional[int] = None
    timeout: Optional[float] = None
    outcome: Optional[str] = None

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Union[str, Path]) -> Trace:
        """Read and validate a trace file (ScenarioError for any problem, file included)."""
        path = Path(path)
        return cls.loads(read_file(path), source=str(path))

    @classmethod
    def loads(cls, text: Union[str, bytes], source: str = "<string>") -> Trace:
        """Parse and validate trace JSON text (or UTF-8 bytes); only ScenarioError is raised."""
        return cls.from_dict(parse_json(text, source, "Trace.loads()"), source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Trace:
        """Validate a parsed trace; ScenarioError naming the position and reason if invalid."""
        return _TraceReader(source).trace(data)

    # -- writing ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = self.scenario.to_dict()
        out["format"] = TRACE_FORMAT
        out["version"] = TRACE_VERSION
        out["calls"] = [call.to_dict() for call in self.calls]
        out["recorded_with"] = dict(self.recorded_with)
        recording: dict[str, Any] = {}
        if self.options is not None:
            recording["options"] = self.options
        if self.timeout is not None:
            recording["timeout"] = self.timeout
        if self.outcome is not None:
            recording["outcome"] = self.outcome
        out["recording"] = recording
        return out

    def dumps(self) -> str:
        """The trace as JSON text; ``Trace.loads(t.dumps()) == t``."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        return _SURROGATE.sub(_escape_surrogate, text)

    def dump(self, path: Union[str, Path]) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")


class _TraceReader(_Reader):
    def trace(self, data: Any) -> Trace:
        if not isinstance(data, dict):
            raise self.fail("$", f"expected an object, got {_kind(data)}")
        self.unique(data, "$")
        if "format" not in data:
            raise self.fail("$", "missing key 'format'")
        if type(data["format"]) is not str or data["format"] != TRACE_FORMAT:
            raise self.fail("$.format", f"expected {TRACE_FORMAT!r}, got {_show(data['format'])}")
        if "version" not in data:
            raise self.fail("$", "missing key 'version'")
        if type(data["version"]) is not int or data["version"] != TRACE_VERSION:
            raise self.fail(
                "$.version",
                f"this mpupdate reads trace format version {TRACE_VERSION}, the file has "
                f"{_show(data['version'])}; upgrade mpupdate or convert the file",
            )
        for key in ("calls", "recorded_with"):
            if key not in data:
                raise self.fail("$", f"missing key {key!r}")
        calls = data["calls"]
        if not isinstance(calls, list):
            raise self.fail("$.calls", f"expected a list, got {_kind(calls)}")
        recorded = data["recorded_with"]
        if not isinstance(recorded, dict):
            raise self.fail("$.recorded_with", f"expected an object, got {_kind(recorded)}")
        self.unique(recorded, "$.recorded_with")
        for key in recorded:
            if not isinstance(key, str):
                raise self.fail(_member("$.recorded_with", key), "keys must be strings")
        recorded_with = tuple(
            (key, self.text(value, _member("$.recorded_with", key)))
            for key, value in recorded.items()
        )
        recording = self.obj(
            data.get("recording", {}), "$.recording", set(), {"options", "timeout", "outcome"}
        )
        options = None
        if recording.get("options") is not None:
            options = self.dword(recording["options"], "$.recording.options")
        timeout = None
        if recording.get("timeout") is not None:
            self.check("$.recording.timeout", _seconds_problem(recording["timeout"]))
            timeout = float(recording["timeout"])
        outcome = None
        if recording.get("outcome") is not None:
            outcome = self.text(recording["outcome"], "$.recording.outcome")
            if outcome not in Outcome.__members__:
                known = ", ".join(Outcome.__members__)
                raise self.fail(
                    "$.recording.outcome", f"unknown outcome {_show(outcome)} (known: {known})"
                )
        rest = {key: value for key, value in data.items() if key not in _TRACE_KEYS}
        rest["format"] = FORMAT
        rest["version"] = 1
        scenario = self.scenario(rest)
        return Trace(
            scenario=scenario,
            calls=tuple(self.call(item, f"$.calls[{i}]") for i, item in enumerate(calls)),
            recorded_with=recorded_with,
            options=options,
            timeout=timeout,
            outcome=outcome,
        )

    def call(self, value: Any, position: str) -> TraceCall:
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            key = CALL_ARGUMENTS.get(value["name"])
        else:
            key = None
        body = self.obj(value, position, {"name", "hresult"}, {key} if key else set())
        name = self.text(body["name"], f"{position}.name")
        if name not in EXPORTS:
            raise self.fail(
                f"{position}.name", f"{_show(name)} is not an export (known: {', '.join(EXPORTS)})"
            )
        hresult = None
        if body["hresult"] is not None:
            hresult = self.hresult(body["hresult"], f"{position}.hresult")
        elif name != "MpFreeMemory":
            raise self.fail(f"{position}.hresult", f"{name} returns an HRESULT; got null")
        argument = None
        if key is not None and key in body:
            where = f"{position}.{key}"
            if key == "code":
                argument = self.hresult(body[key], where)
            else:
                self.check(where, _dword_problem(body[key]))
                argument = int(body[key])
        return TraceCall(name, hresult, argument)
