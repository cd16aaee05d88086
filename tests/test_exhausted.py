"""An exhausted claim is made only on a space nothing cut: not at the step bound, not after a starvation rescue."""

import pytest

from blkrace.engine import READ, WRITE, access
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from enginekit import Cell, build_writers


def build_spin_forever(execution):
    async def spin():
        while True:
            await access(None)

    execution.spawn(spin(), "spinner", lane=0)


def build_spin_until_set(execution):
    """A spinner that waits for a flag another task sets: under DFS's first
    choices the spinner runs until the engine's starvation rescue."""
    flag = Cell("flag")

    async def spinner():
        while True:
            await access(flag, READ)
            if flag.value:
                return

    async def setter():
        await access(flag, WRITE)
        flag.value = 1

    execution.spawn(spinner(), "spinner", lane=0)
    execution.spawn(setter(), "setter", lane=1)


@pytest.mark.parametrize("name", ["dfs", "dpor"])
def test_a_space_cut_at_the_step_bound_is_not_exhausted(name):
    result = explore(build_spin_forever, make_strategy(name), 10, stop_on_first=False, max_steps=100)
    assert result.kinds() == ["livelock"]
    assert result.cut == result.runs == 1
    assert not result.exhausted


@pytest.mark.parametrize("name", ["dfs", "dpor"])
def test_a_space_cut_by_a_starvation_rescue_is_not_exhausted(name):
    strategy = make_strategy(name, preemption_bound=0)
    result = explore(build_spin_until_set, strategy, 100, stop_on_first=False, max_steps=20_000)
    assert strategy.exhausted  # the strategy ran out of runs...
    assert result.cut >= 1
    assert not result.exhausted  # ...but the engine decided part of them


@pytest.mark.parametrize("name,bound", [("dfs", 2), ("dpor", 2), ("dpor", None)])
def test_an_uncut_space_is_exhausted_with_its_bound(name, bound):
    result = explore(build_writers(2, 2), make_strategy(name, preemption_bound=bound), 100, stop_on_first=False)
    assert result.exhausted and result.cut == 0
    assert result.bound == bound


def test_a_sampling_strategy_never_claims_exhaustion():
    result = explore(build_writers(1, 1), make_strategy("pct", 0), 50, stop_on_first=False)
    assert not result.exhausted and result.bound is None


def test_the_verdict_says_sampled_and_the_json_carries_exhausted_and_bound():
    import json
    import os
    import subprocess
    import sys

    args = ["check", "budget-rerun", "--variant", "fixed", "--strategy", "dpor", "--schedules", "20"]
    env = dict(os.environ, PYTHONHASHSEED="0")
    text = subprocess.run([sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env)
    assert text.returncode == 0, text.stderr
    assert "20 schedules sampled, not exhausted" in text.stdout
    out = subprocess.run([sys.executable, "-m", "blkrace", *args, "--json"], capture_output=True, text=True, env=env)
    data = json.loads(out.stdout)["results"][0]
    assert data["strategy"] == "dpor" and data["exhausted"] is False and data["bound"] == 2
