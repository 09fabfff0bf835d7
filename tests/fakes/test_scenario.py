"""mpupdate.fakes.scenario (the trace format) and mpupdate.fakes.scenarios (the library)."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest

from mpupdate.constants import Notify, SigUpdateType, Stage
from mpupdate.errors import ProtocolError
from mpupdate.events import Event
from mpupdate.fakes import scenarios
from mpupdate.fakes.clock import DEFAULT_START
from mpupdate.fakes.scenario import (
    EARLIEST,
    FORMAT,
    MAX_SECONDS,
    VERSION,
    Scenario,
    ScenarioComplete,
    ScenarioError,
    ScenarioNotification,
    SigUpdateData,
)
from mpupdate.machine import Outcome, UpdateMachine
from mpupdate.versions import ComponentVersion, VersionInfo

UTC = timezone.utc
BUILT_IN = [
    "access-denied",
    "already-current",
    "cancelled",
    "hung",
    "network-failure",
    "reboot-required",
    "service-unavailable",
    "unknown-notification",
    "updated",
    "updated-three-packages",
]
TOP_KEYS = (
    "abort_latency, complete, description, format, messages, name, notifications, "
    "open_hresult, start_hresult, started_at, version, versions_after, versions_before"
)
HRESULT_HELP = (
    'is not an HRESULT: write hex like "0x80070005" or a name such as '
    "S_OK, S_FALSE, E_ACCESSDENIED, E_ABORT"
)
NOTIFY_NAMES = ", ".join(Notify.__members__)


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "mpupdate-scenario",
        "version": 1,
        "name": "t",
        "notifications": [
            {"at": 0.5, "notify": "SIGUPDATE_SEARCH_START"},
            {
                "at": 1.0,
                "notify": "SIGUPDATE_DOWNLOAD_PROGRESS",
                "data": {
                    "percent": 50,
                    "total_updates": 1,
                    "current_index": 0,
                    "update_type": "HTTP",
                    "stage": "DOWNLOAD",
                    "path": "C:\\d\\mpam-fe.exe",
                },
            },
        ],
        "complete": {"at": 2.0, "hresult": "S_OK"},
    }
    doc.update(changes)
    return doc


def _with(path: str, value: Any) -> dict[str, Any]:
    """The base document with one value replaced; ``path`` like ``notifications.1.data.percent``."""
    doc = copy.deepcopy(_doc())
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return doc


def _without(path: str) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    del target[last]
    return doc


def _error(doc: Any, source: str = "s.json") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        Scenario.loads(json.dumps(doc), source=source)
    error: ScenarioError = info.value
    return error


def _problem(doc: Any) -> tuple[str, str]:
    error = _error(doc)
    assert str(error) == f"s.json: {error.position}: {error.problem}"
    assert error.source == "s.json"
    return error.position, error.problem


# -- the built-in library ----------------------------------------------------------------------


def test_built_in_scenario_names_are_exactly_the_library() -> None:
    assert scenarios.names() == BUILT_IN


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_scenario_loads_under_its_own_name(name: str) -> None:
    scenario = scenarios.get(name)
    assert scenario.name == name
    assert scenario.description != ""
    assert scenarios.load_any(name) is scenario


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_built_in_scenario_round_trips_through_json(name: str) -> None:
    scenario = scenarios.get(name)
    assert Scenario.loads(scenario.dumps()) == scenario
    assert Scenario.from_dict(scenario.to_dict()) == scenario


@pytest.mark.parametrize(
    ("name", "count", "complete", "start_hresult", "abort_latency"),
    [
        ("access-denied", 0, None, 0x80070005, 0.0),
        ("already-current", 3, ScenarioComplete(1.8, 1), 0, 0.0),
        ("cancelled", 34, ScenarioComplete(601.9, 0x80004004), 0, 0.5),
        ("hung", 1, None, 0, 0.5),
        ("network-failure", 7, ScenarioComplete(33.8, 0x80072EFD), 0, 0.0),
        ("reboot-required", 15, ScenarioComplete(8.4, 0), 0, 0.0),
        ("service-unavailable", 0, ScenarioComplete(2.0, 0x800106BA), 0, 0.0),
        ("unknown-notification", 15, ScenarioComplete(8.4, 0), 0, 0.0),
        ("updated", 14, ScenarioComplete(8.4, 0), 0, 0.0),
        ("updated-three-packages", 34, ScenarioComplete(21.2, 0), 0, 0.0),
    ],
)
def test_built_in_scenario_contents(
    name: str,
    count: int,
    complete: Optional[ScenarioComplete],
    start_hresult: int,
    abort_latency: float,
) -> None:
    scenario = scenarios.get(name)
    assert len(scenario.notifications) == count
    assert scenario.complete == complete
    assert scenario.start_hresult == start_hresult
    assert scenario.open_hresult == 0
    assert scenario.abort_latency == abort_latency
    assert scenario.started_at == DEFAULT_START
    assert scenario.duration == (None if complete is None else complete.at)


def test_built_in_unknown_notification_scenario_keeps_the_number() -> None:
    numbers = [n.notify for n in scenarios.get("unknown-notification").notifications]
    assert numbers.count(0x800E) == 1
    assert all(n == 0x800E or 0x8002 <= n <= 0x800C for n in numbers)


def test_built_in_updated_scenario_first_download_event() -> None:
    first = scenarios.get("updated").notifications[3]
    assert first == ScenarioNotification(
        at=1.7,
        notify=Notify.SIGUPDATE_DOWNLOAD_START,
        hresult=0,
        data=SigUpdateData(
            percent=0,
            total_updates=1,
            current_index=0,
            update_type=SigUpdateType.UNMANAGED,
            stage=Stage.DOWNLOAD,
            path="C:\\Windows\\SoftwareDistribution\\Download\\Install\\"
            "am_delta_patch_1.419.135.0.exe",
        ),
        callback_type=6,
    )
    assert scenarios.get("updated").versions_after.av_signature.version == "1.419.135.0"


def _machine_events(scenario: Scenario) -> list[Event]:
    """What the machine sees for a scenario: START, the notifications, then COMPLETE."""
    t = scenario.started_at
    events = [Event(Notify.SIGUPDATE_START, 0, t)]
    for n in scenario.notifications:
        notify = Notify.coerce(n.notify)
        if n.data is None:
            events.append(Event(notify, n.hresult, t, callback_type=n.callback_type))
            continue
        events.append(
            Event(
                notify,
                n.hresult,
                t,
                percent=n.data.percent,
                total_updates=n.data.total_updates,
                current_index=n.data.current_index,
                update_type=SigUpdateType.coerce(n.data.update_type),
                stage=Stage.coerce(n.data.stage),
                path=n.data.path,
                callback_type=n.callback_type,
            )
        )
    assert scenario.complete is not None
    events.append(Event(Notify.SIGUPDATE_COMPLETE, scenario.complete.hresult, t))
    return events


@pytest.mark.parametrize(
    ("name", "outcome"),
    [
        ("already-current", Outcome.ALREADY_CURRENT),
        ("cancelled", Outcome.CANCELLED),
        ("network-failure", Outcome.FAILED),
        ("reboot-required", Outcome.UPDATED),
        ("service-unavailable", Outcome.FAILED),
        ("updated", Outcome.UPDATED),
        ("updated-three-packages", Outcome.UPDATED),
    ],
)
def test_built_in_scenarios_follow_the_strict_update_grammar(name: str, outcome: Outcome) -> None:
    machine = UpdateMachine(strict=True)
    for event in _machine_events(scenarios.get(name)):
        machine.feed(event)
    assert machine.outcome is outcome
    assert machine.anomalies == []


def test_built_in_unknown_notification_scenario_breaks_only_the_known_number_rule() -> None:
    events = _machine_events(scenarios.get("unknown-notification"))
    machine = UpdateMachine(strict=True)
    with pytest.raises(ProtocolError) as info:
        for event in events:
            machine.feed(event)
    assert (info.value.position, info.value.expected) == (10, "a known notification")
    lenient = UpdateMachine()
    for event in events:
        lenient.feed(event)
    assert [a.message for a in lenient.anomalies] == [
        "unknown notification UNKNOWN_0x800E (expected a known notification)"
    ]
    assert lenient.outcome is Outcome.UPDATED


def test_unknown_built_in_name_lists_the_known_names() -> None:
    with pytest.raises(ScenarioError) as info:
        scenarios.get("updatd")
    error = info.value
    assert (error.source, error.position) == ("updatd", "name")
    assert error.problem == f"no built-in scenario by that name; known: {', '.join(BUILT_IN)}"
    assert str(error) == f"updatd: name: {error.problem}"


def test_get_with_a_json_path_loads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_doc(name="mine")), encoding="utf-8")
    assert scenarios.get(str(path)).name == "mine"
    assert scenarios.load_any(path).name == "mine"


def test_get_with_a_path_reads_the_file_again_after_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "changing.json"
    Scenario(name="first").dump(path)
    assert scenarios.get(str(path)).name == "first"
    Scenario(name="second").dump(path)
    assert scenarios.get(str(path)).name == "second"


def test_load_any_passes_a_scenario_through() -> None:
    scenario = Scenario(name="x")
    assert scenarios.load_any(scenario) is scenario


# -- reading and writing -----------------------------------------------------------------------


def test_loads_builds_the_exact_scenario() -> None:
    scenario = Scenario.loads(json.dumps(_doc()))
    assert scenario == Scenario(
        name="t",
        description="",
        notifications=(
            ScenarioNotification(0.5, 0x8002),
            ScenarioNotification(
                1.0,
                0x8006,
                0,
                SigUpdateData(50, 1, 0, 2, 2, "C:\\d\\mpam-fe.exe"),
                6,
            ),
        ),
        complete=ScenarioComplete(2.0, 0),
        open_hresult=0,
        start_hresult=0,
        abort_latency=0.0,
        started_at=DEFAULT_START,
        messages=(),
    )
    assert scenario.versions_before == VersionInfo(*[ComponentVersion(0)] * 8)


def test_dump_and_load_through_a_file(tmp_path: Path) -> None:
    scenario = scenarios.get("network-failure")
    path = tmp_path / "nf.json"
    scenario.dump(path)
    assert path.read_text(encoding="utf-8") == scenario.dumps()
    assert Scenario.load(path) == scenario
    assert Scenario.load(str(path)) == scenario


def test_dumps_writes_names_hex_and_only_non_default_keys() -> None:
    scenario = Scenario.from_dict(
        _doc(
            notifications=[
                {"at": 1, "notify": "0x800E", "hresult": -2147024891, "callback_type": 3},
                {
                    "at": 2,
                    "notify": "SIGUPDATE_INSTALL_START",
                    "data": {"percent": 0, "total_updates": 1, "current_index": 0, "stage": 9},
                },
            ],
            complete={"at": 3, "hresult": "0x80501234"},
            messages={"0x80501234": "Kaputt."},
            started_at="2026-05-01T12:00:00+02:00",
        )
    )
    assert json.loads(scenario.dumps()) == {
        "format": "mpupdate-scenario",
        "version": 1,
        "name": "t",
        "started_at": "2026-05-01T10:00:00Z",
        "notifications": [
            {"at": 1.0, "notify": "0x800E", "hresult": "E_ACCESSDENIED", "callback_type": 3},
            {
                "at": 2.0,
                "notify": "SIGUPDATE_INSTALL_START",
                "data": {
                    "percent": 0,
                    "total_updates": 1,
                    "current_index": 0,
                    "update_type": "NONE",
                    "stage": 9,
                },
            },
        ],
        "complete": {"at": 3.0, "hresult": "0x80501234"},
        "versions_before": dict.fromkeys(
            [
                "product",
                "service",
                "file_system_filter",
                "engine",
                "as_signature",
                "av_signature",
                "nis_engine",
                "nis_signature",
            ],
            "0.0.0.0",
        ),
        "versions_after": dict.fromkeys(
            [
                "product",
                "service",
                "file_system_filter",
                "engine",
                "as_signature",
                "av_signature",
                "nis_engine",
                "nis_signature",
            ],
            "0.0.0.0",
        ),
        "messages": {"0x80501234": "Kaputt."},
    }
    assert Scenario.loads(scenario.dumps()) == scenario
    assert scenario.message_for(0x80501234) == "Kaputt."
    assert scenario.message_for(-2142236108) == "Kaputt."
    assert scenario.message_for(0x80070005) is None


def test_dumps_keeps_non_ascii_text_and_ends_with_a_newline() -> None:
    scenario = Scenario(name="ü", description="Prüfung")
    text = scenario.dumps()
    assert '"name": "ü"' in text
    assert text.endswith("}\n")
    assert Scenario.loads(text) == scenario


def test_round_trip_keeps_versions_with_update_times() -> None:
    scenario = Scenario.from_dict(
        _doc(
            versions_after={
                "engine": {"version": "1.1.24090.11", "updated_at": "2026-01-02T03:04:05.000006Z"},
                "av_signature": "1.419.135.0",
            },
            open_hresult="E_ACCESSDENIED",
            abort_latency=0.25,
            complete=None,
        )
    )
    assert scenario.versions_after.engine == ComponentVersion(
        0x0001_0001_5E1A_000B, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    )
    assert scenario.versions_after.av_signature == ComponentVersion(0x0001_01A3_0087_0000)
    assert scenario.open_hresult == 0x80070005
    assert scenario.complete is None
    assert scenario.duration is None
    assert Scenario.loads(scenario.dumps()) == scenario


def test_replace_changes_fields_and_validates() -> None:
    base = Scenario.from_dict(_doc())
    changed = base.replace(description="new", complete=ScenarioComplete(5.0, 1))
    assert changed.description == "new"
    assert changed.complete == ScenarioComplete(5.0, 1)
    assert changed.notifications == base.notifications
    assert base.description == ""


def test_replace_with_invalid_changes_names_the_problem() -> None:
    base = Scenario.from_dict(_doc())
    with pytest.raises(ScenarioError) as info:
        base.replace(complete=ScenarioComplete(0.5))
    error = info.value
    assert error.source == "<t with changes>"
    assert error.position == "$.complete.at"
    assert error.problem == "0.5 is earlier than the last notification (1)"


def test_replace_rejects_a_synthesized_notification() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario(name="x").replace(notifications=(ScenarioNotification(0.1, 0x8001),))
    assert info.value.position == "$.notifications[0].notify"


def test_replace_accepts_a_signed_hresult_for_a_named_code() -> None:
    assert Scenario(name="x").replace(start_hresult=-2147024891).start_hresult == 0x80070005


def test_replace_accepts_a_signed_hresult_for_an_unnamed_code() -> None:
    assert Scenario(name="x").replace(start_hresult=-2142236108).start_hresult == 0x80501234


def test_replace_of_unknown_field_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Scenario(name="x").replace(colour="blue")


def test_default_scenario_completes_after_one_second() -> None:
    scenario = Scenario(name="x")
    assert scenario.complete == ScenarioComplete(1.0, 0)
    assert scenario.duration == 1.0
    assert Scenario.loads(scenario.dumps()) == scenario


def test_format_constants() -> None:
    assert (FORMAT, VERSION) == ("mpupdate-scenario", 1)


# -- HRESULT spellings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0x80070005", 0x80070005),
        ("0X80070005", 0x80070005),
        ("0x8007000e", 0x8007000E),
        ("0x1", 1),
        ("E_ACCESSDENIED", 0x80070005),
        ("e_accessdenied", 0x80070005),
        ("S_FALSE", 1),
        ("RPC_S_SERVER_UNAVAILABLE", 0x800106BA),
        (-2147024891, 0x80070005),
        (2147942405, 0x80070005),
        (-2147483648, 0x80000000),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (-1, 0xFFFFFFFF),
        (0, 0),
    ],
)
def test_hresult_spellings_are_accepted(value: object, expected: int) -> None:
    scenario = Scenario.from_dict(_with("complete.hresult", value))
    assert scenario.complete is not None
    assert scenario.complete.hresult == expected


def test_complete_without_hresult_is_s_ok() -> None:
    assert Scenario.from_dict(_without("complete.hresult")).complete == ScenarioComplete(2.0, 0)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0x", f"'0x' {HRESULT_HELP}"),
        ("0x123456789", f"'0x123456789' {HRESULT_HELP}"),
        ("80070005", f"'80070005' {HRESULT_HELP}"),
        ("E_NOPE", f"'E_NOPE' {HRESULT_HELP}"),
        ("", f"'' {HRESULT_HELP}"),
        (0x1_0000_0000, "4294967296 does not fit in 32 bits"),
        (-0x8000_0001, "-2147483649 does not fit in 32 bits"),
        (True, "expected an HRESULT, got a boolean"),
        (False, "expected an HRESULT, got a boolean"),
        (1.5, "expected an HRESULT (hex string, name or int), got float 1.5"),
        (None, "expected an HRESULT (hex string, name or int), got null"),
        ([1], "expected an HRESULT (hex string, name or int), got a list"),
    ],
)
def test_bad_hresults_are_reported_with_position(value: object, problem: str) -> None:
    assert _problem(_with("complete.hresult", value)) == ("$.complete.hresult", problem)


@pytest.mark.parametrize(
    ("key", "position"),
    [
        ("open_hresult", "$.open_hresult"),
        ("start_hresult", "$.start_hresult"),
    ],
)
def test_bad_top_level_hresults_name_their_key(key: str, position: str) -> None:
    assert _problem(_doc(**{key: "nope"})) == (position, f"'nope' {HRESULT_HELP}")


def test_bad_notification_hresult_names_the_notification() -> None:
    doc = _with("notifications.0.hresult", True)
    assert _problem(doc) == ("$.notifications[0].hresult", "expected an HRESULT, got a boolean")


# -- structural problems -----------------------------------------------------------------------


def test_invalid_json_reports_line_and_column() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.loads('{\n  "format": "mpupdate-scenario",\n  "version": 1,,\n}', source="a.json")
    error = info.value
    assert (error.source, error.position) == ("a.json", "line 3, column 16")
    assert error.problem == "not valid JSON: Expecting property name enclosed in double quotes"
    assert str(error) == (
        "a.json: line 3, column 16: not valid JSON: "
        "Expecting property name enclosed in double quotes"
    )


def test_empty_text_is_invalid_json_at_line_1_column_1() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.loads("")
    assert str(info.value) == "<string>: line 1, column 1: not valid JSON: Expecting value"


@pytest.mark.parametrize(
    ("doc", "kind"),
    [([], "a list"), ("x", "a string"), (None, "null"), (3, "int 3"), (True, "a boolean")],
)
def test_document_that_is_not_an_object(doc: object, kind: str) -> None:
    assert _problem(doc) == ("$", f"expected an object, got {kind}")


def test_from_dict_default_source_is_dict() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict([])
    assert str(info.value) == "<dict>: $: expected an object, got a list"


def test_wrong_format() -> None:
    assert _problem(_doc(format="other")) == (
        "$.format",
        "expected 'mpupdate-scenario', got 'other'",
    )


@pytest.mark.parametrize(("version", "shown"), [(2, "2"), (0, "0"), ("1", "'1'"), (True, "True")])
def test_wrong_version_says_what_to_do(version: object, shown: str) -> None:
    assert _problem(_doc(version=version)) == (
        "$.version",
        f"this mpupdate reads scenario format version 1, the file has {shown}; "
        "upgrade mpupdate or convert the file",
    )


@pytest.mark.parametrize("key", ["complete", "format", "name", "notifications", "version"])
def test_missing_top_level_key(key: str) -> None:
    assert _problem(_without(key)) == ("$", f"missing key {key!r}")


def test_missing_keys_are_reported_in_sorted_order() -> None:
    assert _problem({}) == ("$", "missing key 'complete'")


def test_unknown_top_level_key_lists_the_known_keys() -> None:
    assert _problem(_doc(colour="blue")) == (
        "$.colour",
        f"unknown key (known keys: {TOP_KEYS})",
    )


def test_unknown_notification_key_lists_the_known_keys() -> None:
    doc = _with("notifications.0.delay", 1)
    assert _problem(doc) == (
        "$.notifications[0].delay",
        "unknown key (known keys: at, callback_type, data, hresult, notify)",
    )


def test_unknown_data_key_lists_the_known_keys() -> None:
    doc = _with("notifications.1.data.size", 1)
    assert _problem(doc) == (
        "$.notifications[1].data.size",
        "unknown key (known keys: current_index, path, percent, stage, total_updates, update_type)",
    )


def test_missing_data_key() -> None:
    assert _problem(_without("notifications.1.data.percent")) == (
        "$.notifications[1].data",
        "missing key 'percent'",
    )


def test_missing_notification_key() -> None:
    assert _problem(_without("notifications.0.at")) == ("$.notifications[0]", "missing key 'at'")


def test_unknown_complete_key() -> None:
    assert _problem(_with("complete.why", "x")) == (
        "$.complete.why",
        "unknown key (known keys: at, hresult)",
    )


def test_notifications_must_be_a_list() -> None:
    assert _problem(_doc(notifications={})) == (
        "$.notifications",
        "expected a list, got an object",
    )


def test_notification_must_be_an_object() -> None:
    assert _problem(_with("notifications.1", "SIGUPDATE_START")) == (
        "$.notifications[1]",
        "expected an object, got a string",
    )


@pytest.mark.parametrize(
    ("value", "problem"), [(5, "expected a string, got int 5"), ("", "must not be empty")]
)
def test_bad_name(value: object, problem: str) -> None:
    assert _problem(_doc(name=value)) == ("$.name", problem)


def test_bad_description() -> None:
    assert _problem(_doc(description=None)) == ("$.description", "expected a string, got null")


# -- notifications -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("SIGUPDATE_START", "SIGUPDATE_START"),
        ("SIGUPDATE_COMPLETE", "SIGUPDATE_COMPLETE"),
        (0x8001, "SIGUPDATE_START"),
        ("0x800D", "SIGUPDATE_COMPLETE"),
    ],
)
def test_synthesized_notification_is_rejected_by_name(value: object, name: str) -> None:
    assert _problem(_with("notifications.0.notify", value)) == (
        "$.notifications[0].notify",
        f"{name} is synthesized by MpClient (and the fake); "
        "leave it out and set the top-level 'complete' instead",
    )


@pytest.mark.parametrize(
    ("value", "index"),
    [("SIGUPDATE_START", 0), ("sigupdate_complete", 1), (0x8001, 0), ("0x800d", 1)],
)
def test_start_or_complete_inside_notifications_is_rejected(value: object, index: int) -> None:
    position, problem = _problem(_with(f"notifications.{index}.notify", value))
    assert position == f"$.notifications[{index}].notify"
    assert problem.endswith(
        " is synthesized by MpClient (and the fake); "
        "leave it out and set the top-level 'complete' instead"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sigupdate_search_start", 0x8002),
        ("0x800E", 0x800E),
        (0x800E, 0x800E),
        (0, 0),
        (0xFFFFFFFF, 0xFFFFFFFF),
        ("INTERNAL_FAILURE", 0x2001),
    ],
)
def test_notify_may_be_a_name_or_any_dword(value: object, expected: int) -> None:
    scenario = Scenario.from_dict(_with("notifications.0.notify", value))
    assert scenario.notifications[0].notify == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "SIGUPDATE_BOGUS",
            f"unknown Notify name 'SIGUPDATE_BOGUS' (known: {NOTIFY_NAMES}; or a number)",
        ),
        ("", f"unknown Notify name '' (known: {NOTIFY_NAMES}; or a number)"),
        (-1, "expected an integer 0..4294967295, got -1"),
        (0x1_0000_0000, "expected an integer 0..4294967295, got 4294967296"),
        (True, "expected a Notify name or number, got a boolean"),
        (1.0, "expected a Notify name or number, got float 1.0"),
        (None, "expected a Notify name or number, got null"),
    ],
)
def test_bad_notify_values(value: object, problem: str) -> None:
    assert _problem(_with("notifications.0.notify", value)) == (
        "$.notifications[0].notify",
        problem,
    )


def test_unknown_update_type_name_lists_the_names() -> None:
    assert _problem(_with("notifications.1.data.update_type", "WU")) == (
        "$.notifications[1].data.update_type",
        "unknown SigUpdateType name 'WU' (known: NONE, MANAGED, HTTP, HTTP_SRV, UNC, UNMANAGED, "
        "MANAGED_PLATFORM, UNMANAGED_PLATFORM; or a number)",
    )


def test_unknown_stage_name_lists_the_names() -> None:
    assert _problem(_with("notifications.1.data.stage", "VERIFY")) == (
        "$.notifications[1].data.stage",
        "unknown Stage name 'VERIFY' (known: UNKNOWN, SEARCH, DOWNLOAD, INSTALL; or a number)",
    )


def test_update_type_and_stage_accept_lowercase_names_and_numbers() -> None:
    doc = _with("notifications.1.data.update_type", "http_srv")
    doc["notifications"][1]["data"]["stage"] = 7
    data = Scenario.from_dict(doc).notifications[1].data
    assert data is not None
    assert (data.update_type, data.stage) == (SigUpdateType.HTTP_SRV, 7)


def test_data_defaults_for_update_type_stage_and_path() -> None:
    doc = _without("notifications.1.data.update_type")
    del doc["notifications"][1]["data"]["stage"]
    del doc["notifications"][1]["data"]["path"]
    assert Scenario.from_dict(doc).notifications[1].data == SigUpdateData(50, 1, 0, 0, 0, None)


def test_null_data_is_no_data() -> None:
    assert Scenario.from_dict(_with("notifications.1.data", None)).notifications[1].data is None


@pytest.mark.parametrize("key", ["percent", "total_updates", "current_index"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (50.5, "50.5"),
        (1.0, "1.0"),
        ("50", "'50'"),
        (True, "True"),
        (None, "None"),
        (-1, "-1"),
        (0x1_0000_0000, "4294967296"),
    ],
)
def test_data_dwords_must_be_integers_in_range(key: str, value: object, shown: str) -> None:
    assert _problem(_with(f"notifications.1.data.{key}", value)) == (
        f"$.notifications[1].data.{key}",
        f"expected an integer 0..4294967295, got {shown}",
    )


def test_percent_may_be_any_dword_for_replaying_odd_values() -> None:
    doc = _with("notifications.1.data.percent", 0xFFFFFFFF)
    data = Scenario.from_dict(doc).notifications[1].data
    assert data is not None
    assert data.percent == 0xFFFFFFFF


def test_path_with_nul_is_rejected() -> None:
    assert _problem(_with("notifications.1.data.path", "C:\\a\u0000b")) == (
        "$.notifications[1].data.path",
        "must not contain NUL characters",
    )


def test_path_must_be_a_string() -> None:
    assert _problem(_with("notifications.1.data.path", 3)) == (
        "$.notifications[1].data.path",
        "expected a string, got int 3",
    )


def test_path_keeps_non_ascii_and_non_bmp_characters() -> None:
    path = "C:\\Données\\\U0001f600.exe"
    scenario = Scenario.from_dict(_with("notifications.1.data.path", path))
    data = scenario.notifications[1].data
    assert data is not None
    assert data.path == path
    assert Scenario.loads(scenario.dumps()) == scenario


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "expected an integer 0..4294967295"),
        (True, "expected an integer 0..4294967295"),
        (6.0, "expected an integer 0..4294967295"),
        (0x1_0000_0000, "expected an integer 0..4294967295"),
    ],
)
def test_bad_callback_type(value: object, problem: str) -> None:
    assert _problem(_with("notifications.0.callback_type", value)) == (
        "$.notifications[0].callback_type",
        problem,
    )


# -- times -------------------------------------------------------------------------------------


def test_times_going_backwards_are_rejected() -> None:
    doc = _doc()
    doc["notifications"][0]["at"] = 1.5
    assert _problem(doc) == (
        "$.notifications[1].at",
        "1 is earlier than the previous notification (1.5); times must not go backwards",
    )


def test_equal_times_are_allowed() -> None:
    doc = _with("notifications.0.at", 1.0)
    assert [n.at for n in Scenario.from_dict(doc).notifications] == [1.0, 1.0]


def test_complete_before_the_last_notification_is_rejected() -> None:
    assert _problem(_with("complete.at", 0.75)) == (
        "$.complete.at",
        "0.75 is earlier than the last notification (1)",
    )


def test_complete_at_the_same_time_as_the_last_notification_is_allowed() -> None:
    assert Scenario.from_dict(_with("complete.at", 1.0)).complete == ScenarioComplete(1.0, 0)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-0.5, "expected a finite number of seconds 0..10000000000 (about 317 years), got -0.5"),
        (-1, "expected a finite number of seconds 0..10000000000 (about 317 years), got -1"),
        (math.nan, "expected a finite number of seconds 0..10000000000 (about 317 years), got nan"),
        (math.inf, "expected a finite number of seconds 0..10000000000 (about 317 years), got inf"),
        ("1", "expected seconds as a number, got a string"),
        (True, "expected seconds as a number, got a boolean"),
        (None, "expected seconds as a number, got null"),
    ],
)
def test_bad_seconds(value: object, problem: str) -> None:
    assert _problem(_with("notifications.0.at", value)) == ("$.notifications[0].at", problem)


def test_nan_in_json_text_is_reported_as_bad_seconds() -> None:
    text = json.dumps(_doc()).replace('"at": 2.0', '"at": NaN')
    with pytest.raises(ScenarioError) as info:
        Scenario.loads(text, source="n.json")
    assert str(info.value) == (
        "n.json: $.complete.at: expected a finite number of seconds 0..10000000000 "
        "(about 317 years), got nan"
    )


def test_negative_abort_latency() -> None:
    assert _problem(_doc(abort_latency=-2)) == (
        "$.abort_latency",
        "expected a finite number of seconds 0..10000000000 (about 317 years), got -2",
    )


def test_int_seconds_become_floats() -> None:
    scenario = Scenario.from_dict(_doc(abort_latency=2, complete={"at": 3}))
    assert scenario.abort_latency == 2.0
    assert type(scenario.abort_latency) is float
    assert scenario.complete is not None
    assert type(scenario.complete.at) is float


def test_started_at_is_converted_to_utc() -> None:
    scenario = Scenario.from_dict(_doc(started_at="2026-03-01T09:30:00-05:00"))
    assert scenario.started_at == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)
    assert scenario.started_at.tzinfo is UTC
    assert scenario.to_dict()["started_at"] == "2026-03-01T14:30:00Z"


def test_started_at_accepts_z() -> None:
    scenario = Scenario.from_dict(_doc(started_at="2026-03-01T09:30:00.250000Z"))
    assert scenario.started_at == datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)


def test_started_at_without_timezone_is_rejected() -> None:
    assert _problem(_doc(started_at="2026-01-01T00:00:00")) == (
        "$.started_at",
        "'2026-01-01T00:00:00' has no timezone; add Z for UTC",
    )


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", ""])
def test_started_at_that_is_not_iso_8601(value: str) -> None:
    assert _problem(_doc(started_at=value)) == (
        "$.started_at",
        f"{value!r} is not an ISO 8601 time like 2026-01-01T00:00:00Z",
    )


def test_started_at_must_be_a_string() -> None:
    assert _problem(_doc(started_at=0)) == ("$.started_at", "expected a string, got int 0")


def test_default_started_at_is_2026_utc() -> None:
    assert Scenario.from_dict(_doc()).started_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert datetime(2026, 1, 1, tzinfo=UTC) == DEFAULT_START


# -- versions and messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.2.3", "version '1.2.3' must be four dot-separated numbers, like 1.403.100.0"),
        ("1.2.3.x", "version '1.2.3.x' must be four dot-separated numbers, like 1.403.100.0"),
        ("1.2.3.70000", "version '1.2.3.70000': each part must be at most 65535"),
        (5, "expected a version string like 1.403.100.0, got int 5"),
        (None, "expected a version string like 1.403.100.0, got null"),
    ],
)
def test_bad_version_strings(value: object, problem: str) -> None:
    assert _problem(_doc(versions_before={"engine": value})) == (
        "$.versions_before.engine",
        problem,
    )


def test_unknown_version_component() -> None:
    assert _problem(_doc(versions_after={"kernel": "1.0.0.0"})) == (
        "$.versions_after.kernel",
        "unknown key (known keys: as_signature, av_signature, engine, file_system_filter, "
        "nis_engine, nis_signature, product, service)",
    )


def test_version_object_needs_a_version() -> None:
    assert _problem(_doc(versions_after={"engine": {"updated_at": "2026-01-01T00:00:00Z"}})) == (
        "$.versions_after.engine",
        "missing key 'version'",
    )


def test_version_update_time_without_timezone() -> None:
    doc = _doc(
        versions_after={"engine": {"version": "1.0.0.0", "updated_at": "2026-01-01T00:00:00"}}
    )
    assert _problem(doc) == (
        "$.versions_after.engine.updated_at",
        "'2026-01-01T00:00:00' has no timezone; add Z for UTC",
    )
    # a date alone is no time at all (on every Python: 3.11's fromisoformat took it)
    doc = _doc(versions_after={"engine": {"version": "1.0.0.0", "updated_at": "2026-01-01"}})
    assert _problem(doc) == (
        "$.versions_after.engine.updated_at",
        "'2026-01-01' is not an ISO 8601 time like 2026-01-01T00:00:00Z",
    )


def test_versions_must_be_an_object() -> None:
    assert _problem(_doc(versions_before=[])) == (
        "$.versions_before",
        "expected an object, got a list",
    )


def test_messages_are_keyed_by_hresult() -> None:
    scenario = Scenario.from_dict(_doc(messages={"E_ACCESSDENIED": "Zugriff verweigert."}))
    assert scenario.messages == ((0x80070005, "Zugriff verweigert."),)


def test_bad_message_key_and_value() -> None:
    assert _problem(_doc(messages={"oops": "x"})) == ("$.messages.oops", f"'oops' {HRESULT_HELP}")
    assert _problem(_doc(messages={"0x1": 2})) == ("$.messages.0x1", "expected a string, got int 2")
    assert _problem(_doc(messages=[])) == ("$.messages", "expected an object, got a list")


# -- files -------------------------------------------------------------------------------------


def test_missing_file_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ScenarioError) as info:
        Scenario.load(path)
    error = info.value
    assert (error.source, error.position) == (str(path), "file")
    assert error.problem == "cannot be read: No such file or directory"
    assert str(error) == f"{path}: file: cannot be read: No such file or directory"


def test_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.load(tmp_path)
    assert (info.value.position, info.value.problem) == ("file", "cannot be read: Is a directory")


def test_non_utf8_file_reports_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(ScenarioError) as info:
        Scenario.load(path)
    error = info.value
    assert (error.source, error.position, error.problem) == (
        str(path),
        "byte 13",
        "the file is not UTF-8",
    )


def test_errors_in_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_doc(version=7)), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        Scenario.load(path)
    assert info.value.source == str(path)
    assert info.value.position == "$.version"


def test_scenario_error_is_a_value_error() -> None:
    error = ScenarioError("f.json", "$.x", "bad")
    assert isinstance(error, ValueError)
    assert str(error) == "f.json: $.x: bad"
    assert error.args == ("f.json: $.x: bad",)


# -- ranges, hostile input, round trips (the reliability issue) ---------------------------------


def _text_with(key_value: str) -> str:
    """The base document's JSON with ``key_value`` (raw JSON, e.g. ``"a": 1``) added at the end."""
    return json.dumps(_doc())[:-1] + ", " + key_value + "}"


def _text_error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        Scenario.loads(text, source="s.json")
    error: ScenarioError = info.value
    assert error.source == "s.json" and error.position and error.problem
    return error


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("notifications.0.at", 1e13),
        ("complete.at", 1e300),
        ("complete.at", 10_000_000_001),
    ],
)
def test_times_past_max_seconds_are_rejected_with_the_range(path: str, value: float) -> None:
    position, problem = _problem(_with(path, value))
    assert position == "$." + path.replace(".0.", "[0].")
    assert "0..10000000000 (about 317 years)" in problem


def test_times_up_to_max_seconds_are_accepted() -> None:
    scenario = Scenario.from_dict(_with("complete.at", MAX_SECONDS))
    assert scenario.complete is not None and scenario.complete.at == 1e10


@pytest.mark.parametrize(
    "value",
    [
        "1600-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+05:00",  # OverflowError converting to UTC, before
        "9999-12-31T23:00:00-05:00",  # ditto
    ],
)
def test_started_at_outside_the_calendar_is_rejected_with_the_range(value: str) -> None:
    position, problem = _problem(_doc(started_at=value))
    assert position == "$.started_at"
    assert "out of range: moments are 1601-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z" in problem


def test_started_at_must_leave_room_for_the_scenario_span() -> None:
    doc = _doc(started_at="9999-12-31T23:59:59Z", abort_latency=0.5)
    position, problem = _problem(doc)
    assert position == "$.started_at"
    assert problem == (
        "9999-12-31T23:59:59Z is too late: the scenario runs 2.5 seconds from its start (its "
        "last time plus abort_latency), so it must start "
        "1601-01-01T00:00:00Z..9999-12-31T23:59:57.499999Z for its FILETIMEs to stay in the "
        "calendar"
    )
    latest = Scenario.from_dict(_doc(started_at="9999-12-31T23:59:57.999999Z"))
    assert latest.started_at == datetime(9999, 12, 31, 23, 59, 57, 999999, tzinfo=UTC)
    earliest = Scenario.from_dict(_doc(started_at="1601-01-01T00:00:00Z"))
    assert earliest.started_at == EARLIEST


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1500-01-01T00:00:00Z", "out of range"),
        ("1601-01-01T00:00:00Z", "FILETIME 0"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_version_update_time_outside_filetime_is_rejected(value: str, problem: str) -> None:
    doc = _doc(versions_before={"engine": {"version": "1.0.0.0", "updated_at": value}})
    position, text = _problem(doc)
    assert position == "$.versions_before.engine.updated_at"
    assert problem in text


@pytest.mark.parametrize(
    ("make", "position"),
    [
        (lambda: ScenarioNotification(1e13, 0x8001), "at"),
        (lambda: ScenarioNotification(math.nan, 0x8001), "at"),
        (lambda: ScenarioNotification(-1.0, 0x8001), "at"),
        (lambda: ScenarioNotification(0.0, -1), "notify"),
        (lambda: ScenarioNotification(0.0, 0x8001, 1 << 32), "hresult"),
        (lambda: ScenarioNotification(0.0, 0x8001, callback_type=1 << 32), "callback_type"),
        (lambda: ScenarioNotification(0.0, 0x8001, data="x"), "data"),  # type: ignore[arg-type]
        (lambda: ScenarioComplete(1e300), "at"),
        (lambda: SigUpdateData(percent=1 << 32), "percent"),
        (lambda: SigUpdateData(path="a\0b"), "path"),
        (lambda: Scenario("x", started_at=datetime(1600, 1, 1, tzinfo=UTC)), "started_at"),
        (lambda: Scenario("x", started_at=datetime(2026, 1, 1)), "started_at"),
        (lambda: Scenario("x", started_at=datetime.max.replace(tzinfo=UTC)), "started_at"),
        (lambda: Scenario("x", abort_latency=math.inf), "abort_latency"),
        (lambda: Scenario(""), "name"),
        (lambda: Scenario("x", messages=((5, "a"), (5, "b"))), "messages[1]"),
        (
            lambda: Scenario(
                "x",
                versions_before=VersionInfo(
                    *(ComponentVersion(0, datetime(1500, 1, 1, tzinfo=UTC)) for _ in range(8))
                ),
            ),
            "versions_before.product.updated_at",
        ),
    ],
)
def test_constructors_check_the_ranges_loading_checks(make: Any, position: str) -> None:
    with pytest.raises(ScenarioError) as info:
        make()
    assert info.value.position == position


def test_constructors_normalize_what_loading_normalizes() -> None:
    scenario = Scenario(
        "x",
        notifications=[ScenarioNotification(1, 0x8002, -2147024891)],  # type: ignore[arg-type]
        complete=ScenarioComplete(2, -1),
        started_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone(-timedelta(hours=5))),
        messages=((0x80072EFD, "b"), (-2147024891, "a")),
        description="\ud83d\ude00 \ud800",  # a pair as two code points, and a lone surrogate
    )
    assert scenario.notifications == (ScenarioNotification(1.0, 0x8002, 0x80070005),)
    assert type(scenario.notifications[0].at) is float
    assert scenario.complete == ScenarioComplete(2.0, 0xFFFFFFFF)
    assert scenario.started_at.tzinfo is UTC and scenario.started_at.hour == 14
    assert scenario.messages == ((0x80070005, "a"), (0x80072EFD, "b"))
    assert scenario.description == "\U0001f600 \ud800"
    assert Scenario.loads(scenario.dumps()) == scenario


def test_deep_nesting_is_a_scenario_error_with_a_position() -> None:
    error = _text_error(_text_with('"description": ' + "[" * 100_000 + "]" * 100_000))
    assert error.problem == "nested more than 64 levels deep"
    assert error.position.startswith("line 1, column ")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    scenario = Scenario.loads(_text_with(json.dumps({"description": "[" * 1000})[1:-1]))
    assert scenario.description == "[" * 1000


@pytest.mark.parametrize(
    ("key_value", "position", "problem"),
    [
        (
            '"abort_latency": ' + "9" * 5000,
            "$.abort_latency",
            "expected a finite number of seconds 0..10000000000 (about 317 years), got a "
            "5000-digit integer",
        ),
        ('"open_hresult": -' + "9" * 5000, "$.open_hresult", "a 5000-digit integer does not fit"),
        ('"version": ' + "1" * 4500, "$.version", "the file has a 4500-digit integer"),
    ],
)
def test_huge_integers_are_reported_at_their_position(
    key_value: str, position: str, problem: str
) -> None:
    text = _text_with(key_value)
    if key_value.startswith('"version"'):
        text = text.replace('"version": 1, ', "")
    error = _text_error(text)
    assert error.position == position
    assert problem in error.problem


def test_huge_integer_given_to_from_dict_is_shown_by_its_size() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(_with("notifications.1.data.percent", 10**5000))
    assert (info.value.position, info.value.problem) == (
        "$.notifications[1].data.percent",
        "expected an integer 0..4294967295, got an integer of about 5001 digits",
    )


@pytest.mark.parametrize(
    ("key_value", "position", "key"),
    [
        ('"complete": {"at": 0.1, "hresult": "E_FAIL"}', "$.complete", "complete"),
        ('"name": "second"', "$.name", "name"),
    ],
)
def test_duplicate_keys_are_rejected_where_they_are(
    key_value: str, position: str, key: str
) -> None:
    error = _text_error(_text_with(key_value))
    assert (error.position, error.problem) == (
        position,
        f"duplicate key {key!r}: each key may appear once in an object",
    )


def test_duplicate_keys_inside_a_notification_are_rejected() -> None:
    text = json.dumps(_doc()).replace('"at": 1.0,', '"at": 1.0, "at": 0.1,')
    error = _text_error(text)
    assert error.position == "$.notifications[1].at"
    assert error.problem.startswith("duplicate key 'at'")


def test_two_message_keys_naming_one_code_are_rejected() -> None:
    doc = _doc(messages={"0x80070005": "a", "E_ACCESSDENIED": "b"})
    assert _problem(doc) == (
        "$.messages.E_ACCESSDENIED",
        "names the same code (0x80070005) as the key '0x80070005': give each code one message",
    )


def test_lone_surrogates_load_dump_and_round_trip(tmp_path: Path) -> None:
    text = json.dumps(_doc(description="x")).replace('"x"', '"\\ud800 \\udc00\\ud800 \\ud83d"')
    scenario = Scenario.loads(text)
    assert scenario.description == "\ud800 \udc00\ud800 \ud83d"
    dumped = scenario.dumps()
    assert "\\ud800 \\udc00\\ud800 \\ud83d" in dumped
    dumped.encode("utf-8")  # valid UTF-8 text: no raw surrogate in it
    assert Scenario.loads(dumped) == scenario
    scenario.dump(tmp_path / "s.json")
    assert Scenario.load(tmp_path / "s.json") == scenario


def test_loads_takes_utf8_bytes_and_reports_a_bad_byte() -> None:
    assert Scenario.loads(json.dumps(_doc()).encode("utf-8")).name == "t"
    with pytest.raises(ScenarioError) as info:
        Scenario.loads(b'{"name": "caf\xe9"}', source="b")
    assert (info.value.position, info.value.problem) == ("byte 13", "the file is not UTF-8")


def test_odd_keys_are_named_as_json_paths() -> None:
    assert _problem(_doc(**{"a b": 1}))[0] == '$["a b"]'
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict({**_doc(), 5: 1})
    assert (info.value.position, info.value.problem) == ("$[5]", "keys must be strings")


def test_long_values_are_cut_in_messages() -> None:
    position, problem = _problem(_doc(format="x" * 10_000))
    assert position == "$.format" and len(problem) < 150


def test_load_of_a_path_with_nul_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario.load("bad\0name.json")
    assert info.value.position == "file"


def test_load_any_names_what_it_accepts() -> None:
    with pytest.raises(TypeError, match=r"scenario must be a Scenario, the name of a built-in"):
        scenarios.load_any(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not int 123"):
        scenarios.get(123)  # type: ignore[arg-type]
