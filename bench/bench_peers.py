"""The peer problems (bench/peers.py) per strategy: time to the first report
on the buggy form, and time to exhaust the fixed form.

Buggy forms: schedules and seconds to the first finding, median over
``--seeds`` (20) seeds for the sampling strategies (random, pct); dfs, sdfs
(stateful DFS) and dpor are deterministic and run once.  Fixed forms: the same at
``--bound`` (2; ``--bound none`` for no bound) until exhausted or
``--seconds`` (60) run out; the sampling strategies cannot exhaust.

Run:  python bench/bench_peers.py [--seeds 20] [--seconds 60] [--bound 2] [--peer NAME]
"""

from __future__ import annotations

import argparse
import statistics

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from peers import PEERS

SAMPLING = ("random", "pct")
EXHAUSTIVE = ("dfs", "sdfs", "dpor")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--bound", default="2")
    ap.add_argument("--peer", default=None)
    ap.add_argument("--budget", type=int, default=100_000, help="schedules per seed before giving up")
    args = ap.parse_args()
    bound = None if args.bound == "none" else int(args.bound)
    print(
        f"buggy: first report (median over {args.seeds} seeds for {', '.join(SAMPLING)}); fixed: exhaust; "
        f"dfs/dpor preemption bound {bound}; {args.seconds:.0f} s limit"
    )
    for name, make in PEERS.items():
        if args.peer and name != args.peer:
            continue
        buggy, fixed = make(False), make(True)
        for strat in SAMPLING + EXHAUSTIVE:
            seeds = range(args.seeds) if strat in SAMPLING else range(1)
            counts, secs, misses = [], [], 0
            for seed in seeds:
                strategy = make_strategy(strat, seed, preemption_bound=bound)
                r = explore(buggy, strategy, args.budget, time_limit_s=args.seconds)
                if r.findings:
                    counts.append(r.findings[0].schedule_index + 1)
                    secs.append(r.findings[0].elapsed_s)
                else:
                    misses += 1
            if counts:
                found = (
                    f"found: median {statistics.median(counts):8.0f} schedules {statistics.median(secs):8.4f} s"
                    f" ({len(counts)} of {len(seeds)} seeds)"
                )
            else:
                found = f"NOT found in {len(seeds)} seed(s)"
            if strat in EXHAUSTIVE:
                strategy = make_strategy(strat, 0, preemption_bound=bound)
                r = explore(fixed, strategy, 10**9, stop_on_first=False, time_limit_s=args.seconds)
                if r.exhausted:
                    fixed_text = f"fixed: exhausted in {r.elapsed_s:8.3f} s ({r.schedules} schedules)"
                else:
                    fixed_text = f"fixed: NOT exhausted in {r.elapsed_s:.0f} s ({r.schedules} schedules" + (
                        f", {r.cut} cut)" if r.cut else ")"
                    )
                if r.findings:
                    fixed_text += f"; found {', '.join(r.kinds())} in the fixed form"
            else:
                fixed_text = "fixed: sampling only"
            print(f"{name:15} {strat:6} {found:60} {fixed_text}", flush=True)


if __name__ == "__main__":
    main()
