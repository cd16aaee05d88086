"""Schedules per second end to end: the engine's step together with the model.

For a few clean variants (nothing to find, so every run goes to its end) and
each member strategy of the default portfolio (PCT, a random walk, DPOR),
explores a fixed number of schedules in this process and prints schedules
and steps per second of this process's CPU time (time.process_time(): on a
shared machine, the time other processes take is not counted), median over
the repetitions.

Run:  python bench/bench_throughput.py [--schedules 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import get

VARIANTS = (
    ("nvme-mpath-freeze", "fixed"),
    ("budget-rerun", "fixed"),
    ("hctx-drain", "fixed-recheck"),
    ("ipi-flush", "fixed"),
)
STRATEGIES = ("pct", "random", "dpor")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", type=int, default=200, help="schedules per measurement")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per variant and strategy")
    args = ap.parse_args()
    print(f"{args.schedules} schedules per measurement; medians of {args.repeat}")
    for scenario, variant in VARIANTS:
        sc = get(scenario)
        build = sc.builder(sc.variants[variant])
        for name in STRATEGIES:
            rates, step_rates = [], []
            for _ in range(args.repeat):
                strategy = make_strategy(name, 0)
                t = time.process_time()
                r = explore(build, strategy, args.schedules, stop_on_first=False, max_steps=sc.max_steps)
                dt = time.process_time() - t
                rates.append(r.runs / dt)
                step_rates.append(r.steps / dt)
            print(
                f"  {scenario:18} {variant:14} {name:6} {statistics.median(rates):8.0f} schedules/s"
                f" {statistics.median(step_rates):10,.0f} steps/s"
            )


if __name__ == "__main__":
    main()
