"""Seed 001 end to end: the stall comes from the modelled code and goes with the patch."""

import pytest

from blkrace.block.blk_mq_sched import BUDGET_RERUN
from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.base import Variant
from blkrace.scenarios.registry import get

SCENARIO = get("budget-rerun")


def find(variant, strategy="pct", seed=0, schedules=3000):
    build = SCENARIO.builder(variant)
    return build, explore(build, make_strategy(strategy, seed), schedules, max_steps=SCENARIO.max_steps)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_buggy_variant_stalls(blkrace_check, seed):
    # The plugin's check fails the test, with the report, unless the declared stall is found.
    run = blkrace_check(SCENARIO, "buggy", seed=seed, schedules=3000, shrink=False)
    assert run.found_kinds == ["stall"]
    messages = [f.violation.message for f, _, _ in run.reports]
    assert any("never completed" in m and "never dispatched" in m for m in messages)


@pytest.mark.parametrize("strategy", ["pct", "random"])
def test_fixed_variant_is_clean_over_2000_schedules(blkrace_check, strategy):
    run = blkrace_check("budget-rerun", "fixed", strategy=strategy, schedules=2000)
    assert run.campaign.schedules == 2000
    assert run.reports == []


def test_toggle_alone_brings_the_stall_back_and_takes_it_away():
    off = Variant("off", frozenset(), frozenset({"stall"}), "toggle off")
    on = Variant("on", frozenset({BUDGET_RERUN.name}), frozenset(), "toggle on")
    _, found = find(off, seed=5)
    assert "stall" in found.kinds()
    _, clean = find(on, seed=5, schedules=1000)
    assert clean.findings == []


def test_the_stall_goes_through_a_null_dispatch_with_the_budget_held():
    build, result = find(SCENARIO.variants["buggy"])
    finding = result.findings[0]
    res, _, _ = replay(build, finding.choices, max_steps=SCENARIO.max_steps)
    stacks = [[f.function for f in s.stack] for s in res.trace if s.kind == "step"]
    # Somebody put the budget back from blk_mq_do_dispatch_sched(): the NULL dispatch.
    assert any("blk_mq_do_dispatch_sched" in st and "scsi_mq_put_budget" in st for st in stacks)
    # And somebody else failed to get it meanwhile.
    assert any("scsi_mq_get_budget" in st and "scsi_dev_queue_ready" in st for st in stacks)


def test_the_buggy_schedule_replayed_on_the_fixed_kernel_completes():
    build, result = find(SCENARIO.variants["buggy"])
    choices = result.findings[0].choices
    fixed = SCENARIO.builder(SCENARIO.variants["fixed"])
    res, _, strategy = replay(fixed, choices, lenient=True, max_steps=SCENARIO.max_steps)
    assert strategy.diverged_at is not None  # the patch changes the schedule's course
    assert res.violations == []
