"""Steps per run of each scenario variant: what finer declared accesses cost.

Every ``await access()`` is a step, so declaring a shared access at the
kernel's granularity makes runs longer, and the space DFS and DPOR search
larger.  The number of steps does not depend on the machine's load: it is
the figure to compare between two commits.  For each variant, ``--runs``
(200) random schedules (seed 0) are run; printed: the mean and the median
steps per run, and the wall time (which does depend on the load).

Run:  python bench/bench_steps.py [--runs 200] [--scenario NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time

from blkrace.engine.campaign import run_once
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import SCENARIOS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--scenario", default=None)
    args = ap.parse_args()
    print(f"{args.runs} random schedules (seed 0) per variant")
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            build = s.builder(v)
            strategy = make_strategy("random", 0)
            steps = []
            start = time.perf_counter()
            for index in range(args.runs):
                result, _ = run_once(build, strategy, index, max_steps=s.max_steps)
                steps.append(result.steps)
            elapsed = time.perf_counter() - start
            print(
                f"{s.name:18} {v.name:28} steps/run mean {statistics.mean(steps):8.1f} "
                f"median {statistics.median(steps):7.1f}   {elapsed:6.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
