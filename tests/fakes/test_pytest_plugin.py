"""The pytest plugin of mpupdate.fakes, as a project that installs mpupdate sees it: run on small
test files by pytester (in this process unless a test needs a fresh one), with no ``-p`` and no
conftest, since the package's pytest11 entry point activates it."""

from __future__ import annotations

import importlib.metadata
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# The inner runs check their own fakes. This module's tests do not check them again: their fakes
# are left unclean on purpose, some of them, and a fake made inside nested tracking() blocks
# (this test's and the inner test's) is seen by both.
pytestmark = pytest.mark.mpupdate_unclean


def run(pytester: pytest.Pytester, source: str, *args: str, ini: str = "") -> pytest.RunResult:
    pytester.makepyfile(test_it=textwrap.dedent(source))
    if ini:
        pytester.makeini("[pytest]\n" + textwrap.dedent(ini))
    return pytester.runpytest("-p", "no:cacheprovider", *args)


@pytest.fixture(autouse=True)
def _no_backend_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MPUPDATE_BACKEND", raising=False)
    monkeypatch.delenv("MPUPDATE_MPCLIENT_PATH", raising=False)


def test_the_package_declares_the_plugin_as_a_pytest11_entry_point() -> None:
    points = importlib.metadata.distribution("mpupdate").entry_points
    assert [(p.name, p.value) for p in points if p.group == "pytest11"] == [
        ("mpupdate", "mpupdate.fakes.pytest_plugin")
    ]


def test_the_fixture_is_the_default_backend_in_every_thread(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import threading
        import mpupdate
        from mpupdate.backends import resolve_backend

        def test_update_without_a_backend(mpupdate_fake):
            assert mpupdate.update().outcome is mpupdate.Outcome.UPDATED
            with mpupdate.Client() as client:
                assert client.backend is mpupdate_fake
            seen = []
            thread = threading.Thread(target=lambda: seen.append(resolve_backend(None)))
            thread.start()
            thread.join()
            assert seen == [mpupdate_fake]
            assert mpupdate_fake.call_count("MpUpdateStart") == 1
            assert (mpupdate_fake.scenario.name, mpupdate_fake.delivery) == ("updated", "timed")

        def test_the_default_ends_with_the_test(monkeypatch):
            monkeypatch.setenv("MPUPDATE_BACKEND", "fake:already-current")
            assert mpupdate.update().outcome is mpupdate.Outcome.ALREADY_CURRENT
        """,
    )
    result.assert_outcomes(passed=2)


def test_markers_parametrisation_and_ini_options_choose_the_fake(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "data").mkdir()
    from mpupdate.fakes import scenarios

    scenarios.get("service-unavailable").replace(name="mine").dump(pytester.path / "data/m.json")
    result = run(
        pytester,
        """
        import pytest
        import mpupdate

        @pytest.mark.mpupdate_scenario("reboot-required")
        def test_marker(mpupdate_fake):
            assert mpupdate.update().reboot_required
            assert mpupdate_fake.delivery == "immediate"  # the ini's

        @pytest.mark.parametrize("mpupdate_fake", ["updated", "network-failure"], indirect=True)
        def test_indirect(mpupdate_fake):
            result = mpupdate.update(check=False)
            expected = {"updated": "UPDATED", "network-failure": "FAILED"}
            assert result.outcome.name == expected[mpupdate_fake.scenario.name]

        @pytest.mark.parametrize(
            "mpupdate_fake", [{"scenario": "already-current", "delivery": "thread"}], indirect=True
        )
        def test_indirect_options(mpupdate_fake):
            assert mpupdate.update().outcome is mpupdate.Outcome.ALREADY_CURRENT
            assert mpupdate_fake.delivery == "thread"

        @pytest.mark.mpupdate_scenario("data/m.json")
        @pytest.mark.mpupdate_delivery("timed")
        def test_a_file_beside_the_test(mpupdate_fake):
            assert mpupdate.update(check=False).hresult == 0x800106BA
            assert (mpupdate_fake.scenario.name, mpupdate_fake.delivery) == ("mine", "timed")

        def test_ini_scenario(mpupdate_fake):
            assert mpupdate_fake.scenario.name == "cancelled"
        """,
        ini="""
        mpupdate_delivery = immediate
        mpupdate_scenario = cancelled
        mpupdate_fake = python
        """,
    )
    result.assert_outcomes(passed=6)


def test_the_native_fake_is_chosen_by_marker_or_ini(pytester: pytest.Pytester) -> None:
    from mpupdate.fakes.native.build import unavailable_reason

    why = unavailable_reason()
    if why is not None:
        pytest.skip(why)
    result = run(
        pytester,
        """
        import pytest
        import mpupdate

        @pytest.mark.mpupdate_native
        @pytest.mark.mpupdate_delivery("thread")
        def test_native(mpupdate_fake):
            assert type(mpupdate_fake).__name__ == "NativeFakeMpClient"
            assert mpupdate.update().outcome is mpupdate.Outcome.UPDATED

        @pytest.mark.mpupdate_native(False)
        def test_python(mpupdate_fake):
            assert type(mpupdate_fake).__name__ == "FakeMpClient"
        """,
        ini="mpupdate_fake = native\n",
    )
    result.assert_outcomes(passed=2)


def test_teardown_fails_on_a_leaked_handle_and_on_a_violation(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest
        import mpupdate
        from mpupdate._native import ffi
        from mpupdate.fakes import FakeViolation

        KEEP = []

        def test_leaks_a_manager_handle(mpupdate_fake):
            KEEP.append(mpupdate.Client())

        def test_frees_what_the_dll_did_not_allocate(mpupdate_fake):
            with pytest.raises(FakeViolation):
                mpupdate_fake.MpFreeMemory(ffi.new("char[]", 4))
        """,
    )
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_manager_handle*",
            "mpupdate_fake: FakeMpClient('updated', delivery='timed') was not left as a test "
            "must leave it.",
            "Expected: every handle closed, every MpErrorMessageFormat buffer freed, no misuse "
            "of the DLL, no worker thread running.",
            "Found:",
            "  - manager handle 0x* left open",
            "*ERROR at teardown of test_frees_what_the_dll_did_not_allocate*",
            "*Found:",
            "  - MpFreeMemory*",
        ]
    )


def test_strict_mode_fails_an_update_that_did_not_play_its_scenario_out(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import pytest
        import mpupdate

        def start_and_drop():
            with mpupdate.Client() as client:
                client.start_update().close()  # never waited for: aborted as it is closed

        @pytest.mark.mpupdate_strict
        def test_strict(mpupdate_fake):
            start_and_drop()

        def test_lenient(mpupdate_fake):
            start_and_drop()

        @pytest.mark.mpupdate_strict
        @pytest.mark.mpupdate_scenario("hung")
        def test_a_never_ending_scenario_may_be_timed_out(mpupdate_fake):
            assert mpupdate.update(timeout=60, check=False).outcome is mpupdate.Outcome.TIMED_OUT

        @pytest.mark.mpupdate_strict
        @pytest.mark.mpupdate_scenario("updated-three-packages")
        def test_waited_for(mpupdate_fake):
            assert mpupdate.update().ok
        """,
    )
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_strict*",
            "*(mpupdate_strict) every update started played its scenario out, up to the "
            "scenario's own SIGUPDATE_COMPLETE.",
            "Found:",
            "  - update 0x* of scenario 'updated' was aborted (cancelled, timed out or closed "
            "while running) after 1 of its * scripted notifications: the scenario was not "
            "played out",
        ]
    )


def test_the_guard_stops_the_real_dll_unless_the_test_is_marked(
    pytester: pytest.Pytester,
) -> None:
    result = run(
        pytester,
        """
        import pytest
        import mpupdate
        from mpupdate.backends import DllBackend, MpClientOverrideWarning

        def test_update_without_a_fixture():
            mpupdate.update()

        def test_dll_string():
            mpupdate.Client(backend="dll")

        def test_swallowed():
            try:
                DllBackend()
            except mpupdate.BackendUnavailableError:
                pass

        def test_an_explicit_path_is_not_guarded(tmp_path):
            with pytest.raises(mpupdate.BackendUnavailableError, match="override was refused"):
                mpupdate.Client(backend=f"dll:{tmp_path / 'MpClient.dll'}")

        @pytest.mark.mpupdate_real
        def test_marked(monkeypatch, tmp_path):
            # The search is let through; the override variable keeps it from any real DLL.
            monkeypatch.setenv("MPUPDATE_MPCLIENT_PATH", str(tmp_path / "MpClient.dll"))
            with pytest.raises(mpupdate.BackendUnavailableError, match="override was refused"):
                DllBackend()
        """,
    )
    result.assert_outcomes(passed=3, failed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*RealDllBlocked: load MpClient: the test test_it.py::test_update_without_a_fixture "
            "tried to load the real MpClient.dll*unless the test is marked "
            "@pytest.mark.mpupdate_real",
            "*Hint: use the mpupdate_fake fixture*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_swallowed*", "the test *mpupdate_real"]
    )
    result.stdout.fnmatch_lines(["*RealDllBlocked: *the test test_it.py::test_dll_string tried*"])


@pytest.mark.parametrize(
    ("how", "args", "conftest"),
    [
        ("-p", ("-p", "mpupdate.fakes.pytest_plugin"), ""),
        ("pytest_plugins", (), 'pytest_plugins = ["mpupdate.fakes.pytest_plugin"]\n'),
        ("disabled", ("-p", "no:mpupdate"), ""),
    ],
)
def test_naming_the_plugin_as_well_as_installing_it_is_fine(
    pytester: pytest.Pytester, how: str, args: tuple[str, ...], conftest: str
) -> None:
    if conftest:
        pytester.makeconftest(conftest)
    result = run(
        pytester,
        """
        def test_fixture(request):
            request.getfixturevalue("mpupdate_fake")
        """,
        *args,
    )
    if how == "disabled":
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*fixture 'mpupdate_fake' not found*"])
    else:
        result.assert_outcomes(passed=1)


def test_an_unused_plugin_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import sys

        def test_modules(request):
            assert request.config.pluginmanager.has_plugin("mpupdate")
            heavy = {"mpupdate.fakes.dll", "mpupdate.fakes.scenario", "mpupdate.fakes.scenarios",
                     "mpupdate.fakes.native", "mpupdate.fakes.clock", "hypothesis"}
            print("HEAVY", sorted(heavy & set(sys.modules)))
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-s"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*HEAVY []*"])


def test_use_backend_nests_and_restores_what_backend_none_means() -> None:
    import threading

    from mpupdate.backends import resolve_backend, use_backend
    from mpupdate.fakes import FakeMpClient

    first, second = FakeMpClient("updated"), FakeMpClient("cancelled")
    with use_backend(first) as entered:
        assert entered is first and resolve_backend(None) is first
        with use_backend(second):
            seen: list[object] = []
            thread = threading.Thread(target=lambda: seen.append(resolve_backend(None)))
            thread.start()
            thread.join()
            assert seen == [second]
        assert resolve_backend(None) is first
    with use_backend("fake:reboot-required") as made:  # a string is resolved once, on entry
        assert resolve_backend(None) is made
        assert made.scenario.name == "reboot-required"  # type: ignore[attr-defined]


def test_the_guard_seam_is_consulted_only_by_this_process_s_own_search(tmp_path: Path) -> None:
    from mpupdate.backends import DllBackend, LoaderEnvironment, set_real_dll_guard
    from mpupdate.errors import BackendUnavailableError

    asked: list[str] = []

    def guard() -> None:
        asked.append("asked")
        raise BackendUnavailableError("load MpClient", 0x80004005, "refused by the test")

    previous = set_real_dll_guard(guard)
    try:
        with pytest.raises(BackendUnavailableError, match="refused by the test"):
            DllBackend()
        with pytest.raises(BackendUnavailableError, match="exists only on Windows"):
            DllBackend(environment=LoaderEnvironment(environ={}, windows=False))
        with pytest.raises(BackendUnavailableError, match="override was refused"):
            DllBackend(str(tmp_path / "MpClient.dll"))
    finally:
        assert set_real_dll_guard(previous) is guard
    assert asked == ["asked"]
