"""Shrinking a failing schedule: same violation, shorter and simpler trace.

A schedule is its choice list.  Candidates are replayed leniently: where a
choice no longer fits, or the list has run out, the run keeps the previous
task going if it can (no preemption), else takes the lowest task, and never
advances the clock unless it must.  A candidate is kept when its run finds a
violation of the same origin and is smaller in shortlex order: fewer steps,
then fewer choices, then smaller choice values (Hypothesis's sort_key).

Two budgets bound the work: ``budget`` candidate runs, and ``step_budget``
steps replayed over all of them (a soft lockup's run is tens of thousands of
steps long: time has to pass).  Both count work, not seconds, so a shrink
gives the same answer on any machine.
"""

from __future__ import annotations

from blkrace.engine.campaign import run_once
from blkrace.engine.execution import ScheduleMismatch
from blkrace.engine.strategy.replay import Replay


def _key(result):
    return (result.steps, len(result.choices), tuple(result.choices))


def _try(build, choices, origin, max_steps):
    try:
        result, _ = run_once(build, Replay(choices, lenient=True), 0, max_steps=max_steps)
    except ScheduleMismatch:
        return None
    if result is None or not any(v.origin == origin for v in result.violations):
        return None
    return result


def shrink(build, choices, origin, *, max_steps=50_000, budget=300, step_budget=600_000):
    """Return the smallest choice list found that still shows ``origin``."""
    best = _try(build, list(choices), origin, max_steps)
    if best is None:
        return list(choices)
    tries = 0
    spent = best.steps

    def attempt(candidate):
        nonlocal best, tries, spent
        if tries >= budget:
            return False
        if spent >= step_budget:
            tries = budget  # out of steps: every loop below stops
            return False
        tries += 1
        result = _try(build, candidate, origin, max_steps)
        spent += result.steps if result is not None else best.steps
        if result is not None and _key(result) < _key(best):
            best = result
            return True
        return False

    improved = True
    while improved and tries < budget:
        improved = False
        # 1. Cut the tail: the default policy may reach the bug on its own.
        lo, hi = 0, len(best.choices)
        while lo < hi and tries < budget:
            mid = (lo + hi) // 2
            if attempt(list(best.choices[:mid])):
                improved = True
                hi = min(hi, len(best.choices))
            else:
                lo = mid + 1
        # 2. Delete chunks of choices, big ones first.
        for size in (8, 4, 2, 1):
            i = 0
            while i < len(best.choices) and tries < budget:
                cand = list(best.choices[:i]) + list(best.choices[i + size :])
                if attempt(cand):
                    improved = True
                else:
                    i += 1
        # 3. Lower single choices (a smaller task id, a 0 data choice).
        i = 0
        while i < len(best.choices) and tries < budget:
            c = best.choices[i]
            if c > 0:
                cand = list(best.choices)
                cand[i] = c - 1 if c > 1 else 0
                if attempt(cand):
                    improved = True
                    continue
            i += 1
    return list(best.choices)
