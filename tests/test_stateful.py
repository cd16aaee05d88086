"""State fingerprints (engine/state.py) and the stateful DFS built on them (engine/strategy/stateful.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blkrace.engine import WRITE, access
from blkrace.engine.campaign import explore
from blkrace.engine.execution import PRUNE, Execution
from blkrace.engine.state import NotFingerprintable, fingerprint, state_sequence
from blkrace.engine.strategy import StatefulDFS, make_strategy
from blkrace.scenarios.registry import SCENARIOS
from enginekit import Cell, build_abba, build_lost_update, build_lost_wakeup, build_philosophers
from test_dpor import PROGRAM, SETTINGS, TIMED_PROGRAM, PlainDFS, final_states

# ------------------------------------------------------------ fingerprints


class _Follow:
    """Picks the tasks named in ``plan`` (by tid), then stops the run and keeps its state."""

    name = "follow"

    def __init__(self, plan):
        self.plan = list(plan)
        self.state = None

    def start_run(self, execution, index):
        self.execution = execution
        return True

    def pick(self, options, can_advance):
        if not self.plan:
            self.state = state_sequence(self.execution), fingerprint(self.execution)
            return PRUNE
        tid = self.plan.pop(0)
        return next(i for i, t in enumerate(options) if t.tid == tid)

    def choose(self, n):
        return 0

    def end_run(self, result):
        pass


def _state_after(build, plan):
    strategy = _Follow(plan)
    ex = Execution(strategy)
    strategy.start_run(ex, 0)
    build(ex)
    ex.run()
    assert strategy.state is not None, "the run ended before the plan did"
    return strategy.state


def _two_writers_and_a_reader(execution):
    x, y, z = Cell("x"), Cell("y"), Cell("z")

    async def write(cell, v):
        await access(cell, WRITE)
        cell.value = v
        await access(z, WRITE)  # a third step, so that the run goes on after the plan
        z.value += 0

    async def read_both():
        await access(x)
        seen = x.value
        await access(y)
        seen += y.value
        await access(z, WRITE)
        z.value = seen

    execution.spawn(write(x, 1), "wx", lane=0)
    execution.spawn(write(y, 2), "wy", lane=1)
    execution.spawn(read_both(), "r", lane=2)


def test_independent_steps_in_either_order_reach_one_state():
    a, fa = _state_after(_two_writers_and_a_reader, [0, 1])
    b, fb = _state_after(_two_writers_and_a_reader, [1, 0])
    assert a == b and fa == fb


def test_dependent_steps_in_either_order_reach_different_states():
    # The reader adds x to what it has read (0) before or after wx writes 1.
    _, before = _state_after(_two_writers_and_a_reader, [2, 0, 2])
    _, after = _state_after(_two_writers_and_a_reader, [0, 2, 2])
    assert before != after


def _looping(execution):
    cell = Cell("c")

    async def loop():
        for _ in [0, 0, 0]:
            await access(cell, WRITE)
            cell.value = 0  # the same heap and locals in every iteration

    execution.spawn(loop(), "loop", lane=0)
    execution.spawn(loop(), "other", lane=1)


def test_a_for_loops_position_on_the_stack_is_part_of_the_state():
    # Only the list iterator on the frame's stack tells these two apart:
    # the heap and every local but the loop variable are the same.
    _, once = _state_after(_looping, [0])
    _, twice = _state_after(_looping, [0, 0])
    assert once != twice


def test_where_a_coroutine_is_suspended_is_part_of_the_state():
    def build(execution):
        cell = Cell("c")

        async def two_points():
            await access(cell, WRITE)
            await access(cell, WRITE)
            await access(cell, WRITE)

        execution.spawn(two_points(), "t", lane=0)
        execution.spawn(two_points(), "u", lane=1)

    _, a = _state_after(build, [0])
    _, b = _state_after(build, [0, 0])
    assert a != b


def test_the_fingerprint_is_the_same_in_every_process():
    code = (
        "from test_stateful import _state_after, _two_writers_and_a_reader\n"
        "print(_state_after(_two_writers_and_a_reader, [0, 1])[1].hex())\n"
    )
    here = os.path.dirname(__file__)
    outs = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outs.add(run.stdout)
    outs.add(_state_after(_two_writers_and_a_reader, [0, 1])[1].hex() + "\n")
    assert len(outs) == 1


def test_a_value_the_walk_cannot_write_down_is_an_error_not_a_guess():
    def build(execution):
        cell = Cell("c")
        cell.handle = open(os.devnull)  # noqa: SIM115 - a value with no meaning to write down
        execution.checkers.append(lambda ex: (cell.handle.close(), ())[1])

        async def t():
            await access(cell, WRITE)
            await access(cell, WRITE)

        execution.spawn(t(), "t", lane=0)
        execution.spawn(t(), "u", lane=1)

    with pytest.raises(NotFingerprintable):
        _state_after(build, [0])


def test_a_model_the_walk_cannot_write_down_is_searched_statelessly():
    def build(execution):
        cell = Cell("c")
        cell.unknown = io.StringIO()  # a C object: its state is not in fields

        async def t():
            await access(cell, WRITE)
            await access(cell, WRITE)

        execution.spawn(t(), "t", lane=0)
        execution.spawn(t(), "u", lane=1)

    strategy = StatefulDFS(preemption_bound=None)
    result = explore(build, strategy, 1000, stop_on_first=False)
    plain = explore(build, PlainDFS(preemption_bound=None), 1000, stop_on_first=False)
    assert result.exhausted and strategy.stateless_reason and "StringIO" in strategy.stateless_reason
    assert result.schedules == plain.schedules


# ------------------------------------------------------------ stateful DFS


def _compare(program, bound):
    plain, plain_result = final_states(program, PlainDFS(preemption_bound=bound), limit=4000)
    if not plain_result.exhausted:
        return  # too big to enumerate: not a useful example
    strategy = StatefulDFS(preemption_bound=bound)
    stateful, result = final_states(program, strategy)
    assert result.exhausted
    assert stateful == plain
    assert {f.violation.origin for f in result.findings} == {f.violation.origin for f in plain_result.findings}
    assert result.schedules <= plain_result.schedules


@SETTINGS
@given(PROGRAM)
def test_stateful_dfs_reaches_every_final_state_of_plain_dfs(program):
    _compare(program, None)


@SETTINGS
@given(TIMED_PROGRAM, st.integers(0, 2))
def test_bounded_stateful_dfs_reaches_every_final_state_of_bounded_plain_dfs(program, bound):
    _compare(program, bound)


@pytest.mark.parametrize("build", [build_abba, build_lost_update, build_lost_wakeup])
@pytest.mark.parametrize("bound", [None, 0, 2])
def test_stateful_dfs_finds_the_textbook_bugs_plain_dfs_finds(build, bound):
    plain = explore(build, PlainDFS(preemption_bound=bound), 10_000, stop_on_first=False)
    stateful = explore(build, StatefulDFS(preemption_bound=bound), 10_000, stop_on_first=False)
    assert plain.exhausted and stateful.exhausted
    assert stateful.kinds() == plain.kinds()


def test_a_state_reached_twice_is_explored_once():
    # Fixed dining philosophers: many orders of putting forks down meet in
    # the same state; the stateful search explores each future once.
    build = build_philosophers(4, True)
    plain = explore(build, make_strategy("dfs", preemption_bound=2), 100_000, stop_on_first=False)
    strategy = make_strategy("sdfs", preemption_bound=2)
    stateful = explore(build, strategy, 100_000, stop_on_first=False)
    assert plain.exhausted and stateful.exhausted
    assert not plain.findings and not stateful.findings
    assert strategy.revisits > 0
    assert stateful.schedules < plain.schedules


def test_another_last_task_needs_one_more_preemption_to_be_a_revisit():
    strategy = StatefulDFS(preemption_bound=2)
    strategy.visited[b"s"] = {0: 1}
    assert strategy._seen_entry(b"s", last=1, used=1) is False  # one more than 1 is 2: explore
    assert strategy._seen_entry(b"s", last=1, used=2) is True
    assert strategy._seen_entry(b"s", last=0, used=1) is True
    assert strategy._seen_entry(b"s", last=0, used=0) is False  # more budget left than before
    assert strategy.visited[b"s"] == {0: 0, 1: 1}


def test_the_seed_scenarios_fingerprint():
    # Every scenario's state can be written down (no NotFingerprintable).
    for scenario in SCENARIOS.values():
        for variant in scenario.variants.values():
            build = scenario.builder(variant)
            strategy = StatefulDFS(preemption_bound=0)
            explore(build, strategy, 3, stop_on_first=False, max_steps=scenario.max_steps)
            assert strategy.stateless_reason is None, (scenario.name, variant.name, strategy.stateless_reason)
            assert strategy.states > 0


def test_quiesce_order_is_proved_and_its_race_found_by_the_stateful_search():
    s = SCENARIOS["quiesce-order"]
    for name, variant in s.variants.items():
        r = explore(s.builder(variant), StatefulDFS(preemption_bound=1), 100_000, max_steps=s.max_steps)
        if variant.expect:
            assert r.findings, name
        else:
            assert r.exhausted and not r.findings, name
