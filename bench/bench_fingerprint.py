"""What a state fingerprint (engine/state.py) costs on each scenario, against an engine step.

For every variant: one random-walk run per seed, a fingerprint taken at every
choice point; prints the median time of a fingerprint, the median number of
values and objects it writes, and the median time of an engine step on the
same runs without fingerprints (so the ratio says how many steps one
fingerprint costs).

Run:  python bench/bench_fingerprint.py [--seeds 3] [--scenario NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time

from blkrace.engine.execution import Execution
from blkrace.engine.state import fingerprint, state_sequence
from blkrace.engine.strategy.random_walk import RandomWalk
from blkrace.scenarios.registry import SCENARIOS


class _Timed(RandomWalk):
    """A random walk that fingerprints the state at every choice point."""

    def __init__(self, seed, measure):
        super().__init__(seed)
        self.measure = measure
        self.times, self.values, self.objects = [], [], []

    def pick(self, options, can_advance):
        if self.measure:
            t = time.perf_counter()
            fingerprint(self.execution)
            self.times.append(time.perf_counter() - t)
            seq = state_sequence(self.execution)
            self.values.append(len(seq))
            self.objects.append(sum(1 for x in seq if x == "o"))
        return super().pick(options, can_advance)


def _run(build, seed, measure, max_steps):
    strategy = _Timed(seed, measure)
    ex = Execution(strategy, max_steps=max_steps)
    strategy.execution = ex
    strategy.start_run(ex, 0)
    build(ex)
    t = time.perf_counter()
    result = ex.run()
    return strategy, result.steps, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--scenario", default=None)
    args = ap.parse_args()
    print(f"{'variant':42} {'fingerprint':>12} {'values':>7} {'objects':>7} {'step':>8} {'ratio':>6}")
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            build = s.builder(v)
            fps, values, objects, steps = [], [], [], []
            for seed in range(args.seeds):
                timed, _, _ = _run(build, seed, True, s.max_steps)
                fps += timed.times
                values += timed.values
                objects += timed.objects
                _, n, secs = _run(build, seed, False, s.max_steps)
                steps.append(secs / max(n, 1))
            fp, step = statistics.median(fps), statistics.median(steps)
            print(
                f"{s.name + ' ' + v.name:42} {fp * 1e3:9.3f} ms {statistics.median(values):7.0f} "
                f"{statistics.median(objects):7.0f} {step * 1e6:5.1f} us {fp / step:6.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
