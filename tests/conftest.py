"""Shared test set-up. The mpupdate.fakes pytest plugin (the installed package's pytest11 entry
point, also named by pyproject's addopts) checks after every test that each FakeMpClient is clean
and that no update is left registered, and stops any test not marked ``mpupdate_real`` from
searching for and loading the real MpClient.dll."""

from __future__ import annotations

import os

import pytest

import mpupdate

if os.environ.get("MPUPDATE_EXPECT_INSTALLED") == "1":
    # CI's wheel lane: make sure the suite runs against the installed wheel, not the checkout.
    assert "site-packages" in mpupdate.__file__, f"testing {mpupdate.__file__}, not the wheel"


def pytest_sessionstart(session: pytest.Session) -> None:
    """With MPUPDATE_REQUIRE_NATIVE_FAKE=1 (CI's lanes), a missing native fake is an error, not
    a quiet skip of every native test."""
    if os.environ.get("MPUPDATE_REQUIRE_NATIVE_FAKE") == "1":
        from mpupdate.fakes.native.build import unavailable_reason

        why = unavailable_reason()
        if why is not None:
            pytest.exit(f"MPUPDATE_REQUIRE_NATIVE_FAKE=1, but {why}", returncode=3)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-real",
        action="store_true",
        help="also run the conformance suite against the real MpClient.dll (Windows with "
        "Microsoft Defender, elevated prompt): this performs real signature updates",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The conformance suite's ``real`` lane loads the real DLL: allowed by the plugin's guard.
    for item in items:
        if item.get_closest_marker("real"):
            item.add_marker(pytest.mark.mpupdate_real)


@pytest.fixture(autouse=True)
def _state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``mpupdate update`` records its result (for ``status``) in $MPUPDATE_STATE_DIR: a folder
    of each test's own, never the home folder or ProgramData of whoever runs the suite."""
    monkeypatch.setenv("MPUPDATE_STATE_DIR", str(tmp_path_factory.mktemp("state")))
