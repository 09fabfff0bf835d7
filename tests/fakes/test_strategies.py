"""The adopters' strategies draw what they promise: each scenario, replayed, ends as named."""

from __future__ import annotations

from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mpupdate
from mpupdate.fakes import FakeMpClient, Scenario
from mpupdate.fakes.strategies import (
    cancelled_updates,
    failing_updates,
    grammatical_scenarios,
    reboot_updates,
    successful_updates,
)
from mpupdate.machine import Outcome

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def replay(scenario: Scenario) -> mpupdate.UpdateResult:
    fake = FakeMpClient(scenario)
    result = mpupdate.update(backend=fake, check=False, strict=True)
    fake.assert_clean()
    return result


@pytest.mark.parametrize(
    ("strategy", "outcome"),
    [
        (successful_updates, Outcome.UPDATED),
        (failing_updates, Outcome.FAILED),
        (cancelled_updates, Outcome.CANCELLED),
        (lambda: grammatical_scenarios(outcome=Outcome.ALREADY_CURRENT), Outcome.ALREADY_CURRENT),
    ],
    ids=["successful", "failing", "cancelled", "already-current"],
)
def test_each_outcome_strategy_draws_updates_ending_so(
    strategy: Callable[[], st.SearchStrategy[Scenario]], outcome: Outcome
) -> None:
    @FAST
    @given(strategy())
    def check(scenario: Scenario) -> None:
        assert replay(scenario).outcome is outcome  # strict: the grammar accepts it too

    check()


@FAST
@given(reboot_updates())
def test_reboot_updates_succeed_and_need_a_reboot(scenario: Scenario) -> None:
    result = replay(scenario)
    assert result.outcome is Outcome.UPDATED and result.reboot_required


@FAST
@given(grammatical_scenarios(reboot=False))
def test_reboot_false_draws_none_that_need_one(scenario: Scenario) -> None:
    assert not replay(scenario).reboot_required


@settings(max_examples=1, deadline=None)
@given(st.data())
def test_impossible_combinations_are_refused_with_the_reason(data: st.DataObject) -> None:
    with pytest.raises(ValueError, match="outcome must be one of"):
        data.draw(grammatical_scenarios(outcome=Outcome.TIMED_OUT))
    with pytest.raises(ValueError, match="reboot=True draws updates that succeed"):
        data.draw(grammatical_scenarios(outcome=Outcome.FAILED, reboot=True))


@settings(max_examples=20, deadline=None)
@given(failing_updates())
def test_the_docs_example_for_a_failing_update(scenario: Scenario) -> None:
    with mpupdate.backends.use_backend(FakeMpClient(scenario)):
        result = mpupdate.update(timeout=600, check=False)
    assert not result.ok and result.outcome is Outcome.FAILED
