"""Strategies: oracles that pick the next task, clock advance or data value.

A strategy sees only the options (runnable tasks with their declared
accesses, "advance the clock", ``choose(n)``), never model objects, and owns
its seeded random generator.  Protocol (Shuttle's Scheduler, in Python):

``start_run(execution, index) -> bool``
    Prepare run ``index``; False when there is nothing left to explore.
``pick(options, can_advance) -> int``
    An index into ``options``; ``len(options)`` to advance the clock; or
    ``PRUNE`` to abandon a run that can only repeat an explored one.
``choose(n) -> int``
    A data choice in ``range(n)``.
``end_run(result)``
    Learn from the finished run.
Optional ``forced(task) -> bool``: told of steps where there was no choice;
True abandons the run (the task is asleep in DFS terms).
"""

from blkrace.engine.strategy.dfs import DFS
from blkrace.engine.strategy.dpor import DPOR
from blkrace.engine.strategy.pct import PCT
from blkrace.engine.strategy.random_walk import RandomWalk
from blkrace.engine.strategy.replay import Replay
from blkrace.engine.strategy.stateful import StatefulDFS

STRATEGIES = ("random", "pct", "dfs", "sdfs", "dpor")


def make_strategy(name, seed=0, **options):
    """The strategy called ``name``; ValueError naming the valid ones otherwise."""
    if name == "random":
        return RandomWalk(seed)
    if name == "pct":
        return PCT(seed, depth=options.get("depth", 3))
    if name == "dfs":
        return DFS(preemption_bound=options.get("preemption_bound", 2))
    if name == "sdfs":
        return StatefulDFS(preemption_bound=options.get("preemption_bound", 2))
    if name == "dpor":
        return DPOR(preemption_bound=options.get("preemption_bound", 2))
    raise ValueError(f"unknown strategy {name!r} (valid: {', '.join(STRATEGIES)})")


__all__ = ["DFS", "DPOR", "PCT", "RandomWalk", "Replay", "STRATEGIES", "StatefulDFS", "make_strategy"]
