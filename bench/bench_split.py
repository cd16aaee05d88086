"""One DPOR search run alone (a chain of units) against the same search split
across worker processes (engine/split.py): wall time to exhaust a bounded
space, the start of the workers included (median of --repeat runs).

Run:  python bench/bench_split.py [--scenario quiesce-order] [--variant buggy-sc] [--bound 3]
          [--jobs 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from blkrace.engine.parallel import run_campaign
from blkrace.engine.portfolio import member
from blkrace.engine.split import run_split
from blkrace.scenarios.recipe import build_of, recipe_of
from blkrace.scenarios.registry import get


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", default="quiesce-order")
    ap.add_argument("--variant", default="buggy-sc")
    ap.add_argument("--bound", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    s = get(args.scenario)
    v = s.variants[args.variant]
    recipe = recipe_of(s, v, preempt=s.preempt_of(v))
    m = member("dpor", 0, preemption_bound=args.bound)
    print(f"{s.name} --variant {v.name}, DPOR at preemption bound {args.bound}, median of {args.repeat}")
    times = {}
    for label, jobs in (("chain", 1), ("split", 1), ("split", args.jobs)):
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            if label == "chain":
                r = run_campaign(build_of, recipe, [m], 10**9, stop_on_first=False, max_steps=s.max_steps)
            else:
                r = run_split(build_of, recipe, m, 10**9, jobs=jobs, stop_on_first=False, max_steps=s.max_steps)
            runs.append(time.perf_counter() - t)
        times[(label, jobs)] = statistics.median(runs)
        state = "exhausted" if r.exhausted else "NOT exhausted"
        print(f"  {label} x{jobs}: {r.schedules} schedules, {state}, {r.units} units, {times[(label, jobs)]:.2f} s")
    speedup = times[("chain", 1)] / times[("split", args.jobs)]
    print(f"  split over {args.jobs} workers against the chain: {speedup:.2f}x")


if __name__ == "__main__":
    main()
