"""The built-in scenario library: realistic updates, by name.

>>> from mpupdate.fakes import scenarios
>>> scenarios.names()[:3]
['access-denied', 'already-current', 'cancelled']
>>> scenarios.get("updated").complete.hresult
0
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Union

from ..scenario import Scenario, ScenarioError

__all__ = ["get", "load_any", "names"]


def _files() -> dict[str, Any]:
    folder = resources.files(__name__)
    return {
        entry.name[: -len(".json")]: entry
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


def names() -> list[str]:
    """The names of the built-in scenarios, sorted."""
    return sorted(_files())


def get(name: str) -> Scenario:
    """A built-in scenario by name, or a scenario file by path (anything ending in ``.json``).

    Files are read anew on every call; built-in scenarios are parsed once.
    """
    value: object = name  # typed str, but called with anything
    if not isinstance(value, str):
        raise _not_a_scenario(value)
    if name.endswith(".json") or "/" in name or "\\" in name:
        return Scenario.load(name)
    return _built_in(name)


@cache
def _built_in(name: str) -> Scenario:
    files = _files()
    if name not in files:
        raise ScenarioError(
            name, "name", f"no built-in scenario by that name; known: {', '.join(sorted(files))}"
        )
    entry = files[name]
    return Scenario.loads(entry.read_text(encoding="utf-8"), source=f"built-in scenario {name}")


def load_any(scenario: Union[Scenario, str, Path]) -> Scenario:
    """A Scenario as it is, a built-in name, or a path (str or os.PathLike).

    TypeError for anything else, naming what is accepted; ScenarioError for a name or file
    that is not a valid scenario."""
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str):
        return get(scenario)
    if isinstance(scenario, os.PathLike):
        return Scenario.load(Path(scenario))
    raise _not_a_scenario(scenario)


def _not_a_scenario(value: object) -> TypeError:
    return TypeError(
        "scenario must be a Scenario, the name of a built-in scenario (a str, see "
        "mpupdate.fakes.scenarios.names()) or the path of a scenario file (a str ending in "
        f".json or a pathlib.Path), not {type(value).__name__} {value!r:.60}"
    )
