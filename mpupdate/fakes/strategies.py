"""Hypothesis strategies for update notification sequences and scenarios.

``grammatical_scenarios()`` draws scenarios whose notifications follow the grammar of MPCLIENT.md
section 4 (what strict mode accepts), optionally with a given outcome or reboot:
``successful_updates()``, ``failing_updates()``, ``cancelled_updates()`` and ``reboot_updates()``
are the usual choices for testing code that updates Defender. ``any_scenarios()`` draws hostile
sequences: any order, unknown numbers and missing data (what lenient mode must survive).
``scenario_documents()`` draws scenario *files* (as ``json.loads`` gives them) fuzzed in every
field, for what the loader must accept or reject with a ScenarioError. Requires ``hypothesis``
(the ``test`` extra).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from hypothesis import strategies as st

from mpupdate.constants import E_ABORT, S_FALSE, S_OK, Notify, SigUpdateType, Stage
from mpupdate.filetime import moment_text
from mpupdate.results import Outcome
from mpupdate.versions import COMPONENTS

from .scenario import (
    MAX_SECONDS,
    Scenario,
    ScenarioComplete,
    ScenarioNotification,
    SigUpdateData,
)

__all__ = [
    "any_scenarios",
    "cancelled_updates",
    "failing_updates",
    "failure_hresults",
    "grammatical_scenarios",
    "json_values",
    "moment_texts",
    "reboot_updates",
    "scenario_documents",
    "seconds_values",
    "sigupdate_data",
    "successful_updates",
]

N = Notify

#: Failure HRESULTs a COMPLETE may carry.
failure_hresults = st.sampled_from(
    [0x80070005, 0x800106BA, 0x80072EFD, 0x80070643, 0x8050A001, 0x80240022, E_ABORT]
)


def sigupdate_data(total: int, index: int, stage: Stage) -> st.SearchStrategy[SigUpdateData]:
    return st.builds(
        SigUpdateData,
        percent=st.integers(0, 100),
        total_updates=st.just(total),
        current_index=st.just(index),
        update_type=st.sampled_from([int(t) for t in SigUpdateType]),
        stage=st.just(int(stage)),
        path=st.one_of(st.none(), st.text(max_size=40).filter(lambda s: "\0" not in s)),
    )


#: What ``grammatical_scenarios(outcome=...)`` can promise, by the outcome's value.
_ENDINGS = {
    "updated": ["success"],
    "already current": ["success"],
    "failed": ["failure", "internal-failure"],
    "cancelled": ["failure"],
}


@st.composite
def grammatical_scenarios(
    draw: st.DrawFn, outcome: Optional[Outcome] = None, reboot: Optional[bool] = None
) -> Scenario:
    """A scenario the strict grammar accepts, ending in success, S_FALSE or a failure.

    ``outcome`` (UPDATED, ALREADY_CURRENT, FAILED or CANCELLED) draws only scenarios an update
    ends with that outcome; ``reboot=True`` only scenarios that report REBOOT_REQUIRED (with
    UPDATED), ``reboot=False`` none that do.
    """
    if outcome is not None and outcome.value not in _ENDINGS:
        raise ValueError(f"outcome must be one of {sorted(_ENDINGS)}, not {outcome.value!r}")
    if reboot and outcome not in (None, Outcome.UPDATED):
        raise ValueError("reboot=True draws updates that succeed: outcome must be UPDATED")
    if reboot:
        outcome = Outcome.UPDATED
    kinds: list[tuple[Notify, Stage, int, int]] = []
    # ALREADY_CURRENT is S_FALSE: nothing was needed, so no packages.
    packages = 0 if outcome is Outcome.ALREADY_CURRENT else draw(st.integers(1 if reboot else 0, 3))
    kinds.append((N.SIGUPDATE_SEARCH_START, Stage.SEARCH, packages, 0))
    kinds.append((N.SIGUPDATE_SEARCH_COMPLETE, Stage.SEARCH, packages, 0))
    if packages and draw(st.booleans()):
        kinds.append((N.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE, Stage.SEARCH, packages, 0))
    for index in range(packages):
        kinds.append((N.SIGUPDATE_DOWNLOAD_START, Stage.DOWNLOAD, packages, index))
        kinds += [(N.SIGUPDATE_DOWNLOAD_PROGRESS, Stage.DOWNLOAD, packages, index)] * draw(
            st.integers(0, 4)
        )
        kinds.append((N.SIGUPDATE_DOWNLOAD_COMPLETE, Stage.DOWNLOAD, packages, index))
        kinds.append((N.SIGUPDATE_INSTALL_START, Stage.INSTALL, packages, index))
        kinds += [(N.SIGUPDATE_INSTALL_PROGRESS, Stage.INSTALL, packages, index)] * draw(
            st.integers(0, 3)
        )
        kinds.append((N.SIGUPDATE_INSTALL_COMPLETE, Stage.INSTALL, packages, index))
    if packages and (draw(st.booleans()) if reboot is None else reboot):
        kinds.append((N.SIGUPDATE_REBOOT_REQUIRED, Stage.INSTALL, packages, 0))
    if draw(st.booleans()):
        kinds.append((N.SIGUPDATE_REQUEST_PROCESSED, Stage.INSTALL, packages, 0))
    endings = ["success", "failure", "internal-failure"]
    ending = draw(st.sampled_from(endings if outcome is None else _ENDINGS[outcome.value]))
    if ending != "success":
        kinds = kinds[: draw(st.integers(0, len(kinds)))]
    notifications = []
    at = 0.0
    percents: dict[tuple[Notify, int], int] = {}
    for notify, stage, total, index in kinds:
        at += draw(st.sampled_from([0.0, 0.1, 0.5, 2.0]))
        data = None
        if notify != N.SIGUPDATE_SEARCH_START and (
            notify in (N.SIGUPDATE_DOWNLOAD_PROGRESS, N.SIGUPDATE_INSTALL_PROGRESS)
            or draw(st.booleans())
        ):
            data = draw(sigupdate_data(total, index, stage))
            if notify in (N.SIGUPDATE_DOWNLOAD_PROGRESS, N.SIGUPDATE_INSTALL_PROGRESS):
                low = percents.get((notify, index), 0)
                percent = draw(st.integers(low, 100))
                percents[(notify, index)] = percent
                data = SigUpdateData(
                    percent,
                    data.total_updates,
                    data.current_index,
                    data.update_type,
                    data.stage,
                    data.path,
                )
        hresult = 0
        notifications.append(ScenarioNotification(round(at, 3), int(notify), hresult, data))
    if ending == "success":
        if outcome is Outcome.ALREADY_CURRENT:
            final = S_FALSE
        elif outcome is Outcome.UPDATED:
            final = S_OK
        else:
            final = S_FALSE if packages == 0 and draw(st.booleans()) else S_OK
    elif outcome is Outcome.CANCELLED:
        final = E_ABORT
    elif outcome is Outcome.FAILED:
        final = draw(failure_hresults.filter(lambda code: code != E_ABORT))
    else:
        final = draw(failure_hresults)
        if ending == "internal-failure":
            at += 0.5
            notifications.append(ScenarioNotification(round(at, 3), int(N.INTERNAL_FAILURE), final))
    complete = ScenarioComplete(round(at + 0.5, 3), final)
    return Scenario("drawn", "drawn by grammatical_scenarios()", tuple(notifications), complete)


def successful_updates() -> st.SearchStrategy[Scenario]:
    """Updates that install signatures (UPDATED), with or without a reboot."""
    drawn: st.SearchStrategy[Scenario] = grammatical_scenarios(outcome=Outcome.UPDATED)
    return drawn


def failing_updates() -> st.SearchStrategy[Scenario]:
    """Updates that fail (FAILED): a failing COMPLETE, early or after INTERNAL_FAILURE."""
    drawn: st.SearchStrategy[Scenario] = grammatical_scenarios(outcome=Outcome.FAILED)
    return drawn


def cancelled_updates() -> st.SearchStrategy[Scenario]:
    """Updates the service reports as aborted (COMPLETE with E_ABORT: CANCELLED)."""
    drawn: st.SearchStrategy[Scenario] = grammatical_scenarios(outcome=Outcome.CANCELLED)
    return drawn


def reboot_updates() -> st.SearchStrategy[Scenario]:
    """Updates that succeed and need a reboot (REBOOT_REQUIRED; ``result.reboot_required``)."""
    drawn: st.SearchStrategy[Scenario] = grammatical_scenarios(reboot=True)
    return drawn


_MIDDLE = [int(n) for n in Notify if n not in (N.SIGUPDATE_START, N.SIGUPDATE_COMPLETE)]


@st.composite
def any_scenarios(draw: st.DrawFn) -> Scenario:
    """Any order, unknown numbers, odd data and callback types: what lenient mode must survive."""
    count = draw(st.integers(0, 25))
    notifications = []
    at = 0.0
    for _ in range(count):
        at += draw(st.sampled_from([0.0, 0.25, 1.0]))
        notify = draw(
            st.one_of(
                st.sampled_from(_MIDDLE),
                st.integers(0, 0xFFFFFFFF).filter(
                    lambda n: n not in (int(N.SIGUPDATE_START), int(N.SIGUPDATE_COMPLETE))
                ),
            )
        )
        data = draw(
            st.one_of(
                st.none(),
                st.builds(
                    SigUpdateData,
                    percent=st.integers(0, 0xFFFFFFFF),
                    total_updates=st.integers(0, 0xFFFFFFFF),
                    current_index=st.integers(0, 0xFFFFFFFF),
                    update_type=st.integers(0, 0xFFFFFFFF),
                    stage=st.integers(0, 0xFFFFFFFF),
                    path=st.one_of(st.none(), st.text(max_size=20).filter(lambda s: "\0" not in s)),
                ),
            )
        )
        notifications.append(
            ScenarioNotification(
                round(at, 3),
                notify,
                draw(st.integers(0, 0xFFFFFFFF)),
                data,
                draw(st.sampled_from([6, 6, 6, 0, 15])),
            )
        )
    final = draw(st.one_of(st.sampled_from([S_OK, S_FALSE, E_ABORT]), st.integers(0, 0xFFFFFFFF)))
    complete = ScenarioComplete(round(at + 1.0, 3), final)
    return Scenario("drawn", "drawn by any_scenarios()", tuple(notifications), complete)


# -- scenario files, hostile ------------------------------------------------------------------

#: Seconds at and around the edges of what a scenario accepts (0..MAX_SECONDS), and past them.
_EDGE_SECONDS = [0, 0.0, -0.0, 5e-324, 1e-7, 0.5, 1e10, 1e10 + 1, 9999999999.999998, 1e13, 1e300]


@functools.cache
def seconds_values() -> st.SearchStrategy[Any]:
    """Numbers a scenario's times may hold, and many they may not (huge, negative, non-finite)."""
    return st.one_of(
        st.floats(0, MAX_SECONDS),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(10**20), 10**20),
        st.sampled_from(_EDGE_SECONDS),
    )


@functools.cache
def moment_texts() -> st.SearchStrategy[str]:
    """ISO 8601 texts across the whole calendar (years 1..9999), with UTC offsets that may push
    them past either end, and some that are not ISO 8601 at all."""
    offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
    edges = st.sampled_from(
        [
            "1601-01-01T00:00:00Z",
            "1600-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T00:00:00Z",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.123456789Z",
            "not a time",
        ]
    )
    return st.one_of(
        edges,
        st.datetimes(timezones=st.one_of(st.just(timezone.utc), offsets)).map(moment_text),
        st.datetimes(
            min_value=datetime(1601, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.none()
        ).map(lambda d: d.isoformat() + "Z"),
    )


@functools.cache
def json_values(depth: int = 2) -> st.SearchStrategy[Any]:
    """Any JSON value Python's json gives: scalars of every type at their extremes (huge
    integers, NaN and infinities, text with lone surrogates and NULs), lists and objects."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(2**70), 2**70),
        st.sampled_from([10**400, -(10**400), 2**32, -(2**31) - 1, 0xFFFFFFFF]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=12),
        st.sampled_from(["", "\0", "\ud800", "\udfff\ud800", "S_OK", "0x80070005", "HTTP"]),
    )
    if depth <= 0:
        return scalars
    inner = json_values(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=6), inner, max_size=3),
    )


_PERCENT = st.integers(0, 99)
_ODDS = st.integers(0, 49)


def _maybe(draw: st.DrawFn, valid: st.SearchStrategy[Any], chance: float = 0.03) -> Any:
    """``valid`` most of the time, any JSON value (of any type) sometimes."""
    if draw(_PERCENT) < chance * 100:
        return draw(json_values())
    return draw(valid)


@functools.cache
def _document_parts() -> tuple[
    st.SearchStrategy[Any],
    st.SearchStrategy[int],
    st.SearchStrategy[Any],
    st.SearchStrategy[float],
    st.SearchStrategy[dict[str, Any]],
    dict[str, st.SearchStrategy[Any]],
]:
    """The strategies scenario_documents() draws from, made once (making them costs more than
    drawing)."""
    hresults = st.one_of(
        st.integers(-(2**31), 2**32 - 1),
        st.sampled_from(["S_OK", "s_false", "E_ABORT", "0x80072EFD", "0X1"]),
    )
    dwords = st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 100, 0xFFFFFFFF]))
    notify_names = st.one_of(
        st.sampled_from([Notify(n).name for n in _MIDDLE] + ["0x8003", "0x800E"]), dwords
    )
    time_steps = st.one_of(st.sampled_from([0.0, 0.5, 2.0]), st.floats(0, 1e9))
    data = st.fixed_dictionaries(
        {"percent": dwords, "total_updates": dwords, "current_index": dwords},
        optional={
            "update_type": st.one_of(dwords, st.sampled_from(["HTTP", "unc"])),
            "stage": st.one_of(dwords, st.sampled_from(["SEARCH", "install"])),
            "path": st.one_of(st.none(), st.text(max_size=20)),
        },
    )
    optional: dict[str, st.SearchStrategy[Any]] = {
        "description": st.text(max_size=20),
        "started_at": moment_texts(),
        "open_hresult": hresults,
        "start_hresult": hresults,
        "abort_latency": seconds_values(),
        "versions_before": _version_objects(),
        "versions_after": _version_objects(),
        "messages": st.dictionaries(
            st.one_of(hresults.filter(lambda h: isinstance(h, str)), st.text(max_size=5)),
            st.text(max_size=10),
            max_size=3,
        ),
    }
    return hresults, dwords, notify_names, time_steps, data, optional


@st.composite
def scenario_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A scenario document as ``json.loads`` gives one, fuzzed in every field: mostly valid
    values near the edges of their ranges, sometimes any value of any type; keys left out or
    added. What ``Scenario.from_dict`` must either accept or reject with a ScenarioError."""
    hresults, dwords, notify_names, time_steps, data, optional = _document_parts()
    doc: dict[str, Any] = {
        "format": _maybe(draw, st.just("mpupdate-scenario"), 0.01),
        "version": _maybe(draw, st.just(1), 0.01),
        "name": _maybe(draw, st.text(min_size=1, max_size=10), 0.01),
    }
    notifications: list[Any] = []
    at = 0.0
    for _ in range(draw(st.integers(0, 6))):
        at = at + draw(time_steps)
        item: dict[str, Any] = {
            "at": _maybe(draw, st.just(min(at, MAX_SECONDS)), 0.03),
            "notify": _maybe(draw, notify_names, 0.01),
        }
        if draw(st.booleans()):
            item["hresult"] = _maybe(draw, hresults, 0.03)
        if draw(st.booleans()):
            item["data"] = _maybe(draw, data, 0.03)
        if draw(st.integers(0, 9)) == 0:
            item["callback_type"] = _maybe(draw, dwords, 0.1)
        notifications.append(item)
    doc["notifications"] = _maybe(draw, st.just(notifications), 0.01)
    complete: Optional[dict[str, Any]] = None
    if draw(st.integers(0, 4)):
        complete = {"at": min(at + 1.0, MAX_SECONDS)}
        if draw(_ODDS) < 10:
            complete["at"] = draw(seconds_values())
        if draw(st.booleans()):
            complete["hresult"] = draw(hresults)
    doc["complete"] = _maybe(draw, st.just(complete), 0.01)
    for key, strategy in optional.items():
        if draw(st.integers(0, 3)) == 0:
            doc[key] = _maybe(draw, strategy, 0.03)
    if draw(_ODDS) == 25:  # a required key missing, or an unknown one
        doc.pop(draw(st.sampled_from(sorted(doc))))
    if draw(_ODDS) == 26:
        doc[draw(st.text(max_size=8))] = draw(json_values(1))
    return doc


@functools.cache
def _version_objects() -> st.SearchStrategy[dict[str, Any]]:
    versions = st.one_of(
        st.tuples(*[st.integers(0, 0xFFFF)] * 4).map(lambda p: ".".join(map(str, p))),
        st.sampled_from(["1.2.3", "1.2.3.65536", "", "0.0.0.0"]),
    )
    component = st.one_of(
        versions,
        st.fixed_dictionaries({"version": versions}, optional={"updated_at": moment_texts()}),
    )
    return st.dictionaries(st.sampled_from([attr for attr, _ in COMPONENTS]), component, max_size=3)
