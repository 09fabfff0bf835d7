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
(:class:`ScenarioError`); nothing invalid reaches the fake.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any, Optional, Union

from mpupdate.constants import HRESULTS, CallbackType, Notify, SigUpdateType, Stage
from mpupdate.errors import hresult_name
from mpupdate.events import notify_name
from mpupdate.versions import COMPONENTS, ComponentVersion, VersionInfo, version_from_string

from .clock import DEFAULT_START

__all__ = [
    "FORMAT",
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


class ScenarioError(ValueError):
    """A scenario is malformed. ``source`` names the file, ``position`` where, ``problem`` what."""

    def __init__(self, source: str, position: str, problem: str) -> None:
        super().__init__(f"{source}: {position}: {problem}")
        self.source = source
        self.position = position
        self.problem = problem


@dataclass(frozen=True)
class SigUpdateData:
    """The MPSIGUPDATE_DATA a notification carries."""

    percent: int = 0
    total_updates: int = 0
    current_index: int = 0
    update_type: int = 0
    stage: int = 0
    path: Optional[str] = None


@dataclass(frozen=True)
class ScenarioNotification:
    """One notification the service sends: when (seconds after the start), what, and its data."""

    at: float
    notify: int
    hresult: int = 0
    data: Optional[SigUpdateData] = None
    callback_type: int = int(CallbackType.SIGUPDATE)


@dataclass(frozen=True)
class ScenarioComplete:
    """The final SIGUPDATE_COMPLETE: when, and the outcome in hResult (S_FALSE: none needed)."""

    at: float
    hresult: int = 0


def _default_versions() -> VersionInfo:
    return VersionInfo(*(ComponentVersion(0) for _ in COMPONENTS))


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. Build one with :meth:`load`, :meth:`loads` or :meth:`from_dict`.

    Immutable (as are its parts), so the fakes lay its notifications out as the DLL passes them
    once (:class:`~mpupdate.fakes.dll.PreparedPlan`) and reuse that for every update of it.
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

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Union[str, Path]) -> Scenario:
        """Read and validate a scenario file."""
        path = Path(path)
        if path.is_dir():
            # Said here because Windows reports a directory as "Permission denied".
            raise ScenarioError(str(path), "file", "cannot be read: Is a directory")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(str(path), "file", f"cannot be read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ScenarioError(str(path), f"byte {exc.start}", "the file is not UTF-8") from None
        return cls.loads(text, source=str(path))

    @classmethod
    def loads(cls, text: str, source: str = "<string>") -> Scenario:
        """Parse and validate scenario JSON text; ``source`` names it in errors."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(
                source, f"line {exc.lineno}, column {exc.colno}", f"not valid JSON: {exc.msg}"
            ) from None
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Scenario:
        """Validate a parsed scenario (a dict as JSON gives it)."""
        return _Reader(source).scenario(data)

    # -- writing ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (names for known numbers, hex strings for HRESULTs)."""
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.started_at != DEFAULT_START:
            out["started_at"] = self.started_at.isoformat().replace("+00:00", "Z")
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
        """The scenario as JSON text; ``Scenario.loads(s.dumps()) == s``."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

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
            stamp = component.updated_at.isoformat().replace("+00:00", "Z")
            out[attr] = {"version": component.version, "updated_at": stamp}
    return out


class _Reader:
    """Validates parsed JSON, naming the position of every problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, position: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, position, problem)

    def obj(
        self, value: Any, position: str, required: set[str], optional: set[str]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(position, f"expected an object, got {_kind(value)}")
        for key in sorted(required - value.keys()):
            raise self.fail(position, f"missing key {key!r}")
        for key in sorted(value.keys() - required - optional):
            known = ", ".join(sorted(required | optional))
            raise self.fail(f"{position}.{key}", f"unknown key (known keys: {known})")
        return value

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
        if doc["format"] != FORMAT:
            raise self.fail("$.format", f"expected {FORMAT!r}, got {doc['format']!r}")
        if type(doc["version"]) is not int or doc["version"] != VERSION:
            raise self.fail(
                "$.version",
                f"this mpupdate reads scenario format version {VERSION}, the file has "
                f"{doc['version']!r}; upgrade mpupdate or convert the file",
            )
        name = self.text(doc["name"], "$.name")
        if not name:
            raise self.fail("$.name", "must not be empty")
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
        started_at = DEFAULT_START
        if "started_at" in doc:
            started_at = self.moment(doc["started_at"], "$.started_at")
        messages: tuple[tuple[int, str], ...] = ()
        if "messages" in doc:
            if not isinstance(doc["messages"], dict):
                raise self.fail("$.messages", f"expected an object, got {_kind(doc['messages'])}")
            messages = tuple(
                sorted(
                    (self.hresult(k, f"$.messages.{k}"), self.text(v, f"$.messages.{k}"))
                    for k, v in doc["messages"].items()
                )
            )
        return Scenario(
            name=name,
            description=self.text(doc.get("description", ""), "$.description"),
            notifications=items,
            complete=complete,
            open_hresult=self.hresult(doc.get("open_hresult", 0), "$.open_hresult"),
            start_hresult=self.hresult(doc.get("start_hresult", 0), "$.start_hresult"),
            abort_latency=self.seconds(doc.get("abort_latency", 0.0), "$.abort_latency"),
            started_at=started_at,
            versions_before=self.versions(doc.get("versions_before", {}), "$.versions_before"),
            versions_after=self.versions(doc.get("versions_after", {}), "$.versions_after"),
            messages=messages,
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
        if (
            isinstance(callback_type, bool)
            or not isinstance(callback_type, int)
            or not (0 <= callback_type <= _MAX_DWORD)
        ):
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
            if "\0" in path:
                raise self.fail(f"{position}.path", "must not contain NUL characters")
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
                    updated_at = self.moment(item_body["updated_at"], f"{where}.updated_at")
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
        if not isinstance(value, str):
            raise self.fail(position, f"expected a string, got {_kind(value)}")
        return value

    def seconds(self, value: Any, position: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(position, f"expected seconds as a number, got {_kind(value)}")
        if not math.isfinite(value) or value < 0:
            raise self.fail(position, f"expected a finite number of seconds >= 0, got {value!r}")
        return float(value)

    def dword(self, value: Any, position: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_DWORD:
            raise self.fail(position, f"expected an integer 0..4294967295, got {value!r}")
        return int(value)

    def hresult(self, value: Any, position: str) -> int:
        if isinstance(value, bool):
            raise self.fail(position, "expected an HRESULT, got a boolean")
        if isinstance(value, int):
            if not -0x8000_0000 <= value <= _MAX_DWORD:
                raise self.fail(position, f"{value} does not fit in 32 bits")
            return value & _MAX_DWORD
        if isinstance(value, str):
            if _HEX.fullmatch(value):
                return int(value, 16)
            if value.upper() in _HRESULT_BY_NAME:
                return _HRESULT_BY_NAME[value.upper()]
            raise self.fail(
                position,
                f'{value!r} is not an HRESULT: write hex like "0x80070005" or a name such as '
                "S_OK, S_FALSE, E_ACCESSDENIED, E_ABORT",
            )
        raise self.fail(
            position, f"expected an HRESULT (hex string, name or int), got {_kind(value)}"
        )

    def number_or_name(self, value: Any, position: str, kind: type[IntEnum]) -> int:
        if isinstance(value, bool):
            raise self.fail(position, f"expected a {kind.__name__} name or number, got a boolean")
        if isinstance(value, str) and _HEX.fullmatch(value):
            return int(value, 16)
        if isinstance(value, int):
            if not 0 <= value <= _MAX_DWORD:
                raise self.fail(position, f"expected an integer 0..4294967295, got {value}")
            return value
        if isinstance(value, str):
            try:
                return int(kind[value.upper()])
            except KeyError:
                names = ", ".join(kind.__members__)
                raise self.fail(
                    position,
                    f"unknown {kind.__name__} name {value!r} (known: {names}; or a number)",
                ) from None
        raise self.fail(position, f"expected a {kind.__name__} name or number, got {_kind(value)}")

    def moment(self, value: Any, position: str) -> datetime:
        text = self.text(value, position)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise self.fail(
                position, f"{text!r} is not an ISO 8601 time like 2026-01-01T00:00:00Z"
            ) from None
        if moment.tzinfo is None:
            raise self.fail(position, f"{text!r} has no timezone; add Z for UTC")
        return moment.astimezone(timezone.utc)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"{type(value).__name__} {value!r}"
    )
