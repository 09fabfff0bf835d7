"""The pytest plugin of mpupdate: test code that updates Defender, against the fake DLL.

Installing mpupdate activates it in every pytest run (the ``pytest11`` entry point ``mpupdate``);
``-p mpupdate.fakes.pytest_plugin`` and ``pytest_plugins = ["mpupdate.fakes.pytest_plugin"]``
name the same plugin and may be used as well (``-p no:mpupdate`` turns it off). See
docs/testing.md for a complete example. It provides:

- ``mpupdate_fake``: a fake MpClient.dll that is the default backend while the test runs, so
  ``mpupdate.update()`` and ``mpupdate.Client()`` without a ``backend=`` use it (from any
  thread). Its scenario comes from indirect parametrisation
  (``@pytest.mark.parametrize("mpupdate_fake", ["updated", "network-failure"], indirect=True)``),
  else the ``mpupdate_scenario`` marker, else the ``mpupdate_scenario`` ini option, else
  ``"updated"``; a built-in name or the path of a scenario JSON file (relative paths are tried
  beside the test file first). Its delivery mode, strictness and kind (Python or native) come
  from the ``mpupdate_delivery``, ``mpupdate_strict`` and ``mpupdate_native`` markers, else from
  the ``mpupdate_delivery``, ``mpupdate_strict`` and ``mpupdate_fake`` ini options. At teardown
  the test fails, saying what was expected and what was found, if the fake was left with an open
  handle, an unfreed buffer, a violation or a live worker thread, or, in strict mode (off by
  default), an update that did not play its scenario out: every update started must have had
  every notification its scenario scripts delivered, up to the scenario's own COMPLETE (one
  still running, cancelled, timed out or closed early fails; for a never-ending scenario such as
  ``hung``, all its scripted notifications must come before the abort). In ``timed`` delivery,
  the default, the fake delivers only while the code under test waits, so this also checks that
  the code waited for its updates.
- ``fake_mpclient``: a factory of FakeMpClient objects, not made the default backend.
- The guard: while the plugin is active, nothing may search for and load the real MpClient.dll
  (``backend=None`` with no ``mpupdate_fake`` and no ``$MPUPDATE_BACKEND``, ``backend="dll"``,
  ``DllBackend()``) unless the test is marked ``@pytest.mark.mpupdate_real``: the attempt raises
  :class:`RealDllBlocked` (a BackendUnavailableError) naming the marker, and the test fails even
  if the code under test swallowed it. An explicit path (``backend="dll:<path>"``,
  ``DllBackend(path)``, always announced with a warning) is not guarded: that is how the native
  fake and planted test libraries are loaded.
- After every test, each fake made during it must be clean and no update may still be registered
  for callbacks (``@pytest.mark.mpupdate_unclean`` skips that check). Fakes are tracked from the
  moment ``mpupdate.fakes`` has loaded them.

Loading the plugin imports none of the fakes, scenarios, native fake or hypothesis; they are
imported on first use of a fixture (``import mpupdate`` itself is imported, as the plugin is part
of that package).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import pytest

from mpupdate.backends import set_real_dll_guard, use_backend
from mpupdate.errors import BackendUnavailableError

if TYPE_CHECKING:
    from .dll import FakeMpClient

__all__ = ["RealDllBlocked", "fake_mpclient", "mpupdate_fake"]

DELIVERIES = ("immediate", "thread", "timed")
KINDS = ("python", "native")
DEFAULT_SCENARIO = "updated"
DEFAULT_DELIVERY = "timed"

_MARKERS = (
    "mpupdate_scenario(scenario): the scenario of the mpupdate_fake fixture, a built-in name "
    "(mpupdate.fakes.scenarios.names()) or the path of a scenario JSON file",
    "mpupdate_delivery(mode): how the mpupdate_fake fixture delivers notifications: "
    "immediate, thread or timed",
    "mpupdate_strict(strict=True): fail the test if an update of the mpupdate_fake fixture "
    "was started and did not play its scenario out (see docs/testing.md)",
    "mpupdate_native(native=True): make the mpupdate_fake fixture the native (C) fake",
    "mpupdate_real: this test may load the real MpClient.dll (and perform real updates)",
    "mpupdate_unclean: do not check that fakes and callbacks end clean",
)


class RealDllBlocked(BackendUnavailableError):
    """A test tried to load the real MpClient.dll without ``@pytest.mark.mpupdate_real``."""


# -- configuration -----------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "mpupdate_scenario",
        "scenario of the mpupdate_fake fixture when the test names none (built-in name or path)",
        default=DEFAULT_SCENARIO,
    )
    parser.addini(
        "mpupdate_delivery",
        "delivery mode of the mpupdate_fake fixture: immediate, thread or timed",
        default=DEFAULT_DELIVERY,
    )
    parser.addini(
        "mpupdate_strict",
        "mpupdate_fake is strict: every update started must play its scenario out",
        type="bool",
        default=False,
    )
    parser.addini(
        "mpupdate_fake",
        "which fake the mpupdate_fake fixture is: python or native",
        default="python",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    guard = _Guard()
    config.stash[_GUARD] = guard
    guard.previous = set_real_dll_guard(guard)


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.stash.get(_GUARD, None)
    if guard is not None:
        set_real_dll_guard(guard.previous)


def pytest_plugin_registered(plugin: object, manager: Any) -> None:
    """Answer to both names: once this module is registered under one of ``mpupdate`` (the entry
    point) and ``mpupdate.fakes.pytest_plugin`` (``-p`` or ``pytest_plugins``), the other name is
    taken by a placeholder with no hooks, so pytest does not import and register the module a
    second time (which it refuses)."""
    if plugin is not sys.modules[__name__]:
        return
    registered_as = manager.get_name(plugin)
    for name in (_ENTRY_POINT_NAME, __name__):
        if name != registered_as and not manager.has_plugin(name) and not manager.is_blocked(name):
            manager.register(_SameModule(registered_as), name)


_ENTRY_POINT_NAME = "mpupdate"


class _SameModule:
    """The placeholder registered under this plugin's other name."""

    def __init__(self, name: str) -> None:
        self.registered_as = name

    def __repr__(self) -> str:
        return f"<the mpupdate pytest plugin, registered as {self.registered_as!r}>"


# -- the guard ---------------------------------------------------------------------------------


class _Guard:
    """Refuses loads of the real DLL except while a test marked ``mpupdate_real`` runs."""

    def __init__(self) -> None:
        self.previous: Optional[Callable[[], None]] = None
        self.allowed = False
        self.test: Optional[str] = None
        self.attempts: list[str] = []
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if self.allowed:
            return
        where = f"the test {self.test}" if self.test else "this pytest run, outside any test,"
        message = (
            f"{where} tried to load the real MpClient.dll (backend=None with no mpupdate_fake "
            "fixture and no $MPUPDATE_BACKEND, backend='dll', or DllBackend()); the mpupdate "
            "pytest plugin stops that unless the test is marked @pytest.mark.mpupdate_real"
        )
        with self._lock:
            self.attempts.append(message)
        raise RealDllBlocked(
            "load MpClient",
            0x80004005,
            message,
            "use the mpupdate_fake fixture (the code under test then gets the fake without a "
            "backend argument), pass backend='fake:<scenario>', or mark the test "
            "@pytest.mark.mpupdate_real if it really must update Defender",
        )


_GUARD = pytest.StashKey[_Guard]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Optional[pytest.Item]) -> Iterator[None]:
    """While a test runs (setup, call, teardown), the guard knows which, and whether it is
    marked ``mpupdate_real``."""
    guard = item.config.stash.get(_GUARD, None)
    if guard is None:
        yield
        return
    guard.allowed = item.get_closest_marker("mpupdate_real") is not None
    guard.test = item.nodeid
    try:
        yield
    finally:
        guard.allowed = False
        guard.test = None


_FAILED = pytest.StashKey[bool]()
_CHECKED = pytest.StashKey[list[Any]]()  # the mpupdate_fake fakes of a test


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[Any]:
    outcome: Any = yield
    if outcome.get_result().failed:
        item.stash[_FAILED] = True


def _failed(item: pytest.Item) -> bool:
    """Whether the test's setup or call already failed."""
    return bool(item.stash.get(_FAILED, False))


# -- the clean check of every test -------------------------------------------------------------


@pytest.fixture(autouse=True)
def _mpupdate_ends_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    guard = request.config.stash.get(_GUARD, None)
    attempts = len(guard.attempts) if guard is not None else 0
    # Without mpupdate.fakes.dll loaded, no fake exists yet: loading it here for a test that
    # makes none would cost every project that never uses the fakes.
    dll = sys.modules.get("mpupdate.fakes.dll")
    unclean = request.node.get_closest_marker("mpupdate_unclean") is not None
    if unclean:
        dll = None  # nothing is checked, so nothing needs tracking
    from mpupdate import _native

    registered = _native.registry_size()
    if dll is None:
        yield
        made: list[FakeMpClient] = []
    else:
        with dll.tracking() as made:
            yield
    if guard is not None and len(guard.attempts) > attempts and not _failed(request.node):
        # The code under test swallowed the refusal: the test must not pass regardless.
        pytest.fail(guard.attempts[attempts], pytrace=False)
    if unclean:
        return
    checked = request.node.stash.get(_CHECKED, [])
    for fake in made:
        if not any(fake is own for own in checked):  # mpupdate_fake reports on its own
            fake.assert_clean()
    if _native.registry_size() > registered:
        gc.collect()  # an abandoned operation closes its handle when collected
    leaked = _native.registry_size() - registered
    assert leaked <= 0, (
        f"{leaked} update(s) still registered for callbacks: an operation was not closed"
    )


# -- the fixtures ------------------------------------------------------------------------------


@pytest.fixture
def fake_mpclient() -> Callable[..., FakeMpClient]:
    """Make FakeMpClient instances: ``fake_mpclient("network-failure", delivery="timed")``.

    Not the default backend: pass them as ``backend=`` (``mpupdate_fake`` is the default one).
    """
    from .dll import FakeMpClient

    def make(
        scenario: Any = DEFAULT_SCENARIO, delivery: str = "immediate", **options: Any
    ) -> FakeMpClient:
        return FakeMpClient(scenario, delivery=delivery, **options)

    return make


@pytest.fixture
def mpupdate_fake(request: pytest.FixtureRequest) -> Iterator[FakeMpClient]:
    """A fake MpClient.dll, the default backend while the test runs (see the module docs).

    Indirect parameters: a scenario (built-in name, path or Scenario), or a dict with any of
    ``scenario``, ``delivery``, ``strict`` and ``native``.
    """
    settings = _settings(request)
    fake = _make(settings["scenario"], settings["delivery"], settings["native"])
    request.node.stash.setdefault(_CHECKED, []).append(fake)
    with use_backend(fake):
        yield fake
    problems = _problems(fake, strict=settings["strict"])
    if problems:
        if hasattr(fake, "discard"):  # the native library answers one fake at a time
            fake.discard()
        if _failed(request.node):
            return  # the test failed already; what it left behind is no news
        pytest.fail(
            f"mpupdate_fake: {fake!r} was not left as a test must leave it.\n"
            "Expected: every handle closed, every MpErrorMessageFormat buffer freed, no misuse "
            "of the DLL, no worker thread running"
            + (
                ", and (mpupdate_strict) every update started played its scenario out, up to "
                "the scenario's own SIGUPDATE_COMPLETE"
                if settings["strict"]
                else ""
            )
            + ".\nFound:\n  - "
            + "\n  - ".join(problems),
            pytrace=False,
        )


def _settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    config = request.config
    node = request.node
    settings: dict[str, Any] = {
        "scenario": config.getini("mpupdate_scenario") or DEFAULT_SCENARIO,
        "delivery": config.getini("mpupdate_delivery") or DEFAULT_DELIVERY,
        "strict": bool(config.getini("mpupdate_strict")),
        "native": _kind(config.getini("mpupdate_fake")) == "native",
    }
    marker = node.get_closest_marker("mpupdate_scenario")
    if marker is not None:
        settings["scenario"] = _marker_value(marker)
    marker = node.get_closest_marker("mpupdate_delivery")
    if marker is not None:
        settings["delivery"] = _marker_value(marker)
    marker = node.get_closest_marker("mpupdate_strict")
    if marker is not None:
        settings["strict"] = bool(_marker_value(marker, default=True))
    marker = node.get_closest_marker("mpupdate_native")
    if marker is not None:
        settings["native"] = bool(_marker_value(marker, default=True))
    param = getattr(request, "param", None)
    if isinstance(param, dict):
        unknown = set(param) - set(settings)
        if unknown:
            raise pytest.UsageError(
                f"mpupdate_fake parameter: unknown keys {sorted(unknown)}; use {sorted(settings)}"
            )
        settings.update(param)
    elif param is not None:
        settings["scenario"] = param
    if settings["delivery"] not in DELIVERIES:
        raise pytest.UsageError(
            f"mpupdate_fake: delivery {settings['delivery']!r} is not one of {DELIVERIES}"
        )
    settings["scenario"] = _scenario_path(settings["scenario"], request)
    return settings


def _marker_value(marker: pytest.Mark, default: Any = None) -> Any:
    if marker.args:
        return marker.args[0]
    if len(marker.kwargs) == 1:
        return next(iter(marker.kwargs.values()))
    if default is None:
        raise pytest.UsageError(f"@pytest.mark.{marker.name} needs a value")
    return default


def _kind(value: str) -> str:
    kind = (value or "python").strip().lower()
    if kind not in KINDS:
        raise pytest.UsageError(f"ini option mpupdate_fake = {value!r}: use python or native")
    return kind


def _scenario_path(scenario: Any, request: pytest.FixtureRequest) -> Any:
    """A relative scenario path is looked for beside the test file first."""
    text = str(scenario) if isinstance(scenario, (str, Path)) else None
    if text is None or not (text.endswith(".json") or "/" in text or "\\" in text):
        return scenario
    path = Path(text)
    if not path.is_absolute():
        beside = Path(str(request.node.path)).parent / path
        if beside.exists():
            return beside
    return path


def _make(scenario: Union[str, Path, Any], delivery: str, native: bool) -> FakeMpClient:
    if native:
        from .native.build import unavailable_reason

        why = unavailable_reason()
        if why is not None:
            pytest.skip(f"mpupdate_fake: the native fake is unavailable: {why}")
        from .native import NativeFakeMpClient

        return NativeFakeMpClient(scenario, delivery=delivery)
    from .dll import FakeMpClient

    return FakeMpClient(scenario, delivery=delivery)


def _problems(fake: FakeMpClient, strict: bool) -> list[str]:
    """What ``fake`` was left with: its assert_clean findings, and in strict mode the updates
    that did not play their scenario out."""
    problems: list[str] = []
    try:
        fake.assert_clean()
    except AssertionError as error:
        problems += [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    if strict:
        problems += _unconsumed(fake)
    return problems


def _unconsumed(fake: FakeMpClient) -> list[str]:
    """Strict mode's rule: every update started must have played its scenario out, that is the
    fake delivered every notification the scenario scripts for it, up to and including the
    scenario's own SIGUPDATE_COMPLETE. An update still running, or cancelled, timed out or closed
    before that COMPLETE, was not. An update of a scenario that never ends (``hung``) must have
    delivered every scripted notification before it was aborted."""
    found = []
    for update in list(fake.updates):
        name = f"update 0x{update.handle:X} of scenario {fake.scenario.name!r}"
        scripted = len(update.plan)
        if not update.completed:
            found.append(f"{name} was started and never reached SIGUPDATE_COMPLETE")
        elif update.aborted and fake.scenario.complete is not None:
            found.append(
                f"{name} was aborted (cancelled, timed out or closed while running) after "
                f"{len(update.delivered) - 1} of its {scripted} scripted notifications: the "
                "scenario was not played out"
            )
        elif update.aborted and len(update.delivered) - 1 < scripted:
            found.append(
                f"{name} was aborted after {len(update.delivered) - 1} of its {scripted} "
                "scripted notifications (the scenario never ends; every notification it "
                "scripts must be delivered before the abort)"
            )
    return found
