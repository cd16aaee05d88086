"""Campaigns in worker processes: the same findings whatever the number of workers,
exact replay of findings that build on campaign state, interrupts that lose nothing."""

import json
import os
import signal
import subprocess
import sys
import time
from math import comb

import pytest

from blkrace.engine import portfolio as pf
from blkrace.engine.campaign import replay
from blkrace.engine.parallel import CampaignError, run_campaign
from blkrace.scenarios import registry
from blkrace.scenarios.recipe import build_of, recipe_of
from blkrace.scenarios.registry import get
from scalekit import build_enginekit


def _recipe(scenario, variant, **kw):
    s = get(scenario)
    v = s.variants[variant]
    return s, recipe_of(s, v, preempt=s.preempt_of(v), **kw)


def _summary(res):
    return (
        res.runs,
        res.pruned,
        res.exhausted,
        [(f.violation.origin, f.schedule_index, f.choices, f.prefix, f.strategy, f.count) for f in res.findings],
    )


def test_one_worker_or_two_find_the_same_things():
    s, recipe = _recipe("budget-rerun", "buggy")
    kw = dict(stop_on_first=False, max_steps=s.max_steps)
    one = run_campaign(build_of, recipe, pf.portfolio(0), 600, jobs=1, **kw)
    two = run_campaign(build_of, recipe, pf.portfolio(0), 600, jobs=2, inline_s=0, **kw)
    assert one.backend == "inline" and two.backend == "processes"
    assert one.findings, "the buggy variant shows its stall within 600 portfolio schedules"
    assert _summary(one) == _summary(two)
    assert one.runs == 600


def test_stop_rules_apply_in_plan_order_whatever_comes_back_first():
    s, recipe = _recipe("budget-rerun", "buggy")
    kw = dict(want={"stall"}, max_steps=s.max_steps, stop_on_first=False)
    one = run_campaign(build_of, recipe, pf.portfolio(2), 2000, jobs=1, **kw)
    two = run_campaign(build_of, recipe, pf.portfolio(2), 2000, jobs=2, inline_s=0, **kw)
    assert {f.violation.kind for f in one.findings} >= {"stall"}
    assert _summary(one) == _summary(two) and one.runs < 2000


def test_a_dfs_frontier_travels_between_worker_processes():
    m = pf.member("dfs", preemption_bound=None)
    recipe = {"model": "build_writers", "args": [5, 4]}
    res = run_campaign(build_enginekit, recipe, [m], 10_000, jobs=2, inline_s=0, stop_on_first=False)
    assert res.exhausted and res.schedules == comb(9, 4) and res.units > 1


def test_a_lockdep_finding_of_a_parallel_campaign_replays_exactly_from_its_units_prefix():
    # Lockdep's graph lives across the runs of a unit; a finding carries the
    # earlier runs of its own unit that fed the graph.
    s, recipe = _recipe("blkcg-percpu-alloc", "buggy")
    res = run_campaign(
        build_of, recipe, pf.portfolio(0), 2000, jobs=2, inline_s=0, want={"lockdep"}, max_steps=s.max_steps
    )
    (f,) = [f for f in res.findings if f.violation.kind == "lockdep"]
    build = build_of(recipe)
    shared = {}
    for earlier in f.prefix:
        replay(build, earlier, max_steps=s.max_steps, traced=False, shared=shared)
    result, _, _ = replay(build, f.choices, max_steps=s.max_steps, shared=shared)
    assert f.violation.origin in {v.origin for v in result.violations}
    # ... and without the prefix the graph lacks the earlier dependencies
    if f.prefix:
        alone, _, _ = replay(build, f.choices, max_steps=s.max_steps)
        assert f.violation.origin not in {v.origin for v in alone.violations}


def test_sigterm_stops_the_workers_and_reports_what_came_back():
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "blkrace", "check", "budget-rerun", "--variant", "fixed", "-n", "200000"]
        + ["--jobs", "2", "--json", "--keep-going"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    time.sleep(6)  # past the first second in-process: the workers are running
    children = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    data = json.loads(out)
    (result,) = data["results"]
    assert data["interrupted"] is True and result["interrupted"] is True and result["schedules"] > 0
    time.sleep(1)
    assert not [pid for pid in children if _alive(pid)], "worker processes outlived the campaign"


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            direct = [int(x) for x in f.read().split()]
    except OSError:
        return []
    out = list(direct)
    for c in direct:
        out += _children(c)
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_workers_load_a_scenario_file_from_its_path(tmp_path):
    path = tmp_path / "my_race.py"
    path.write_text(
        "import dataclasses\n"
        "from blkrace.scenarios import budget_rerun\n"
        "SCENARIO = dataclasses.replace(budget_rerun.SCENARIO, name='budget-rerun-copy')\n"
    )
    s = registry.resolve(str(path))
    v = s.variants["buggy"]
    recipe = recipe_of(s, v, preempt=s.preempt_of(v))
    assert recipe["scenario"] == str(path)
    kw = dict(stop_on_first=False, max_steps=s.max_steps)
    one = run_campaign(build_of, recipe, pf.portfolio(0), 600, jobs=1, **kw)
    two = run_campaign(build_of, recipe, pf.portfolio(0), 600, jobs=2, inline_s=0, **kw)
    assert two.backend == "processes" and one.findings
    assert _summary(one) == _summary(two)
    path.write_text(path.read_text() + "# edited\n")  # another model now: a worker refuses the unit
    with pytest.raises(CampaignError, match="another model"):
        run_campaign(build_of, recipe, pf.portfolio(0), 600, jobs=2, inline_s=0, **kw)
