"""A DPOR search split into subtrees (engine/split.py) explores what the search run alone does."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from blkrace.engine import split
from blkrace.engine.parallel import run_campaign
from blkrace.engine.portfolio import member
from blkrace.engine.split import run_split
from test_dpor import SETTINGS, TIMED_PROGRAM, PlainDFS, final_states, make_build

_OUTCOMES = set()


def build_program(recipe):
    """Module level, as a work order needs: the recipe is the program itself."""
    return make_build(recipe["program"], _OUTCOMES)


@pytest.fixture
def small_units(monkeypatch):
    """Split after 2 runs, 3 runs a unit: even a small program is split many times."""
    monkeypatch.setattr(split, "SEED_RUNS", 2)
    monkeypatch.setattr(split, "UNIT_RUNS", 3)


def _split_states(program, bound):
    _OUTCOMES.clear()
    result = run_split(
        build_program, {"program": program}, member("dpor", 0, preemption_bound=bound), 100_000, stop_on_first=False
    )
    return set(_OUTCOMES), result


@SETTINGS
@given(TIMED_PROGRAM, st.integers(0, 2))
def test_split_dpor_reaches_every_final_state_of_bounded_plain_dfs(program, bound):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(split, "SEED_RUNS", 2)
        mp.setattr(split, "UNIT_RUNS", 3)
        plain, plain_result = final_states(program, PlainDFS(preemption_bound=bound), limit=4000)
        assume(plain_result.exhausted)
        reduced, result = _split_states(program, bound)
    assert result.exhausted
    assert reduced == plain
    assert {f.violation.origin for f in result.findings} == {f.violation.origin for f in plain_result.findings}


def test_split_explores_the_same_runs_as_the_chain(small_units):
    """The same program: the chain and the split search count the same schedules
    here (the split changes only the order backtrack points are explored in)."""
    program = [(0, [("write", 0), ("read", 1)]), (1, [("inc", 1), ("read", 0)]), (0, [("lock", 0)])]
    _OUTCOMES.clear()
    chain = run_campaign(
        build_program, {"program": program}, [member("dpor", 0, preemption_bound=2)], 100_000, stop_on_first=False
    )
    chained = set(_OUTCOMES)
    states, result = _split_states(program, 2)
    assert chain.exhausted and result.exhausted
    assert states == chained
    assert result.units > 3  # it was split


def test_a_budget_too_small_is_not_exhausted(small_units):
    program = [(0, [("write", 0), ("read", 1)]), (1, [("inc", 1), ("read", 0)]), (0, [("lock", 0)])]
    _OUTCOMES.clear()
    result = run_split(
        build_program, {"program": program}, member("dpor", 0, preemption_bound=2), 5, stop_on_first=False
    )
    assert not result.exhausted and result.runs <= 5


def test_only_bounded_dpor_is_split():
    from blkrace.engine.parallel import CampaignError

    for m in (member("dpor", 0, preemption_bound=None), member("dfs", 0, preemption_bound=2)):
        with pytest.raises(CampaignError):
            run_split(build_program, {"program": []}, m, 10)


def test_the_same_findings_and_schedule_numbers_with_one_worker_or_two():
    """Worker processes: units come back in any order, are merged in number order."""
    from blkrace.scenarios.recipe import build_of, recipe_of
    from blkrace.scenarios.registry import get

    s = get("quiesce-order")
    v = s.variants["buggy"]
    recipe = recipe_of(s, v, preempt=s.preempt_of(v))
    runs = []
    for jobs in (1, 2):
        r = run_split(build_of, recipe, member("dpor", 0, preemption_bound=1), 100_000, jobs=jobs, stop_on_first=False)
        runs.append((r.schedules, r.exhausted, [(f.violation.origin, f.schedule_index, f.choices) for f in r.findings]))
    assert runs[0] == runs[1]
    assert runs[0][1] and runs[0][2]  # exhausted, and the bug found
