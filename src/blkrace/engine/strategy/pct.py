"""PCT: probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
Nagarakatte, "A Randomized Scheduler with Probabilistic Guarantees of Finding
Bugs", ASPLOS 2010).

Each task gets a distinct random initial priority at least ``depth``; the
highest-priority eligible option runs.  ``depth - 1`` change points are drawn
uniformly from the estimated run length ``k``; at the i-th one the task about
to run drops to priority ``i``.  A bug of depth d is then found with
probability at least 1/(n * k^(d-1)) per run.

Deviations, all documented: the clock is a pseudo-task with its own priority
(so "B was interrupted for a long time" is a low-priority B while time
passes); tasks created mid-run get their random priority when first seen;
``k`` is the longest run seen so far (100 before the first); data choices
are uniform.
"""

from __future__ import annotations

import random

_CLOCK = -1


class PCT:
    name = "pct"

    def __init__(self, seed=0, depth=3):
        if depth < 1:
            raise ValueError("PCT depth must be at least 1")
        self.seed = seed
        self.depth = depth
        self.k = 100  # estimated steps per run: the longest seen, 100 before any
        self._seen = 0
        self._rng = None
        self._prio = {}
        self._changes = []
        self._execution = None

    def start_run(self, execution, index):
        rng = random.Random(f"pct:{self.seed}:{index}")
        self._rng = rng
        self._execution = execution
        self._prio = {}
        n_changes = min(self.depth - 1, self.k)
        self._changes = sorted(rng.sample(range(1, self.k + 1), n_changes), reverse=True)
        self._next_change = self._changes.pop() if self._changes else None
        self._change_index = 0
        return True

    def _priority(self, key):
        prio = self._prio.get(key)
        if prio is None:
            # Distinct with probability 1; ties would break on option order.
            prio = self._prio[key] = self.depth + self._rng.random()
        return prio

    def pick(self, options, can_advance):
        best = self._best(options, can_advance)
        nxt = self._next_change
        if nxt is not None and self._execution.steps >= nxt:
            self._change_index += 1
            self._prio[_CLOCK if best == len(options) else options[best].tid] = self._change_index
            self._next_change = self._changes.pop() if self._changes else None
            best = self._best(options, can_advance)
        return best

    def _best(self, options, can_advance):
        prio = self._prio
        best, best_prio = 0, -1.0
        i = 0
        for task in options:
            p = prio.get(task.tid)
            if p is None:
                p = self._priority(task.tid)  # first sight: drawn in option order, as always
            if p > best_prio:
                best, best_prio = i, p
            i += 1
        if can_advance:
            p = prio.get(_CLOCK)
            if p is None:
                p = self._priority(_CLOCK)
            if p > best_prio:
                return len(options)
        return best

    def choose(self, n):
        return int(self._rng.random() * n)

    def end_run(self, result):
        if result.steps > self._seen:
            self._seen = self.k = max(result.steps, 1)
