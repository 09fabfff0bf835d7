"""Shared test set-up. The mpupdate.fakes pytest plugin (loaded from pyproject's addopts) checks
after every test that each FakeMpClient is clean and that no update is left registered."""

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
