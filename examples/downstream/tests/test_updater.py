"""Tests of updater.py with mpupdate's pytest plugin (active because mpupdate is installed)."""

from __future__ import annotations

import pytest
from updater import refresh_signatures, signature_version


def test_an_update(mpupdate_fake):
    # The fixture's scenario is the ini's mpupdate_scenario ("updated") unless the test says.
    assert refresh_signatures() == "ok"
    assert mpupdate_fake.call_count("MpUpdateStart") == 1


@pytest.mark.mpupdate_scenario("reboot-required")
def test_a_reboot(mpupdate_fake):
    assert refresh_signatures() == "reboot"


@pytest.mark.parametrize(
    ("mpupdate_fake", "expected"),
    [("updated", "ok"), ("already-current", "ok"), ("network-failure", "failed")],
    indirect=["mpupdate_fake"],
)
def test_each_outcome(mpupdate_fake, expected):
    assert refresh_signatures() == expected


@pytest.mark.mpupdate_scenario("hung")  # never ends: the timeout ends it, in virtual time
def test_a_timeout(mpupdate_fake):
    assert refresh_signatures(timeout=30) == "timed_out"


@pytest.mark.mpupdate_scenario("scenarios/slow-mirror.json")  # a file beside this one
@pytest.mark.mpupdate_delivery("thread")
def test_my_own_scenario(mpupdate_fake):
    assert refresh_signatures() == "ok"
    assert mpupdate_fake.scenario.name == "slow-mirror"


def test_the_version(mpupdate_fake):
    assert signature_version() == mpupdate_fake.scenario.versions_before.av_signature
