"""Uniform random walk: every option (the clock included) equally likely."""

from __future__ import annotations

import random


class RandomWalk:
    name = "random"

    def __init__(self, seed=0):
        self.seed = seed
        self._random = None

    def start_run(self, execution, index):
        # One generator per run, seeded from a string (SHA-512 based, never
        # hash()), so run ``index`` is the same whatever ran before it.
        self._random = random.Random(f"random:{self.seed}:{index}").random
        return True

    def pick(self, options, can_advance):
        return int(self._random() * (len(options) + can_advance))

    def choose(self, n):
        return int(self._random() * n)

    def end_run(self, result):
        pass
