"""Fuzzing the scenario loader and the fakes with hostile scenario files.

Whatever a scenario file holds, ``Scenario.loads``/``Scenario.load`` either return a Scenario or
raise ScenarioError naming a position and a problem, never anything else; a loaded scenario
round-trips exactly through ``dumps``; and it replays through ``mpupdate.update(backend=...)`` on
both fakes (FakeMpClient and, when it can be built, NativeFakeMpClient) in every delivery mode,
finishing (never-ending ones by a timeout) without an exception and leaving the fake clean.

The files are fuzzed in structure and values: every field, every JSON type, huge integers (past
Python's 4300-digit limit) and non-finite numbers, dates at both ends of the calendar with UTC
offsets, deep nesting, duplicate keys, invalid UTF-8 bytes and lone or reversed UTF-16 escapes.

A short run by default (300, 100 and 30 examples: about 6 seconds on 2 cores). For a long one set
``MPUPDATE_FUZZ_EXAMPLES``, the number of examples every test draws, e.g.
``MPUPDATE_FUZZ_EXAMPLES=2000 pytest -p no:cacheprovider tests/fakes/test_scenario_fuzz.py``
(about 4 minutes on 2 cores; the replay test dominates, 6 updates per example and backend).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Optional, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mpupdate
from mpupdate.fakes import FakeMpClient, Scenario
from mpupdate.fakes.dll import DELIVERY_MODES
from mpupdate.fakes.native.build import unavailable_reason
from mpupdate.fakes.scenario import LATEST, ScenarioError
from mpupdate.fakes.strategies import any_scenarios, json_values, scenario_documents

_EXAMPLES = int(os.environ.get("MPUPDATE_FUZZ_EXAMPLES", "0") or 0)


def fuzz(default: int) -> Any:
    """Hypothesis settings: ``default`` examples, or MPUPDATE_FUZZ_EXAMPLES."""
    return settings(
        max_examples=_EXAMPLES or default,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


_NATIVE_MISSING = unavailable_reason()
BACKENDS = [
    "python",
    pytest.param(
        "native",
        marks=pytest.mark.skipif(
            _NATIVE_MISSING is not None, reason=f"native fake: {_NATIVE_MISSING}"
        ),
    ),
]


# -- JSON text with what json.dumps never writes ------------------------------------------------


class Pairs(list[tuple[str, Any]]):
    """A JSON object as key/value pairs: a key may come twice."""


class Raw(str):
    """JSON text written as it is: a huge integer literal, a lone-surrogate escape, NaN."""


def encode(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ", ".join(f"{json.dumps(k)}: {encode(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return encode(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ", ".join(encode(v) for v in value) + "]"
    return json.dumps(value)  # NaN and Infinity as Python writes them


_RAW = st.sampled_from(
    [
        Raw("9" * 5000),
        Raw("-" + "1" * 4400),
        Raw("1" + "0" * 45),
        Raw("1e400"),
        Raw("-1e400"),
        Raw("NaN"),
        Raw("-Infinity"),
        Raw('"\\ud800"'),
        Raw('"\\udc00\\ud800"'),
        Raw('"a\\ud83d"'),
        Raw('"\\ud83d\\ude00"'),
        Raw('"\\u0000"'),
        Raw('"2026-01-01T00:00:00Z\\ud800"'),
    ]
)


_ROLL = st.integers(0, 199)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """``value`` with some of its parts replaced by raw JSON, duplicated keys or deep nesting."""
    roll = draw(_ROLL)
    if roll < 3:
        return draw(_RAW)
    if roll == 3:
        levels = draw(st.sampled_from([1, 63, 64, 65, 2000]))
        return Raw("[" * levels + encode(value) + "]" * levels)
    if isinstance(value, dict) and depth < 4:
        pairs = Pairs((k, draw(mutated(v, depth + 1))) for k, v in value.items())
        if pairs and draw(st.integers(0, 9)) == 0:  # a key named twice: first or last wins?
            key, _ = pairs[draw(st.integers(0, len(pairs) - 1))]
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(json_values(1))))
        return pairs
    if isinstance(value, list) and depth < 4:
        return [draw(mutated(v, depth + 1)) for v in value]
    return value


@st.composite
def scenario_texts(draw: st.DrawFn) -> str:
    """Scenario JSON text: a fuzzed document, sometimes mutated beyond what json.dumps writes."""
    doc = draw(scenario_documents())
    if draw(st.integers(0, 2)) == 1:
        return encode(draw(mutated(doc)))
    return json.dumps(doc)


def check_loads(text: Union[str, bytes]) -> Optional[Scenario]:
    """Load ``text``: a Scenario that round-trips, or None after a well-formed ScenarioError."""
    try:
        scenario = Scenario.loads(text, source="fuzz.json")
    except ScenarioError as exc:
        assert exc.source == "fuzz.json"
        assert exc.position and exc.problem
        assert exc.position == "file" or exc.position.startswith(("$", "line ", "byte "))
        assert str(exc) == f"fuzz.json: {exc.position}: {exc.problem}"
        return None
    dumped = scenario.dumps()
    dumped.encode("utf-8")  # writable as UTF-8: no raw lone surrogate
    assert Scenario.loads(dumped) == scenario
    assert Scenario.from_dict(scenario.to_dict()) == scenario
    return scenario


@fuzz(300)
@given(scenario_texts())
def test_loads_raises_only_scenario_error(text: str) -> None:
    check_loads(text)


@fuzz(100)
@given(scenario_texts(), st.binary(max_size=4), st.integers(0, 10_000), st.booleans())
def test_load_of_any_bytes_raises_only_scenario_error(
    tmp_path_factory: pytest.TempPathFactory, text: str, junk: bytes, where: int, bom: bool
) -> None:
    data = text.encode("utf-8", "surrogatepass")  # a raw lone surrogate is invalid UTF-8
    where = min(where, len(data))
    data = (b"\xef\xbb\xbf" if bom else b"") + data[:where] + junk + data[where:]
    path = tmp_path_factory.getbasetemp() / "fuzz.json"
    path.write_bytes(data)
    try:
        scenario = Scenario.load(path)
    except ScenarioError as exc:
        assert exc.source == str(path) and exc.position and exc.problem
        return
    assert Scenario.loads(scenario.dumps()) == scenario
    assert check_loads(data) == scenario


# -- replaying what loads -----------------------------------------------------------------------


@contextmanager
def fake_for(backend: str, scenario: Scenario, delivery: str) -> Iterator[FakeMpClient]:
    """A fake of ``backend`` for ``scenario``, checked clean, never left in use."""
    if backend == "python":
        fake = FakeMpClient(scenario, delivery=delivery)
        yield fake
        fake.assert_clean()
        return
    from mpupdate.fakes.native import NativeFakeMpClient

    native = NativeFakeMpClient(scenario, delivery=delivery)
    try:
        yield native
        native.assert_clean()
    finally:
        if NativeFakeMpClient.in_use():
            NativeFakeMpClient.reset_library()


#: Timeouts on the virtual clock (immediate and timed delivery): nothing real is waited for, so
#: they may be anything, past the end of the calendar too.
_VIRTUAL_TIMEOUTS = st.sampled_from([None, 0.0, 0.5, 3600.0, 1e10, 1e15, 1e300])


@st.composite
def replayable(draw: st.DrawFn) -> Scenario:
    """Scenarios that load: fuzzed files that passed, and drawn scenarios moved to the edges."""
    if draw(st.booleans()):
        scenario = check_loads(draw(scenario_texts()))
        if scenario is not None:
            return scenario
    base = draw(any_scenarios())
    doc = base.to_dict()
    span = max([0.0] + [n["at"] for n in doc["notifications"]])
    if draw(st.booleans()):
        doc["complete"] = None if draw(st.booleans()) else {"at": 1e10, "hresult": "S_OK"}
    if draw(st.booleans()):
        doc["abort_latency"] = draw(st.sampled_from([0.0, 1.0, 1e6]))
    span = max(span, (doc["complete"] or {"at": 0.0})["at"]) + doc.get("abort_latency", 0.0)
    edge = draw(st.sampled_from(["default", "earliest", "latest"]))
    if edge == "earliest":
        doc["started_at"] = "1601-01-01T00:00:00Z"
    elif edge == "latest":
        doc["started_at"] = (LATEST - timedelta(seconds=span)).isoformat().replace("+00:00", "Z")
    result = check_loads(json.dumps(doc))
    return result if result is not None else base


@pytest.mark.parametrize("backend", BACKENDS)
@fuzz(30)
@given(scenario=replayable(), timeout=_VIRTUAL_TIMEOUTS, progress=st.booleans())
def test_whatever_loads_replays_on_the_fakes_in_every_mode(
    backend: str, scenario: Scenario, timeout: Optional[float], progress: bool
) -> None:
    options = None if progress else 0  # with PROGRESS (the default), or without
    for delivery in DELIVERY_MODES:
        if delivery == "thread":  # real time: a never-ending update is timed out at once
            wait: Optional[float] = 30.0 if scenario.complete is not None else 0.01
        else:
            wait = timeout if timeout is not None or scenario.complete is not None else 1.0
        with fake_for(backend, scenario, delivery) as fake:
            result = mpupdate.update(backend=fake, check=False, timeout=wait, options=options)
        assert isinstance(result.outcome, mpupdate.Outcome)
        for event in result.events:
            assert event.timestamp.tzinfo is not None
