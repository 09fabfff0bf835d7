"""mpupdate.machine: the pure state machine over Events (grammar, outcome, overall progress)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Optional, Union

import pytest

from mpupdate.constants import Notify, SigUpdateType, Source, Stage, UpdateOption
from mpupdate.errors import ProtocolError
from mpupdate.events import Event
from mpupdate.machine import (
    Anomaly,
    Outcome,
    Phase,
    Progress,
    UpdateMachine,
    UpdateResult,
)
from mpupdate.results import outcome_of

N = Notify
T = datetime(2026, 1, 1, tzinfo=timezone.utc)
S_OK, S_FALSE, E_ABORT, E_FAIL = 0, 1, 0x80004004, 0x80004005
E_CANNOT_CONNECT = 0x80072EFD

Data = tuple[int, int, int]  # percent, total_updates, current_index


def ev(
    notify: Union[Notify, int],
    hresult: int = S_OK,
    data: Optional[Data] = None,
    callback_type: int = 6,
) -> Event:
    if data is None:
        return Event(notify, hresult, T, callback_type=callback_type)
    percent, total, index = data
    return Event(
        notify,
        hresult,
        T,
        percent=percent,
        total_updates=total,
        current_index=index,
        update_type=SigUpdateType.HTTP,
        stage=Stage.DOWNLOAD,
        path=None,
        callback_type=callback_type,
    )


def package(index: int, total: int, progress: tuple[int, ...] = (50,)) -> list[Event]:
    """One package: download then install, with the given *_PROGRESS percentages."""
    return [
        ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, total, index)),
        *(ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(p, total, index)) for p in progress),
        ev(N.SIGUPDATE_DOWNLOAD_COMPLETE, data=(100, total, index)),
        ev(N.SIGUPDATE_INSTALL_START, data=(0, total, index)),
        *(ev(N.SIGUPDATE_INSTALL_PROGRESS, data=(p, total, index)) for p in progress),
        ev(N.SIGUPDATE_INSTALL_COMPLETE, data=(100, total, index)),
    ]


HEAD = [
    ev(N.SIGUPDATE_START),
    ev(N.SIGUPDATE_SEARCH_START),
    ev(N.SIGUPDATE_SEARCH_COMPLETE, data=(100, 1, 0)),
]

#: The one-package update of the built-in "updated" scenario.
ONE_PACKAGE = [
    *HEAD,
    ev(N.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE),
    ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 1, 0)),
    *(ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(p, 1, 0)) for p in (25, 50, 75, 100)),
    ev(N.SIGUPDATE_DOWNLOAD_COMPLETE, data=(100, 1, 0)),
    ev(N.SIGUPDATE_INSTALL_START, data=(0, 1, 0)),
    *(ev(N.SIGUPDATE_INSTALL_PROGRESS, data=(p, 1, 0)) for p in (50, 100)),
    ev(N.SIGUPDATE_INSTALL_COMPLETE, data=(100, 1, 0)),
    ev(N.SIGUPDATE_COMPLETE, S_OK),
]
# 10 + 85 * (index + fraction) / total, fraction = 0.5 * p for download, 0.5 + 0.5 * p for install.
ONE_PACKAGE_PERCENTS = [0, 2, 10, 10, 10, 20, 31, 41, 52, 52, 52, 73, 95, 95, 100]
ONE_PACKAGE_PHASES = [
    Phase.STARTED,
    Phase.SEARCHING,
    Phase.SEARCHING,
    Phase.SEARCHING,
    *[Phase.DOWNLOADING] * 6,
    *[Phase.INSTALLING] * 4,
    Phase.DONE,
]

THREE_PACKAGES = [
    ev(N.SIGUPDATE_START),
    ev(N.SIGUPDATE_SEARCH_START),
    ev(N.SIGUPDATE_SEARCH_COMPLETE, data=(100, 3, 0)),
    *package(0, 3),
    *package(1, 3),
    *package(2, 3),
    ev(N.SIGUPDATE_REBOOT_REQUIRED, S_OK),
    ev(N.SIGUPDATE_REQUEST_PROCESSED, S_OK),
    ev(N.SIGUPDATE_COMPLETE, S_OK),
]
# Per package (DS, DP 50 %, DC, IS, IP 50 %, IC) with 10 + 85 * (i + f) / 3:
#   i=0: 10, 17.08, 24.17, 24.17, 31.25, 38.33
#   i=1: 38.33, 45.42, 52.5, 52.5, 59.58, 66.67
#   i=2: 66.67, 73.75, 80.83, 80.83, 87.92, 95
THREE_PACKAGES_PERCENTS = [
    0,
    2,
    10,
    *[10, 17, 24, 24, 31, 38],
    *[38, 45, 52, 52, 59, 66],
    *[66, 73, 80, 80, 87, 95],
    95,
    95,
    100,
]


def feed_all(machine: UpdateMachine, events: list[Event]) -> list[Progress]:
    return [machine.feed(event) for event in events]


def anomaly(position: Optional[int], message: str, expected: str) -> Anomaly:
    return Anomaly(position, f"{message} (expected {expected})")


# -- outcome_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hresult", "outcome"),
    [
        (S_OK, Outcome.UPDATED),
        (S_FALSE, Outcome.ALREADY_CURRENT),
        (E_ABORT, Outcome.CANCELLED),
        (E_FAIL, Outcome.FAILED),
        (0x80070005, Outcome.FAILED),
        (0x80000000, Outcome.FAILED),
        (0xFFFFFFFF, Outcome.FAILED),
        (2, Outcome.UPDATED),
        (0x7FFFFFFF, Outcome.UPDATED),
        (0x00040000, Outcome.UPDATED),
    ],
)
def test_outcome_of_complete_hresult(hresult: int, outcome: Outcome) -> None:
    assert outcome_of(hresult) is outcome


# -- grammatical sequences ---------------------------------------------------------------------


def test_one_package_update_is_accepted_in_strict_mode_with_exact_progress() -> None:
    machine = UpdateMachine(strict=True)
    progress = feed_all(machine, ONE_PACKAGE)
    assert [p.percent for p in progress] == ONE_PACKAGE_PERCENTS
    assert [p.phase for p in progress] == ONE_PACKAGE_PHASES
    assert [p.event for p in progress] == ONE_PACKAGE
    assert machine.anomalies == []
    assert machine.done is True
    assert machine.outcome is Outcome.UPDATED
    assert machine.complete is ONE_PACKAGE[-1]
    assert machine.percent == 100
    assert machine.phase is Phase.DONE
    assert machine.reboot_required is False
    assert machine.count == len(ONE_PACKAGE) == 15


def test_one_package_package_numbers_are_one_based() -> None:
    progress = feed_all(UpdateMachine(strict=True), ONE_PACKAGE)
    assert [(p.package, p.packages) for p in progress] == [
        *[(None, None)] * 4,
        *[(1, 1)] * 11,
    ]


def test_three_package_update_is_accepted_in_strict_mode_with_exact_progress() -> None:
    machine = UpdateMachine(strict=True)
    progress = feed_all(machine, THREE_PACKAGES)
    assert [p.percent for p in progress] == THREE_PACKAGES_PERCENTS
    assert machine.anomalies == []
    assert machine.outcome is Outcome.UPDATED
    assert machine.reboot_required is True
    assert [p.phase for p in progress[-3:]] == [Phase.FINISHING, Phase.FINISHING, Phase.DONE]


def test_three_package_progress_reports_package_and_packages() -> None:
    progress = feed_all(UpdateMachine(strict=True), THREE_PACKAGES)
    assert [(p.package, p.packages) for p in progress] == [
        *[(None, None)] * 3,
        *[(1, 3)] * 6,
        *[(2, 3)] * 6,
        *[(3, 3)] * 6,
        *[(3, 3)] * 3,
    ]


@pytest.mark.parametrize("events", [ONE_PACKAGE, THREE_PACKAGES], ids=["one", "three"])
def test_percent_never_decreases_and_stays_below_100_before_complete(events: list[Event]) -> None:
    percents = [p.percent for p in feed_all(UpdateMachine(strict=True), events)]
    assert percents == sorted(percents)
    assert max(percents[:-1]) == 95
    assert percents[-1] == 100


def test_already_current_update_is_grammatical_and_reaches_100() -> None:
    machine = UpdateMachine(strict=True)
    events = [
        *HEAD[:2],
        ev(N.SIGUPDATE_SEARCH_COMPLETE, data=(100, 0, 0)),
        ev(N.SIGUPDATE_COMPLETE, S_FALSE),
    ]
    progress = feed_all(machine, events)
    assert [p.percent for p in progress] == [0, 2, 10, 100]
    assert machine.outcome is Outcome.ALREADY_CURRENT
    assert machine.anomalies == []


def test_minimal_update_of_start_search_and_complete() -> None:
    machine = UpdateMachine(strict=True)
    events = [
        ev(N.SIGUPDATE_START),
        ev(N.SIGUPDATE_SEARCH_START),
        ev(N.SIGUPDATE_SEARCH_COMPLETE),
        ev(N.SIGUPDATE_REQUEST_PROCESSED),
        ev(N.SIGUPDATE_COMPLETE, S_OK),
    ]
    assert [p.percent for p in feed_all(machine, events)] == [0, 2, 10, 95, 100]
    assert machine.outcome is Outcome.UPDATED


def test_failing_complete_may_end_the_update_anywhere_after_start() -> None:
    machine = UpdateMachine(strict=True)
    events = [*HEAD[:2], ev(N.SIGUPDATE_COMPLETE, E_CANNOT_CONNECT)]
    progress = feed_all(machine, events)
    assert [p.percent for p in progress] == [0, 2, 2]
    assert machine.outcome is Outcome.FAILED
    assert machine.complete is not None
    assert machine.complete.hresult == E_CANNOT_CONNECT
    assert machine.phase is Phase.DONE
    assert machine.anomalies == []


def test_abort_during_download_is_cancelled_and_keeps_the_percent() -> None:
    machine = UpdateMachine(strict=True)
    events = [
        *HEAD,
        ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 1, 0)),
        ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(50, 1, 0)),
        ev(N.SIGUPDATE_COMPLETE, E_ABORT),
    ]
    progress = feed_all(machine, events)
    assert [p.percent for p in progress] == [0, 2, 10, 10, 31, 31]
    assert machine.outcome is Outcome.CANCELLED
    assert machine.anomalies == []


def test_internal_failure_then_failing_complete_is_grammatical() -> None:
    machine = UpdateMachine(strict=True)
    events = [*HEAD[:2], ev(N.INTERNAL_FAILURE, E_FAIL), ev(N.SIGUPDATE_COMPLETE, E_FAIL)]
    progress = feed_all(machine, events)
    assert [p.percent for p in progress] == [0, 2, 2, 2]
    assert [p.phase for p in progress] == [
        Phase.STARTED,
        Phase.SEARCHING,
        Phase.SEARCHING,
        Phase.DONE,
    ]
    assert machine.outcome is Outcome.FAILED


def test_no_progress_notifications_are_fine_without_the_progress_option() -> None:
    machine = UpdateMachine(strict=True, options=int(UpdateOption.ASYNC))
    events = [*HEAD, *package(0, 1, progress=()), ev(N.SIGUPDATE_COMPLETE, S_OK)]
    assert [p.percent for p in feed_all(machine, events)] == [0, 2, 10, 10, 52, 52, 95, 100]
    assert machine.anomalies == []


def test_download_start_with_zero_total_counts_as_one_package() -> None:
    machine = UpdateMachine(strict=True)
    feed_all(machine, HEAD)
    progress = machine.feed(ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 0, 0)))
    assert (progress.package, progress.packages) == (1, 1)
    progress = machine.feed(ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(100, 0, 0)))
    assert progress.percent == 52


def test_machine_before_any_event() -> None:
    machine = UpdateMachine()
    assert machine.strict is False
    assert machine.options == int(UpdateOption.PROGRESS) == 2
    assert machine.phase is Phase.NOT_STARTED
    assert (machine.percent, machine.package, machine.packages) == (0, None, None)
    assert machine.done is False
    assert machine.outcome is None
    assert machine.complete is None
    assert machine.count == 0


# -- strict violations -------------------------------------------------------------------------

DS1 = ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 1, 0))
AFTER_SEARCH = (
    "SIGUPDATE_COMPLETE or SIGUPDATE_DOWNLOAD_START or SIGUPDATE_REBOOT_REQUIRED"
    " or SIGUPDATE_REQUEST_PROCESSED or SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE"
)

# id, options, events (the last one breaks the grammar), expected, message
VIOLATIONS = [
    (
        "missing_start",
        2,
        [ev(N.SIGUPDATE_SEARCH_START)],
        "SIGUPDATE_START",
        "SIGUPDATE_SEARCH_START after the start of the update",
    ),
    (
        "duplicate_start",
        2,
        [ev(N.SIGUPDATE_START), ev(N.SIGUPDATE_START)],
        "SIGUPDATE_SEARCH_START",
        "SIGUPDATE_START after SIGUPDATE_START",
    ),
    (
        "event_after_complete",
        2,
        [*HEAD, ev(N.SIGUPDATE_COMPLETE, S_FALSE), ev(N.SIGUPDATE_REBOOT_REQUIRED)],
        "nothing",
        "SIGUPDATE_REBOOT_REQUIRED after SIGUPDATE_COMPLETE",
    ),
    (
        "install_before_download",
        2,
        [*HEAD, ev(N.SIGUPDATE_INSTALL_START, data=(0, 1, 0))],
        AFTER_SEARCH,
        "SIGUPDATE_INSTALL_START after SIGUPDATE_SEARCH_COMPLETE",
    ),
    (
        "download_progress_without_data",
        2,
        [*HEAD, DS1, ev(N.SIGUPDATE_DOWNLOAD_PROGRESS)],
        "MPSIGUPDATE_DATA",
        "SIGUPDATE_DOWNLOAD_PROGRESS without data",
    ),
    (
        "percent_over_100",
        2,
        [*HEAD, DS1, ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(101, 1, 0))],
        "at most 100 %",
        "101 % in SIGUPDATE_DOWNLOAD_PROGRESS",
    ),
    (
        "index_not_below_total",
        2,
        [*HEAD, ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 1, 1))],
        "an index below 1",
        "package index 1 of 1",
    ),
    (
        "package_index_goes_back",
        2,
        [
            *HEAD,
            *package(0, 2, progress=()),
            ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 2, 1)),
            ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(50, 2, 0)),
        ],
        "package index 1 or later",
        "package index went back to 0",
    ),
    (
        "unknown_notification",
        2,
        [ev(N.SIGUPDATE_START), ev(0x800E)],
        "a known notification",
        "unknown notification UNKNOWN_0x800E",
    ),
    (
        "callback_type_not_sigupdate",
        2,
        [ev(N.SIGUPDATE_START), ev(N.SIGUPDATE_SEARCH_START, callback_type=3)],
        "MPCALLBACK_TYPE SIGUPDATE (6)",
        "SIGUPDATE_SEARCH_START has callback type 3; its data was not read",
    ),
    (
        "download_progress_without_progress_option",
        int(UpdateOption.ASYNC),
        [*HEAD, DS1, ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(50, 1, 0))],
        "no progress",
        "SIGUPDATE_DOWNLOAD_PROGRESS without the PROGRESS option",
    ),
    (
        "install_progress_without_progress_option",
        0,
        [
            *HEAD,
            DS1,
            ev(N.SIGUPDATE_DOWNLOAD_COMPLETE, data=(100, 1, 0)),
            ev(N.SIGUPDATE_INSTALL_START, data=(0, 1, 0)),
            ev(N.SIGUPDATE_INSTALL_PROGRESS, data=(50, 1, 0)),
        ],
        "no progress",
        "SIGUPDATE_INSTALL_PROGRESS without the PROGRESS option",
    ),
    (
        "successful_complete_after_internal_failure",
        2,
        [*HEAD[:2], ev(N.INTERNAL_FAILURE, E_FAIL), ev(N.SIGUPDATE_COMPLETE, S_OK)],
        "a failing COMPLETE",
        "COMPLETE reports 0x00000000 S_OK after INTERNAL_FAILURE 0x80004005 E_FAIL",
    ),
    (
        "notification_after_internal_failure",
        2,
        [*HEAD[:2], ev(N.INTERNAL_FAILURE, E_FAIL), ev(N.SIGUPDATE_SEARCH_COMPLETE)],
        "SIGUPDATE_COMPLETE",
        "SIGUPDATE_SEARCH_COMPLETE after INTERNAL_FAILURE",
    ),
    (
        "internal_failure_before_start",
        2,
        [ev(N.INTERNAL_FAILURE, E_FAIL)],
        "SIGUPDATE_START",
        "INTERNAL_FAILURE before START",
    ),
    (
        "call_complete",
        2,
        [ev(N.SIGUPDATE_START), ev(N.CALL_COMPLETE)],
        "an update notification",
        "CALL_COMPLETE",
    ),
    (
        "call_complete_before_start",
        2,
        [ev(N.CALL_COMPLETE)],
        "SIGUPDATE_START",
        "CALL_COMPLETE before START",
    ),
    (
        "successful_complete_in_the_middle_of_a_download",
        2,
        [*HEAD, DS1, ev(N.SIGUPDATE_COMPLETE, S_OK)],
        "SIGUPDATE_DOWNLOAD_COMPLETE or SIGUPDATE_DOWNLOAD_PROGRESS",
        "SIGUPDATE_COMPLETE after SIGUPDATE_DOWNLOAD_START",
    ),
    (
        "failing_complete_before_start",
        2,
        [ev(N.SIGUPDATE_COMPLETE, E_FAIL)],
        "SIGUPDATE_START",
        "SIGUPDATE_COMPLETE after the start of the update",
    ),
    (
        "complete_with_odd_success_code",
        2,
        [*HEAD, ev(N.SIGUPDATE_COMPLETE, 2)],
        "S_OK, S_FALSE or a failure",
        "COMPLETE with unusual success code 0x00000002",
    ),
]


@pytest.mark.parametrize(
    ("options", "events", "expected", "message"),
    [case[1:] for case in VIOLATIONS],
    ids=[case[0] for case in VIOLATIONS],
)
def test_strict_mode_raises_protocol_error_at_the_violation(
    options: int, events: list[Event], expected: str, message: str
) -> None:
    machine = UpdateMachine(strict=True, options=options)
    feed_all(machine, events[:-1])
    position = len(events) - 1
    with pytest.raises(ProtocolError) as info:
        machine.feed(events[-1])
    error = info.value
    assert error.position == position
    assert error.expected == expected
    assert error.event is events[-1]
    assert str(error) == f"event {position}: {message} (expected {expected})"
    assert machine.anomalies == []


# id, options, events, anomalies (position, message, expected), outcome, final percent
LENIENT = [
    (
        "missing_start",
        2,
        [ev(N.SIGUPDATE_SEARCH_START), ev(N.SIGUPDATE_SEARCH_COMPLETE), ev(N.SIGUPDATE_COMPLETE)],
        [(0, "SIGUPDATE_SEARCH_START after the start of the update", "SIGUPDATE_START")],
        Outcome.UPDATED,
        100,
    ),
    (
        "event_after_complete",
        2,
        [*HEAD, ev(N.SIGUPDATE_COMPLETE, S_FALSE), ev(N.SIGUPDATE_REBOOT_REQUIRED)],
        [(4, "SIGUPDATE_REBOOT_REQUIRED after SIGUPDATE_COMPLETE", "nothing")],
        Outcome.ALREADY_CURRENT,
        100,
    ),
    (
        "install_before_download",
        2,
        [
            *HEAD,
            ev(N.SIGUPDATE_INSTALL_START, data=(0, 1, 0)),
            ev(N.SIGUPDATE_INSTALL_COMPLETE, data=(100, 1, 0)),
            ev(N.SIGUPDATE_COMPLETE),
        ],
        [(3, "SIGUPDATE_INSTALL_START after SIGUPDATE_SEARCH_COMPLETE", AFTER_SEARCH)],
        Outcome.UPDATED,
        100,
    ),
    (
        "download_progress_without_data",
        2,
        [*HEAD, DS1, ev(N.SIGUPDATE_DOWNLOAD_PROGRESS), ev(N.SIGUPDATE_COMPLETE, E_FAIL)],
        [(4, "SIGUPDATE_DOWNLOAD_PROGRESS without data", "MPSIGUPDATE_DATA")],
        Outcome.FAILED,
        10,
    ),
    (
        "percent_over_100_counts_as_100",
        2,
        [
            *HEAD,
            DS1,
            ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(250, 1, 0)),
            ev(N.SIGUPDATE_COMPLETE, E_ABORT),
        ],
        [(4, "250 % in SIGUPDATE_DOWNLOAD_PROGRESS", "at most 100 %")],
        Outcome.CANCELLED,
        52,
    ),
    (
        "index_not_below_total",
        2,
        [
            *HEAD,
            ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 1, 1)),
            ev(N.SIGUPDATE_COMPLETE, E_CANNOT_CONNECT),
        ],
        [(3, "package index 1 of 1", "an index below 1")],
        Outcome.FAILED,
        10,
    ),
    (
        "package_index_goes_back",
        2,
        [
            *HEAD,
            *package(0, 2, progress=()),
            ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 2, 1)),
            ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(50, 2, 0)),
            ev(N.SIGUPDATE_COMPLETE, E_FAIL),
        ],
        [(8, "package index went back to 0", "package index 1 or later")],
        Outcome.FAILED,
        52,
    ),
    (
        "unknown_notification",
        2,
        [ev(N.SIGUPDATE_START), ev(0x800E), *HEAD[1:], ev(N.SIGUPDATE_COMPLETE, S_FALSE)],
        [(1, "unknown notification UNKNOWN_0x800E", "a known notification")],
        Outcome.ALREADY_CURRENT,
        100,
    ),
    (
        "callback_type_not_sigupdate",
        2,
        [
            ev(N.SIGUPDATE_START),
            ev(N.SIGUPDATE_SEARCH_START, callback_type=3),
            ev(N.SIGUPDATE_SEARCH_COMPLETE),
            ev(N.SIGUPDATE_COMPLETE),
        ],
        [
            (
                1,
                "SIGUPDATE_SEARCH_START has callback type 3; its data was not read",
                "MPCALLBACK_TYPE SIGUPDATE (6)",
            )
        ],
        Outcome.UPDATED,
        100,
    ),
    (
        "progress_without_progress_option",
        0,
        [
            *HEAD,
            DS1,
            ev(N.SIGUPDATE_DOWNLOAD_PROGRESS, data=(50, 1, 0)),
            ev(N.SIGUPDATE_COMPLETE, E_ABORT),
        ],
        [(4, "SIGUPDATE_DOWNLOAD_PROGRESS without the PROGRESS option", "no progress")],
        Outcome.CANCELLED,
        31,
    ),
    (
        # COMPLETE's hResult is the outcome (MPCLIENT.md section 1), even after INTERNAL_FAILURE.
        "successful_complete_after_internal_failure",
        2,
        [*HEAD[:2], ev(N.INTERNAL_FAILURE, E_FAIL), ev(N.SIGUPDATE_COMPLETE, S_OK)],
        [
            (
                3,
                "COMPLETE reports 0x00000000 S_OK after INTERNAL_FAILURE 0x80004005 E_FAIL",
                "a failing COMPLETE",
            )
        ],
        Outcome.UPDATED,
        100,
    ),
    (
        "call_complete",
        2,
        [ev(N.SIGUPDATE_START), ev(N.CALL_COMPLETE), *HEAD[1:], ev(N.SIGUPDATE_COMPLETE)],
        [(1, "CALL_COMPLETE", "an update notification")],
        Outcome.UPDATED,
        100,
    ),
    (
        "call_complete_before_start_is_two_anomalies",
        2,
        [ev(N.CALL_COMPLETE), *HEAD, ev(N.SIGUPDATE_COMPLETE)],
        [
            (0, "CALL_COMPLETE before START", "SIGUPDATE_START"),
            (0, "CALL_COMPLETE", "an update notification"),
        ],
        Outcome.UPDATED,
        100,
    ),
    (
        "internal_failure_before_start",
        2,
        [ev(N.INTERNAL_FAILURE, E_FAIL), ev(N.SIGUPDATE_START), ev(N.SIGUPDATE_COMPLETE, E_FAIL)],
        [
            (0, "INTERNAL_FAILURE before START", "SIGUPDATE_START"),
            (1, "SIGUPDATE_START after INTERNAL_FAILURE", "SIGUPDATE_COMPLETE"),
        ],
        Outcome.FAILED,
        0,
    ),
    (
        "successful_complete_in_the_middle_of_a_download",
        2,
        [*HEAD, DS1, ev(N.SIGUPDATE_COMPLETE, S_OK)],
        [
            (
                4,
                "SIGUPDATE_COMPLETE after SIGUPDATE_DOWNLOAD_START",
                "SIGUPDATE_DOWNLOAD_COMPLETE or SIGUPDATE_DOWNLOAD_PROGRESS",
            )
        ],
        Outcome.UPDATED,
        100,
    ),
    (
        "complete_with_odd_success_code",
        2,
        [*HEAD, ev(N.SIGUPDATE_COMPLETE, 2)],
        [(3, "COMPLETE with unusual success code 0x00000002", "S_OK, S_FALSE or a failure")],
        Outcome.UPDATED,
        100,
    ),
    (
        "failing_complete_before_start",
        2,
        [ev(N.SIGUPDATE_COMPLETE, E_FAIL)],
        [(0, "SIGUPDATE_COMPLETE after the start of the update", "SIGUPDATE_START")],
        Outcome.FAILED,
        0,
    ),
]


@pytest.mark.parametrize(
    ("options", "events", "anomalies", "outcome", "percent"),
    [case[1:] for case in LENIENT],
    ids=[case[0] for case in LENIENT],
)
def test_lenient_mode_records_anomalies_and_reaches_the_outcome(
    options: int,
    events: list[Event],
    anomalies: list[tuple[Optional[int], str, str]],
    outcome: Outcome,
    percent: int,
) -> None:
    machine = UpdateMachine(options=options)
    progress = feed_all(machine, events)
    assert machine.anomalies == [anomaly(*a) for a in anomalies]
    assert machine.done is True
    assert machine.outcome is outcome
    assert machine.percent == percent
    percents = [p.percent for p in progress]
    assert percents == sorted(percents)


def test_lenient_anomalies_are_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    machine = UpdateMachine()
    with caplog.at_level(logging.WARNING, logger="mpupdate"):
        machine.feed(ev(N.SIGUPDATE_SEARCH_START))
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "mpupdate",
            logging.WARNING,
            "mpupdate: event 0: SIGUPDATE_SEARCH_START after the start of the update "
            "(expected SIGUPDATE_START)",
        )
    ]


def test_note_records_an_anomaly_in_strict_mode_too() -> None:
    machine = UpdateMachine(strict=True)
    machine.note("the DLL returned S_OK but sent nothing")
    machine.note("late notification", 7)
    assert machine.anomalies == [
        Anomaly(None, "the DLL returned S_OK but sent nothing"),
        Anomaly(7, "late notification"),
    ]


def test_anomaly_str_names_the_event_when_it_has_one() -> None:
    assert str(Anomaly(3, "odd")) == "event 3: odd"
    assert str(Anomaly(None, "odd")) == "odd"
    assert str(Anomaly(0, "odd")) == "event 0: odd"


def test_strict_mode_stops_at_the_first_violation_of_several() -> None:
    # CALL_COMPLETE before START breaks two rules; strict raises for the first.
    with pytest.raises(ProtocolError) as info:
        UpdateMachine(strict=True).feed(ev(N.CALL_COMPLETE))
    assert info.value.expected == "SIGUPDATE_START"


# -- terminal COMPLETE, reboot, progress -------------------------------------------------------


def test_first_complete_is_terminal() -> None:
    machine = UpdateMachine()
    first = ev(N.SIGUPDATE_COMPLETE, E_FAIL)
    events = [*HEAD[:2], first, ev(N.SIGUPDATE_COMPLETE, S_OK), ev(N.SIGUPDATE_SEARCH_COMPLETE)]
    progress = feed_all(machine, events)
    assert machine.complete is first
    assert machine.outcome is Outcome.FAILED
    assert [p.percent for p in progress] == [0, 2, 2, 2, 2]
    assert [p.phase for p in progress[2:]] == [Phase.DONE] * 3
    assert machine.anomalies == [
        anomaly(3, "SIGUPDATE_COMPLETE after SIGUPDATE_COMPLETE", "nothing"),
        anomaly(4, "SIGUPDATE_SEARCH_COMPLETE after SIGUPDATE_COMPLETE", "nothing"),
    ]
    assert machine.count == 5


def test_events_after_complete_do_not_change_packages_or_reboot() -> None:
    machine = UpdateMachine()
    feed_all(machine, [*HEAD, ev(N.SIGUPDATE_COMPLETE, S_FALSE)])
    progress = machine.feed(ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 3, 2)))
    assert (progress.package, progress.packages, progress.percent) == (None, None, 100)
    machine.feed(ev(N.SIGUPDATE_REBOOT_REQUIRED, S_OK))
    assert machine.reboot_required is False


def test_reboot_required_is_set_by_a_successful_reboot_notification() -> None:
    machine = UpdateMachine(strict=True)
    feed_all(machine, HEAD)
    machine.feed(ev(N.SIGUPDATE_REBOOT_REQUIRED, S_OK))
    assert machine.reboot_required is True


def test_reboot_required_ignores_a_failing_reboot_notification() -> None:
    machine = UpdateMachine(strict=True)
    feed_all(machine, HEAD)
    machine.feed(ev(N.SIGUPDATE_REBOOT_REQUIRED, 0x80070005))
    machine.feed(ev(N.SIGUPDATE_COMPLETE, S_OK))
    assert machine.reboot_required is False
    assert machine.anomalies == []


def test_failed_complete_keeps_the_percent_reached() -> None:
    machine = UpdateMachine(strict=True)
    feed_all(machine, [*HEAD, *package(0, 3), ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 3, 1))])
    assert machine.percent == 38
    progress = machine.feed(ev(N.SIGUPDATE_COMPLETE, 0x80070643))
    assert progress.percent == 38
    assert progress.phase is Phase.DONE
    assert machine.outcome is Outcome.FAILED


def test_percent_does_not_go_back_when_an_earlier_stage_is_reported_again() -> None:
    machine = UpdateMachine()
    feed_all(machine, [*HEAD, *package(0, 1)])
    assert machine.percent == 95
    progress = machine.feed(ev(N.SIGUPDATE_SEARCH_START))
    assert progress.percent == 95
    assert progress.phase is Phase.SEARCHING


def test_percent_does_not_go_back_when_the_package_index_does() -> None:
    machine = UpdateMachine()
    feed_all(machine, [*HEAD, ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 3, 2))])
    assert machine.percent == 66
    progress = machine.feed(ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 3, 0)))
    assert (progress.percent, progress.package, progress.packages) == (66, 1, 3)


def test_progress_without_data_uses_the_known_package() -> None:
    machine = UpdateMachine()
    feed_all(machine, [*HEAD, ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 2, 1))])
    progress = machine.feed(ev(N.SIGUPDATE_DOWNLOAD_COMPLETE))
    # 10 + 85 * (1 + 0.5) / 2 = 73.75
    assert (progress.percent, progress.package, progress.packages) == (73, 2, 2)


def test_index_past_total_is_clamped_to_the_last_package() -> None:
    machine = UpdateMachine()
    feed_all(machine, HEAD)
    progress = machine.feed(ev(N.SIGUPDATE_DOWNLOAD_START, data=(0, 2, 7)))
    # package 2 of 2: 10 + 85 * 1 / 2 = 52.5
    assert (progress.percent, progress.package, progress.packages) == (52, 2, 2)


def test_unknown_notification_changes_nothing_but_the_count() -> None:
    machine = UpdateMachine()
    feed_all(machine, [*HEAD, DS1])
    before = (machine.phase, machine.percent, machine.package, machine.packages)
    progress = machine.feed(ev(0x800E, data=(100, 9, 8)))
    assert (progress.phase, progress.percent, progress.package, progress.packages) == before
    assert machine.count == 5


def test_progress_carries_the_fed_event() -> None:
    machine = UpdateMachine()
    event = ev(N.SIGUPDATE_START)
    progress = machine.feed(event)
    assert progress == Progress(0, Phase.STARTED, event, None, None)


# -- UpdateResult ------------------------------------------------------------------------------


def _result(outcome: Outcome, hresult: int, reboot: bool = False) -> UpdateResult:
    return UpdateResult(
        outcome=outcome,
        hresult=hresult,
        message="The operation completed successfully.",
        reboot_required=reboot,
        events=(),
        anomalies=(),
        source=Source.MMPC,
        options=0xB,
        started_at=T,
        finished_at=T + timedelta(seconds=12, microseconds=500_000),
    )


@pytest.mark.parametrize(
    ("outcome", "ok"),
    [
        (Outcome.UPDATED, True),
        (Outcome.ALREADY_CURRENT, True),
        (Outcome.FAILED, False),
        (Outcome.CANCELLED, False),
        (Outcome.TIMED_OUT, False),
    ],
)
def test_update_result_ok_only_for_updated_and_already_current(outcome: Outcome, ok: bool) -> None:
    assert _result(outcome, 0).ok is ok


def test_update_result_duration_is_finished_minus_started() -> None:
    assert _result(Outcome.UPDATED, 0).duration == timedelta(seconds=12.5)


def test_update_result_str() -> None:
    assert str(_result(Outcome.UPDATED, 0)) == (
        "UPDATED 0x00000000 S_OK: The operation completed successfully."
    )
    assert str(_result(Outcome.UPDATED, 0, reboot=True)) == (
        "UPDATED 0x00000000 S_OK: The operation completed successfully. (reboot required)"
    )
    assert str(_result(Outcome.FAILED, 0x80501234)) == (
        "FAILED 0x80501234: The operation completed successfully."
    )


def test_update_result_defaults() -> None:
    result = _result(Outcome.UPDATED, 0)
    assert (result.versions_before, result.versions_after, result.hint) == (None, None, None)


def test_strict_mode_applies_the_event_before_raising() -> None:
    machine = UpdateMachine(strict=True)
    machine.feed(Event(Notify.SIGUPDATE_START, 0, T))
    with pytest.raises(ProtocolError):
        machine.feed(Event(Notify.SIGUPDATE_COMPLETE, 0, T))
    assert machine.done
    assert machine.outcome is Outcome.UPDATED
    assert machine.percent == 100
