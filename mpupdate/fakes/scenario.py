"""The scenario (trace) format, version 1: what the fake DLL replays.

A scenario is a JSON object; ``docs/scenario-format.md`` describes every key. In short::

    {
      "format": "mpupdate-scenario", "version": 1,
      "name": "updated", "description": "one package downloaded and installed",
      "start_hresult": "S_OK",
      "notifications": [
        {"at": 0.5, "notify": "SIGUPDATE_SEARCH_START"},
        {"at": 3.0, "notify": "SIGUPDATE_DOWNLOAD_PROGRESS",
         "data": {"percent": 50, "total_updates": 1, "current_index": 0,
                  "update_type": "HTTP", "stage": "DOWNLOAD", "path": "C:\\\\...\\\\mpam-fe.exe"}}
      ],
      "complete": {"at": 9.0, "hresult": "S_OK"},
      "versions_before": {"av_signature": "1.403.100.0", ...},
      "versions_after": {"av_signature": "1.403.120.0", ...}
    }

``notifications`` are what the service sends between the START and COMPLETE that MpClient
synthesizes, so they may not contain SIGUPDATE_START or SIGUPDATE_COMPLETE; ``complete`` gives the
synthesized COMPLETE's time and hResult, or is ``null`` for an update that never ends by itself.
Loading validates everything and reports the file, the position and the problem
(:class:`ScenarioError`, the only exception loading raises); the constructors of
:class:`Scenario` and its parts check the same ranges (times 0..:data:`MAX_SECONDS`, a start
between :data:`EARLIEST` and :data:`LATEST` minus the scenario's span, 32-bit numbers), so
nothing the fakes cannot run reaches them, whether loaded or built in code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any, Optional, Union

from mpupdate.constants import HRESULTS, CallbackType, Notify, SigUpdateType, Stage
from mpupdate.errors import hresult_name
from mpupdate.events import notify_name
from mpupdate.filetime import moment_text, parse_moment
from mpupdate.versions import COMPONENTS, ComponentVersion, VersionInfo, version_from_string

from .clock import DEFAULT_START

__all__ = [
    "EARLIEST",
    "FORMAT",
    "LATEST",
    "MAX_DEPTH",
    "MAX_SECONDS",
    "VERSION",
    "Scenario",
    "ScenarioComplete",
    "ScenarioError",
    "ScenarioNotification",
    "SigUpdateData",
]

FORMAT = "mpupdate-scenario"
VERSION = 1

_HRESULT_BY_NAME = {info.name: code for code, info in HRESULTS.items()}
_HEX = re.compile(r"0[xX][0-9a-fA-F]{1,8}")
_SYNTHESIZED = (Notify.SIGUPDATE_START, Notify.SIGUPDATE_COMPLETE)
_MAX_DWORD = 0xFFFFFFFF
_MAX_QWORD = 0xFFFF_FFFF_FFFF_FFFF

#: The latest time a scenario may name, in seconds after the start (about 317 years): every
#: time (``at``, ``complete.at``, ``abort_latency``) is a finite number 0..MAX_SECONDS. It keeps
#: a notification's FILETIME (the start plus its time in 100 ns ticks) an exact 64-bit integer.
MAX_SECONDS = 1e10
#: The earliest moment a scenario may name: FILETIME 0 (1601-01-01T00:00:00Z).
EARLIEST = datetime(1601, 1, 1, tzinfo=timezone.utc)
#: The latest moment a scenario may name: the last one datetime represents
#: (9999-12-31T23:59:59.999999Z). ``started_at`` plus the scenario's span must not pass it.
LATEST = datetime.max.replace(tzinfo=timezone.utc)
#: How deeply a scenario's JSON may nest objects and lists (the format needs 5 levels).
MAX_DEPTH = 64
#: Integer literals longer than this are not read as numbers (none of the format's fit).
_MAX_DIGITS = 40


class ScenarioError(ValueError):
    """A scenario is malformed. ``source`` names the file, ``position`` where, ``problem`` what.

    Built in code, ``source`` names the class (``"ScenarioNotification"``) and ``position`` the
    field (``"at"``)."""

    def __init__(self, source: str, position: str, problem: str) -> None:
        super().__init__(f"{source}: {position}: {problem}")
        self.source = source
        self.position = position
        self.problem = problem


class _BigInteger:
    """An integer literal with more than _MAX_DIGITS digits: out of every range of the format
    (and past what ``int()`` reads from text), kept as its digit count for the message."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


# -- the checks, shared by the loader (which names the JSON position) and the constructors ------
# Each returns what is wrong with a value, or None.


def _seconds_problem(value: Any) -> Optional[str]:
    if isinstance(value, _BigInteger):
        return f"expected a finite number of seconds {_SECONDS_RANGE}, got {_show(value)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected seconds as a number, got {_kind(value)}"
    if 0 <= value <= MAX_SECONDS:  # False for NaN
        return None
    return f"expected a finite number of seconds {_SECONDS_RANGE}, got {_show(value)}"


_SECONDS_RANGE = f"0..{MAX_SECONDS:.0f} (about 317 years)"


def _dword_problem(value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_DWORD:
        return f"expected an integer 0..4294967295, got {_show(value)}"
    return None


def _hresult_number_problem(value: Any) -> Optional[str]:
    if isinstance(value, bool):
        return "expected an HRESULT, got a boolean"
    if not isinstance(value, int):
        return f"expected an HRESULT (an integer), got {_kind(value)}"
    if not -0x8000_0000 <= value <= _MAX_DWORD:
        return f"{_show(value)} does not fit in 32 bits"
    return None


def _text_problem(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return f"expected a string, got {_kind(value)}"
    return None


def _utf16(text: str) -> str:
    """``text`` as its UTF-16 code units say: surrogate pairs joined, lone surrogates kept.

    The fakes pass text as UTF-16 and JSON joins an escaped pair, so a scenario holds text in
    this form; it is what makes ``Scenario.loads(s.dumps()) == s`` exact."""
    if text.isascii():
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _moment_problem(value: Any) -> Optional[str]:
    """What is wrong with ``value`` as a scenario's moment: an aware datetime, EARLIEST..LATEST
    (compared as instants, so any UTC offset is fine if UTC keeps it in range)."""
    if not isinstance(value, datetime):
        return f"expected a datetime, got {_kind(value)}"
    if value.tzinfo is None or value.utcoffset() is None:
        return f"{value.isoformat()!r} has no timezone; add Z for UTC"
    if not EARLIEST <= value <= LATEST:
        return (
            f"{moment_text(value)} is out of range: moments are "
            f"{moment_text(EARLIEST)}..{moment_text(LATEST)} (UTC)"
        )
    return None


def _latest_start(span: float) -> datetime:
    """The latest ``started_at`` for a scenario whose times reach ``span`` seconds."""
    return LATEST - timedelta(seconds=span)


def _span_problem(started_at: datetime, span: float) -> Optional[str]:
    latest = _latest_start(span)
    if started_at <= latest:
        return None
    return (
        f"{moment_text(started_at)} is too late: the scenario runs {span:g} seconds from its "
        f"start (its last time plus abort_latency), so it must start "
        f"{moment_text(EARLIEST)}..{moment_text(latest)} for its FILETIMEs to stay in "
        "the calendar"
    )


def _updated_at_problem(value: Optional[datetime]) -> Optional[str]:
    if value is None:
        return None
    problem = _moment_problem(value)
    if problem is None and value == EARLIEST:
        return (
            f"{moment_text(value)} is FILETIME 0, which MpManagerVersionQuery reports as never "
            "updated: leave updated_at out instead"
        )
    return problem


class _Checker:
    """Raises ScenarioError for a constructor (``source``: the class)."""

    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def check(self, position: str, problem: Optional[str]) -> None:
        if problem is not None:
            raise ScenarioError(self.source, position, problem)

    def seconds(self, owner: object, name: str) -> None:
        value = getattr(owner, name)
        self.check(name, _seconds_problem(value))
        object.__setattr__(owner, name, float(value))

    def dword(self, owner: object, name: str) -> None:
        value = getattr(owner, name)
        self.check(name, _dword_problem(value))
        object.__setattr__(owner, name, int(value))

    def hresult(self, owner: object, name: str) -> None:
        value = getattr(owner, name)
        self.check(name, _hresult_number_problem(value))
        object.__setattr__(owner, name, int(value) & _MAX_DWORD)

    def text(self, owner: object, name: str) -> None:
        value = getattr(owner, name)
        self.check(name, _text_problem(value))
        object.__setattr__(owner, name, _utf16(value))

    def kind(
        self,
        position: str,
        value: Any,
        expected: Union[type, tuple[type, ...]],
        optional: bool = False,
    ) -> None:
        if not isinstance(value, expected) and not (optional and value is None):
            types = expected if isinstance(expected, tuple) else (expected,)
            wanted = " or ".join([t.__name__ for t in types] + (["None"] if optional else []))
            self.check(position, f"expected {wanted}, got {_kind(value)}")


@dataclass(frozen=True)
class SigUpdateData:
    """The MPSIGUPDATE_DATA a notification carries.

    The five numbers are DWORDs (0..4294967295); ``path`` is None or text without NUL (lone
    surrogates allowed, as in Windows paths). ScenarioError otherwise."""

    percent: int = 0
    total_updates: int = 0
    current_index: int = 0
    update_type: int = 0
    stage: int = 0
    path: Optional[str] = None

    def __post_init__(self) -> None:
        path = self.path
        if (  # the common case, already canonical: nothing to check further or normalize
            type(self.percent) is int
            and type(self.total_updates) is int
            and type(self.current_index) is int
            and type(self.update_type) is int
            and type(self.stage) is int
            and 0 <= self.percent <= _MAX_DWORD
            and 0 <= self.total_updates <= _MAX_DWORD
            and 0 <= self.current_index <= _MAX_DWORD
            and 0 <= self.update_type <= _MAX_DWORD
            and 0 <= self.stage <= _MAX_DWORD
            and (path is None or (type(path) is str and path.isascii() and "\0" not in path))
        ):
            return
        checker = _Checker("SigUpdateData")
        for name in ("percent", "total_updates", "current_index", "update_type", "stage"):
            checker.dword(self, name)
        if self.path is not None:
            checker.text(self, "path")
            checker.check("path", _path_problem(self.path))


def _path_problem(path: str) -> Optional[str]:
    return "must not contain NUL characters" if "\0" in path else None


@dataclass(frozen=True)
class ScenarioNotification:
    """One notification the service sends: when (seconds after the start), what, and its data.

    ``at``: 0..MAX_SECONDS; ``notify`` and ``callback_type``: DWORDs; ``hresult``: signed or
    unsigned 32-bit, kept unsigned. ScenarioError otherwise."""

    at: float
    notify: int
    hresult: int = 0
    data: Optional[SigUpdateData] = None
    callback_type: int = int(CallbackType.SIGUPDATE)

    def __post_init__(self) -> None:
        at, data = self.at, self.data
        if (  # the common case, already canonical: nothing to check further or normalize
            type(at) is float
            and type(self.notify) is int
            and type(self.hresult) is int
            and type(self.callback_type) is int
            and 0.0 <= at <= MAX_SECONDS
            and 0 <= self.notify <= _MAX_DWORD
            and 0 <= self.hresult <= _MAX_DWORD
            and 0 <= self.callback_type <= _MAX_DWORD
            and (data is None or type(data) is SigUpdateData)
        ):
            return
        checker = _Checker("ScenarioNotification")
        checker.seconds(self, "at")
        checker.dword(self, "notify")
        checker.hresult(self, "hresult")
        checker.kind("data", self.data, SigUpdateData, optional=True)
        checker.dword(self, "callback_type")


@dataclass(frozen=True)
class ScenarioComplete:
    """The final SIGUPDATE_COMPLETE: when, and the outcome in hResult (S_FALSE: none needed).

    ``at``: 0..MAX_SECONDS; ``hresult``: signed or unsigned 32-bit, kept unsigned."""

    at: float
    hresult: int = 0

    def __post_init__(self) -> None:
        checker = _Checker("ScenarioComplete")
        checker.seconds(self, "at")
        checker.hresult(self, "hresult")


def _default_versions() -> VersionInfo:
    return VersionInfo(*(ComponentVersion(0) for _ in COMPONENTS))


def _span(
    notifications: Sequence[ScenarioNotification],
    complete: Optional[ScenarioComplete],
    abort_latency: float,
) -> float:
    """How far after its start a scenario's own times reach: its latest time plus abort_latency."""
    latest = max((item.at for item in notifications), default=0.0)
    if complete is not None:
        latest = max(latest, complete.at)
    return latest + abort_latency


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build one with :meth:`load`, :meth:`loads` or :meth:`from_dict`,
    or in code (the constructor checks the ranges :meth:`load` does and raises ScenarioError;
    hresults are kept unsigned, ``started_at`` in UTC, ``messages`` sorted by code).

    Immutable (as are its parts), so the fakes lay its notifications out as the DLL passes them
    once (:class:`~mpupdate.fakes.dll.PreparedPlan`) and reuse that for every update of it.
    Unlike a loaded one, a scenario built in code may hold SIGUPDATE_COMPLETE among its
    notifications (the update then ends there) and times that go backwards.
    """

    name: str
    description: str = ""
    notifications: tuple[ScenarioNotification, ...] = ()
    complete: Optional[ScenarioComplete] = ScenarioComplete(1.0)
    open_hresult: int = 0
    start_hresult: int = 0
    abort_latency: float = 0.0
    started_at: datetime = DEFAULT_START
    versions_before: VersionInfo = field(default_factory=_default_versions)
    versions_after: VersionInfo = field(default_factory=_default_versions)
    messages: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        checker = _Checker("Scenario")
        checker.text(self, "name")
        checker.check("name", None if self.name else "must not be empty")
        checker.text(self, "description")
        notifications: Sequence[Any] = self.notifications
        checker.kind("notifications", notifications, (tuple, list))
        for index, item in enumerate(notifications):
            checker.kind(f"notifications[{index}]", item, ScenarioNotification)
        object.__setattr__(self, "notifications", tuple(notifications))
        checker.kind("complete", self.complete, ScenarioComplete, optional=True)
        checker.hresult(self, "open_hresult")
        checker.hresult(self, "start_hresult")
        checker.seconds(self, "abort_latency")
        started_at = self.started_at
        checker.check("started_at", _moment_problem(started_at))
        started_at = started_at.astimezone(timezone.utc)  # in range, so in range in UTC
        checker.check(
            "started_at",
            _span_problem(started_at, _span(self.notifications, self.complete, self.abort_latency)),
        )
        object.__setattr__(self, "started_at", started_at)
        for which in ("versions_before", "versions_after"):
            versions = getattr(self, which)
            checker.kind(which, versions, VersionInfo)
            for attr, _ in COMPONENTS:
                component = getattr(versions, attr)
                where = f"{which}.{attr}"
                checker.kind(where, component, ComponentVersion)
                raw = component.raw
                if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= _MAX_QWORD:
                    checker.check(where, f"expected a 64-bit version number, got {_kind(raw)}")
                checker.check(f"{where}.updated_at", _updated_at_problem(component.updated_at))
        messages: Sequence[Any] = self.messages  # checked: built in code, it may be anything
        checker.kind("messages", messages, (tuple, list))
        seen: dict[int, int] = {}
        normalized = []
        for index, entry in enumerate(messages):
            where = f"messages[{index}]"
            if not isinstance(entry, tuple) or len(entry) != 2:
                checker.check(where, f"expected a (code, text) pair, got {_kind(entry)}")
            code, text = entry
            checker.check(where, _hresult_number_problem(code))
            checker.check(where, _text_problem(text))
            code &= _MAX_DWORD
            if code in seen:
                checker.check(
                    where, f"a second message for 0x{code:08X} (messages[{seen[code]}] has one)"
                )
            seen[code] = index
            normalized.append((code, _utf16(text)))
        object.__setattr__(self, "messages", tuple(sorted(normalized)))

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Union[str, Path]) -> Scenario:
        """Read and validate a scenario file (ScenarioError for any problem, file included)."""
        path = Path(path)
        return cls.loads(read_file(path), source=str(path))

    @classmethod
    def loads(cls, text: Union[str, bytes], source: str = "<string>") -> Scenario:
        """Parse and validate scenario JSON text (or UTF-8 bytes); ``source`` names it in errors.

        Raises only ScenarioError: for invalid UTF-8 (the byte), invalid JSON (line and column),
        duplicate keys, nesting deeper than :data:`MAX_DEPTH` and any invalid value (the JSON
        path)."""
        return cls.from_dict(parse_json(text, source, "Scenario.loads()"), source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Scenario:
        """Validate a parsed scenario (a dict as JSON gives it); ScenarioError if invalid.

        A recorded trace (``"format": "mpupdate-trace"``, :mod:`mpupdate.fakes.trace`) is
        validated as one and gives its scenario, so the fakes replay traces too."""
        if isinstance(data, dict) and data.get("format") == "mpupdate-trace":
            from .trace import Trace

            return Trace.from_dict(data, source).scenario
        return _Reader(source).scenario(data)

    # -- writing ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (names for known numbers, hex strings for HRESULTs)."""
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.started_at != DEFAULT_START:
            out["started_at"] = moment_text(self.started_at)
        if self.open_hresult:
            out["open_hresult"] = _hresult_text(self.open_hresult)
        if self.start_hresult:
            out["start_hresult"] = _hresult_text(self.start_hresult)
        if self.abort_latency:
            out["abort_latency"] = self.abort_latency
        out["notifications"] = [_notification_dict(n) for n in self.notifications]
        out["complete"] = (
            None
            if self.complete is None
            else {"at": self.complete.at, "hresult": _hresult_text(self.complete.hresult)}
        )
        out["versions_before"] = _versions_dict(self.versions_before)
        out["versions_after"] = _versions_dict(self.versions_after)
        if self.messages:
            out["messages"] = {f"0x{code & _MAX_DWORD:08X}": text for code, text in self.messages}
        return out

    def dumps(self) -> str:
        """The scenario as JSON text; ``Scenario.loads(s.dumps()) == s``.

        Text stays readable (not ASCII-escaped), except lone surrogates (which Windows paths may
        hold), written as ``\\udXXX`` escapes so the text is also valid UTF-8."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        return _SURROGATE.sub(_escape_surrogate, text)

    def dump(self, path: Union[str, Path]) -> None:
        Path(path).write_text(self.dumps(), encoding="utf-8")

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (validated like a loaded scenario)."""
        changed = replace(self, **changes)
        return Scenario.from_dict(changed.to_dict(), f"<{self.name} with changes>")

    @property
    def duration(self) -> Optional[float]:
        """Seconds from start to COMPLETE, or None for a scenario that never completes."""
        return None if self.complete is None else self.complete.at

    def message_for(self, hresult: int) -> Optional[str]:
        """The text this scenario's MpErrorMessageFormat gives for ``hresult``, if it sets one."""
        return dict(self.messages).get(hresult & 0xFFFFFFFF)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


class _Duplicated(dict):  # type: ignore[type-arg]
    """A JSON object that named a key twice (``key``): the reader reports it where it is."""

    key: str = ""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    duplicated = _Duplicated(pairs)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            duplicated.key = key
            break
        seen.add(key)
    return duplicated


def _json_int(text: str) -> Union[int, _BigInteger]:
    if len(text) > _MAX_DIGITS:
        return _BigInteger(len(text.lstrip("-")))
    return int(text)


_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _too_deep(text: str) -> Optional[int]:
    """Where ``text`` first nests more than MAX_DEPTH objects and lists, or None (strings
    skipped; the JSON may be invalid elsewhere, which json reports)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth = 0
    for match in _NESTING.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif token in ("]", "}"):
            depth -= 1
    return None


def _line_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return f"line {line}, column {column}"


def read_file(path: Path) -> bytes:
    """A scenario or trace file's bytes; ScenarioError naming the file if it cannot be read."""
    try:
        if path.is_dir():
            # Said here because Windows reports a directory as "Permission denied".
            raise OSError(21, "Is a directory")
        return path.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(path), "file", f"cannot be read: {exc.strerror}") from None
    except ValueError as exc:  # a NUL in the path
        raise ScenarioError(str(path), "file", f"cannot be read: {exc}") from None


def parse_json(text: Union[str, bytes], source: str, caller: str) -> Any:
    """Scenario or trace JSON text (or UTF-8 bytes) as Python values, duplicate keys and huge
    integers refused. Raises only ScenarioError: for invalid UTF-8 (the byte), invalid JSON (line
    and column), duplicate keys and nesting deeper than :data:`MAX_DEPTH`; TypeError naming
    ``caller`` for anything but text."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScenarioError(source, f"byte {exc.start}", "the file is not UTF-8") from None
    if not isinstance(text, str):
        raise TypeError(f"{caller} takes str or bytes, not {type(text).__name__}")
    deep = _too_deep(text)
    if deep is not None:
        raise ScenarioError(
            source, _line_column(text, deep), f"nested more than {MAX_DEPTH} levels deep"
        )
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            source, f"line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}"
        ) from None
    except RecursionError:  # not reached: _too_deep stops it first
        raise ScenarioError(source, "text", "nested too deeply") from None


def _hresult_text(code: int) -> str:
    name = hresult_name(code)
    return name if name in _HRESULT_BY_NAME else f"0x{code & _MAX_DWORD:08X}"


def _notification_dict(n: ScenarioNotification) -> dict[str, Any]:
    notify = Notify.coerce(n.notify)
    out: dict[str, Any] = {
        "at": n.at,
        "notify": notify.name if isinstance(notify, Notify) else f"0x{n.notify:04X}",
    }
    if n.hresult:
        out["hresult"] = _hresult_text(n.hresult)
    if n.callback_type != CallbackType.SIGUPDATE:
        out["callback_type"] = n.callback_type
    if n.data is not None:
        update_type = SigUpdateType.coerce(n.data.update_type)
        stage = Stage.coerce(n.data.stage)
        out["data"] = {
            "percent": n.data.percent,
            "total_updates": n.data.total_updates,
            "current_index": n.data.current_index,
            "update_type": update_type.name
            if isinstance(update_type, SigUpdateType)
            else update_type,
            "stage": stage.name if isinstance(stage, Stage) else stage,
        }
        if n.data.path is not None:
            out["data"]["path"] = n.data.path
    return out


def _versions_dict(info: VersionInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr, _ in COMPONENTS:
        component: ComponentVersion = getattr(info, attr)
        if component.updated_at is None:
            out[attr] = component.version
        else:
            out[attr] = {
                "version": component.version,
                "updated_at": moment_text(component.updated_at),
            }
    return out


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_]+")


def _member(position: str, key: Any) -> str:
    """The JSON path of ``key`` in the object at ``position``: ``$.a.b``, or ``$.a["b c"]``."""
    if not isinstance(key, str):
        return f"{position}[{_show(key)}]"
    if _SIMPLE_KEY.fullmatch(key) and len(key) <= _LONG:
        return f"{position}.{key}"
    shown = json.dumps(key)
    if len(shown) > _LONG:
        shown = shown[: _LONG - 4] + '..."'
    return f"{position}[{shown}]"


class _Reader:
    """Validates parsed JSON, naming the position of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, position: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, position, problem)

    def check(self, position: str, problem: Optional[str]) -> None:
        if problem is not None:
            raise self.fail(position, problem)

    def obj(
        self, value: Any, position: str, required: set[str], optional: set[str]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(position, f"expected an object, got {_kind(value)}")
        self.unique(value, position)
        for key in value:
            if not isinstance(key, str):
                raise self.fail(_member(position, key), "keys must be strings")
        for key in sorted(required - value.keys()):
            raise self.fail(position, f"missing key {key!r}")
        for key in sorted(value.keys() - required - optional):
            known = ", ".join(sorted(required | optional))
            raise self.fail(_member(position, key), f"unknown key (known keys: {known})")
        return value

    def unique(self, value: dict[Any, Any], position: str) -> None:
        if isinstance(value, _Duplicated):
            raise self.fail(
                _member(position, value.key),
                f"duplicate key {value.key!r}: each key may appear once in an object",
            )

    def scenario(self, data: Any) -> Scenario:
        doc = self.obj(
            data,
            "$",
            {"format", "version", "name", "notifications", "complete"},
            {
                "description",
                "started_at",
                "open_hresult",
                "start_hresult",
                "abort_latency",
                "versions_before",
                "versions_after",
                "messages",
            },
        )
        if type(doc["format"]) is not str or doc["format"] != FORMAT:
            raise self.fail("$.format", f"expected {FORMAT!r}, got {_show(doc['format'])}")
        if type(doc["version"]) is not int or doc["version"] != VERSION:
            raise self.fail(
                "$.version",
                f"this mpupdate reads scenario format version {VERSION}, the file has "
                f"{_show(doc['version'])}; upgrade mpupdate or convert the file",
            )
        name = self.text(doc["name"], "$.name")
        if not name:
            raise self.fail("$.name", "must not be empty")
        description = self.text(doc.get("description", ""), "$.description")
        notifications = doc["notifications"]
        if not isinstance(notifications, list):
            raise self.fail("$.notifications", f"expected a list, got {_kind(notifications)}")
        items = tuple(
            self.notification(item, f"$.notifications[{i}]") for i, item in enumerate(notifications)
        )
        for i in range(1, len(items)):
            if items[i].at < items[i - 1].at:
                raise self.fail(
                    f"$.notifications[{i}].at",
                    f"{items[i].at:g} is earlier than the previous notification "
                    f"({items[i - 1].at:g}); times must not go backwards",
                )
        complete = None
        if doc["complete"] is not None:
            body = self.obj(doc["complete"], "$.complete", {"at"}, {"hresult"})
            complete = ScenarioComplete(
                self.seconds(body["at"], "$.complete.at"),
                self.hresult(body.get("hresult", 0), "$.complete.hresult"),
            )
            if items and complete.at < items[-1].at:
                raise self.fail(
                    "$.complete.at",
                    f"{complete.at:g} is earlier than the last notification ({items[-1].at:g})",
                )
        abort_latency = self.seconds(doc.get("abort_latency", 0.0), "$.abort_latency")
        started_at = DEFAULT_START
        if "started_at" in doc:
            started_at = self.moment(doc["started_at"], "$.started_at")
        self.check("$.started_at", _span_problem(started_at, _span(items, complete, abort_latency)))
        messages: list[tuple[int, str]] = []
        if "messages" in doc:
            body = doc["messages"]
            if not isinstance(body, dict):
                raise self.fail("$.messages", f"expected an object, got {_kind(body)}")
            self.unique(body, "$.messages")
            keys: dict[int, str] = {}
            for key, text in body.items():
                where = _member("$.messages", key)
                code = self.hresult(key, where)
                if code in keys:
                    raise self.fail(
                        where,
                        f"names the same code (0x{code:08X}) as the key {keys[code]!r}: "
                        "give each code one message",
                    )
                keys[code] = key
                messages.append((code, self.text(text, where)))
        return Scenario(
            name=name,
            description=description,
            notifications=items,
            complete=complete,
            open_hresult=self.hresult(doc.get("open_hresult", 0), "$.open_hresult"),
            start_hresult=self.hresult(doc.get("start_hresult", 0), "$.start_hresult"),
            abort_latency=abort_latency,
            started_at=started_at,
            versions_before=self.versions(doc.get("versions_before", {}), "$.versions_before"),
            versions_after=self.versions(doc.get("versions_after", {}), "$.versions_after"),
            messages=tuple(messages),
        )

    def notification(self, value: Any, position: str) -> ScenarioNotification:
        body = self.obj(value, position, {"at", "notify"}, {"hresult", "data", "callback_type"})
        notify = self.number_or_name(body["notify"], f"{position}.notify", Notify)
        if notify in _SYNTHESIZED:
            raise self.fail(
                f"{position}.notify",
                f"{notify_name(Notify.coerce(notify))} is synthesized by MpClient (and the fake); "
                "leave it out and set the top-level 'complete' instead",
            )
        data = None
        if body.get("data") is not None:
            data = self.data(body["data"], f"{position}.data")
        callback_type = body.get("callback_type", int(CallbackType.SIGUPDATE))
        if _dword_problem(callback_type) is not None:
            raise self.fail(f"{position}.callback_type", "expected an integer 0..4294967295")
        return ScenarioNotification(
            at=self.seconds(body["at"], f"{position}.at"),
            notify=notify,
            hresult=self.hresult(body.get("hresult", 0), f"{position}.hresult"),
            data=data,
            callback_type=callback_type,
        )

    def data(self, value: Any, position: str) -> SigUpdateData:
        body = self.obj(
            value,
            position,
            {"percent", "total_updates", "current_index"},
            {"update_type", "stage", "path"},
        )
        path = body.get("path")
        if path is not None:
            path = self.text(path, f"{position}.path")
            self.check(f"{position}.path", _path_problem(path))
        return SigUpdateData(
            percent=self.dword(body["percent"], f"{position}.percent"),
            total_updates=self.dword(body["total_updates"], f"{position}.total_updates"),
            current_index=self.dword(body["current_index"], f"{position}.current_index"),
            update_type=self.number_or_name(
                body.get("update_type", 0), f"{position}.update_type", SigUpdateType
            ),
            stage=self.number_or_name(body.get("stage", 0), f"{position}.stage", Stage),
            path=path,
        )

    def versions(self, value: Any, position: str) -> VersionInfo:
        names = {attr for attr, _ in COMPONENTS}
        body = self.obj(value, position, set(), names)
        components = {}
        for attr, _ in COMPONENTS:
            item = body.get(attr, "0.0.0.0")
            where = f"{position}.{attr}"
            updated_at = None
            if isinstance(item, dict):
                item_body = self.obj(item, where, {"version"}, {"updated_at"})
                item = item_body["version"]
                if "updated_at" in item_body:
                    at = f"{where}.updated_at"
                    updated_at = self.moment(item_body["updated_at"], at)
                    self.check(at, _updated_at_problem(updated_at))
            if not isinstance(item, str):
                raise self.fail(
                    where, f"expected a version string like 1.403.100.0, got {_kind(item)}"
                )
            try:
                raw = version_from_string(item)
            except ValueError as exc:
                raise self.fail(where, str(exc)) from None
            components[attr] = ComponentVersion(raw, updated_at)
        return VersionInfo(**components)

    def text(self, value: Any, position: str) -> str:
        self.check(position, _text_problem(value))
        return str(value)

    def seconds(self, value: Any, position: str) -> float:
        self.check(position, _seconds_problem(value))
        return float(value)

    def dword(self, value: Any, position: str) -> int:
        self.check(position, _dword_problem(value))
        return int(value)

    def hresult(self, value: Any, position: str) -> int:
        if isinstance(value, str):
            if _HEX.fullmatch(value):
                return int(value, 16)
            if value.upper() in _HRESULT_BY_NAME:
                return _HRESULT_BY_NAME[value.upper()]
            raise self.fail(
                position,
                f'{_show(value)} is not an HRESULT: write hex like "0x80070005" or a name such as '
                "S_OK, S_FALSE, E_ACCESSDENIED, E_ABORT",
            )
        if isinstance(value, bool):
            raise self.fail(position, "expected an HRESULT, got a boolean")
        if isinstance(value, _BigInteger):
            raise self.fail(position, f"{_show(value)} does not fit in 32 bits")
        if not isinstance(value, int):
            raise self.fail(
                position, f"expected an HRESULT (hex string, name or int), got {_kind(value)}"
            )
        self.check(position, _hresult_number_problem(value))
        return int(value) & _MAX_DWORD

    def number_or_name(self, value: Any, position: str, kind: type[IntEnum]) -> int:
        if isinstance(value, bool):
            raise self.fail(position, f"expected a {kind.__name__} name or number, got a boolean")
        if isinstance(value, str) and _HEX.fullmatch(value):
            return int(value, 16)
        if isinstance(value, int):
            if not 0 <= value <= _MAX_DWORD:
                raise self.fail(position, f"expected an integer 0..4294967295, got {_show(value)}")
            return value
        if isinstance(value, str):
            try:
                return int(kind[value.upper()])
            except KeyError:
                names = ", ".join(kind.__members__)
                raise self.fail(
                    position,
                    f"unknown {kind.__name__} name {_show(value)} (known: {names}; or a number)",
                ) from None
        raise self.fail(position, f"expected a {kind.__name__} name or number, got {_kind(value)}")

    def moment(self, value: Any, position: str) -> datetime:
        text = self.text(value, position)
        try:
            moment = parse_moment(text)
        except ValueError:
            raise self.fail(
                position, f"{_show(text)} is not an ISO 8601 time like 2026-01-01T00:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise self.fail(position, f"{_show(text)} has no timezone; add Z for UTC")
        self.check(position, _moment_problem(moment))
        return moment.astimezone(timezone.utc)  # in range, so in range in UTC


_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
_LONG = 80  # longer reprs are cut in messages


def _kind(value: Any) -> str:
    """What ``value`` is, for a message: ``a list``, ``int 5``, ``a 5000-digit integer``."""
    if value is None:
        return "null"
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, _BigInteger) or (isinstance(value, int) and _huge(value)):
        return _show(value)
    return f"{type(value).__name__} {_show(value)}"


def _huge(value: int) -> bool:
    return value.bit_length() > 128


def _show(value: Any) -> str:
    """``repr(value)`` for a message, safely: never more than about 80 characters, huge integers
    by their size (their repr can be refused), anything whose repr fails by its type."""
    if isinstance(value, _BigInteger):
        return f"a {value.digits}-digit integer"
    if isinstance(value, int) and not isinstance(value, bool) and _huge(value):
        digits = int(value.bit_length() * 0.30103) + 1
        return f"an integer of about {digits} digits"
    try:
        text = repr(value)
    except Exception:  # a hostile object given to from_dict
        return f"a {type(value).__name__}"
    if len(text) > _LONG:
        text = text[: _LONG - 5] + "..." + text[-2:]
    return text
