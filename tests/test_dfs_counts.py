"""DFS counts schedules exactly: without bound, with sleep sets, with a preemption bound."""

from math import comb

import pytest

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from enginekit import build_writers


def count(a, b, same_object=True, bound=None):
    strategy = make_strategy("dfs", preemption_bound=bound)
    result = explore(build_writers(a, b, same_object), strategy, 100_000, stop_on_first=False)
    assert result.exhausted
    return result.schedules


def interleavings_with_at_most(a, b, bound):
    """By hand: runs of k blocks alternating between the two tasks have k-2
    preemptions (every switch but the last, which happens because a task
    finished).  Splitting a steps into i non-empty blocks: C(a-1, i-1) ways."""
    total = 0
    for k in range(2, a + b + 1):
        if k - 2 > bound:
            break
        for first_is_a in (True, False):
            na = (k + 1) // 2 if first_is_a else k // 2
            nb = k - na
            if 1 <= na <= a and 1 <= nb <= b:
                total += comb(a - 1, na - 1) * comb(b - 1, nb - 1)
    return total


@pytest.mark.parametrize("a,b", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4)])
def test_unbounded_dfs_enumerates_every_interleaving(a, b):
    assert count(a, b) == comb(a + b, a)


@pytest.mark.parametrize("a,b", [(2, 2), (3, 2), (4, 3), (6, 5)])
def test_sleep_sets_collapse_independent_steps_to_one_schedule(a, b):
    assert count(a, b, same_object=False) == 1


@pytest.mark.parametrize("a,b", [(2, 2), (3, 2), (4, 3), (5, 4)])
@pytest.mark.parametrize("bound", [0, 1, 2, 3])
def test_preemption_bound_cuts_to_the_hand_computed_count(a, b, bound):
    assert count(a, b, bound=bound) == interleavings_with_at_most(a, b, bound)


def test_hand_count_agrees_with_the_unbounded_total():
    # The hand formula itself, cross-checked: with a bound that never bites
    # it must give every interleaving.
    for a, b in [(2, 2), (4, 3), (5, 5)]:
        assert interleavings_with_at_most(a, b, a + b) == comb(a + b, a)
