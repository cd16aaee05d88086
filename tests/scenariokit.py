"""What the scenario tests share: a PCT campaign of one variant, and the first finding over seeds."""

from __future__ import annotations

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy


def pct_campaign(scenario, variant, seed, schedules):
    """``schedules`` PCT runs of ``variant`` (its own memory and preemption models): (build, result)."""
    build = scenario.builder(scenario.variants[variant])
    return build, explore(build, make_strategy("pct", seed), schedules, max_steps=scenario.max_steps)


def first_finding(scenario, variant, seeds, schedules):
    """The first seed's campaign that finds something: (build, result); fails the test if none does."""
    for seed in seeds:
        build, result = pct_campaign(scenario, variant, seed, schedules)
        if result.findings:
            return build, result
    raise AssertionError(f"{variant}: nothing found with seeds {list(seeds)}")
