"""Properties over generated notification sequences (Hypothesis).

The lenient test also checks that decoding copies every field of every notification."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

import mpupdate
from mpupdate.constants import Notify
from mpupdate.fakes import FakeMpClient, Scenario
from mpupdate.fakes.strategies import any_scenarios, grammatical_scenarios
from mpupdate.machine import Outcome
from mpupdate.results import outcome_of

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(scenario: Scenario, strict: bool) -> tuple[mpupdate.UpdateResult, list[int]]:
    percents: list[int] = []
    fake = FakeMpClient(scenario, delivery="immediate")
    result = mpupdate.update(
        backend=fake, check=False, strict=strict, progress=lambda p: percents.append(p.percent)
    )
    fake.assert_clean()
    return result, percents


@FAST
@given(grammatical_scenarios())
def test_valid_sequences_pass_strict_mode_with_monotone_progress(scenario: Scenario) -> None:
    result, percents = run(scenario, strict=True)
    assert result.anomalies == ()
    assert percents == sorted(percents)
    assert all(0 <= p <= 100 for p in percents)
    assert (percents[-1] == 100) is result.ok
    assert all(p <= 99 for p in percents[:-1])
    assert result.outcome is outcome_of(scenario.complete.hresult)  # type: ignore[union-attr]
    assert len(result.events) == len(scenario.notifications) + 2


@FAST
@given(any_scenarios())
def test_lenient_mode_survives_anything_and_keeps_every_event(scenario: Scenario) -> None:
    result, percents = run(scenario, strict=False)
    assert percents == sorted(percents)
    assert all(0 <= p <= 100 for p in percents)
    notifies = [int(e.notify) for e in result.events]
    assert notifies == [0x8001, *(n.notify for n in scenario.notifications), 0x800D]
    assert [e.hresult for e in result.events[1:-1]] == [n.hresult for n in scenario.notifications]
    complete = result.events[-1]
    assert complete.notify is Notify.SIGUPDATE_COMPLETE
    expected = outcome_of(scenario.complete.hresult)  # type: ignore[union-attr]
    assert result.outcome is expected
    assert result.ok is (expected in (Outcome.UPDATED, Outcome.ALREADY_CURRENT))
    for event, sent in zip(result.events[1:-1], scenario.notifications):  # every field copied
        assert event.callback_type == sent.callback_type
        if sent.data is None or sent.callback_type != 6:
            assert not event.has_data
            continue
        assert (
            event.percent,
            event.total_updates,
            event.current_index,
            int(event.update_type),  # type: ignore[arg-type]
            int(event.stage),  # type: ignore[arg-type]
            event.path,
        ) == (
            sent.data.percent,
            sent.data.total_updates,
            sent.data.current_index,
            sent.data.update_type,
            sent.data.stage,
            sent.data.path,
        )


@settings(max_examples=60, deadline=None)
@given(grammatical_scenarios())
def test_scenarios_round_trip_through_json(scenario: Scenario) -> None:
    assert Scenario.loads(scenario.dumps()) == scenario
