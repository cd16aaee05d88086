"""Textbook concurrency bugs, found by every strategy from the engine alone."""

import pytest

from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from enginekit import build_abba, build_bug_on, build_lost_update, build_lost_wakeup, build_writers

STRATEGIES = ["random", "pct", "dfs", "dpor"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_abba_deadlock_is_found_with_its_cycle(strategy):
    result = explore(build_abba, make_strategy(strategy, 1), 500)
    kinds = result.kinds()
    assert kinds == ["deadlock"]
    v = result.findings[0].violation
    assert "t1" in v.message and "t2" in v.message
    assert any("waits on A, held by t1" in line for line in v.detail)
    assert any("waits on B, held by t2" in line for line in v.detail)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lost_wakeup_is_a_stall(strategy):
    result = explore(build_lost_wakeup, make_strategy(strategy, 1), 500)
    assert result.kinds() == ["stall"]
    assert "waiter" in result.findings[0].violation.message


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_lost_update_breaks_the_invariant(strategy):
    result = explore(build_lost_update, make_strategy(strategy, 1), 500)
    assert result.kinds() == ["bug"]
    assert "counter is 1" in result.findings[0].violation.message


def test_bug_on_stops_the_run():
    result = explore(build_bug_on, make_strategy("random", 0), 5)
    assert result.kinds() == ["bug"]
    assert result.runs == 1


def test_correct_program_is_clean_under_exhaustive_search():
    # Writers to one object with no invariant: nothing to find, space exhausted.
    strategy = make_strategy("dfs", preemption_bound=None)
    result = explore(build_writers(2, 2), strategy, 1000, stop_on_first=False)
    assert result.findings == []
    assert result.exhausted


def test_deadlock_replays_with_the_same_trace():
    result = explore(build_abba, make_strategy("random", 3), 100)
    choices = result.findings[0].choices
    first, _, _ = replay(build_abba, choices)
    second, _, _ = replay(build_abba, choices)
    assert [s.as_dict() for s in first.trace] == [s.as_dict() for s in second.trace]
    assert [v.message for v in first.violations] == [result.findings[0].violation.message]
