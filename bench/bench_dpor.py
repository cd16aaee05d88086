"""Which preemption bound an exhaustive strategy exhausts on each fixed variant in a time budget.

For every variant that expects no violation, run the strategy at preemption
bound 0, 1, 2, ... with ``--seconds`` (60) per bound, until one bound is not
exhausted in time.  Prints per bound: schedules, seconds, and whether the
space was exhausted, sampled (time ran out), or cut (the engine decided part
of some run: step bound, starvation rescue, a timer passed over: such a space
is never called exhausted).

``--jobs N`` (N > 1, dpor only) splits each search across N worker processes
(engine/split.py); the time then includes starting them.

Run:  python bench/bench_dpor.py [--strategy dpor|dfs] [--seconds 60] [--max-bound 4]
          [--scenario NAME] [--variant NAME] [--jobs N]
"""

from __future__ import annotations

import argparse

from blkrace.engine.campaign import explore
from blkrace.engine.portfolio import member
from blkrace.engine.split import run_split
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.recipe import build_of, recipe_of
from blkrace.scenarios.registry import SCENARIOS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="dpor", choices=("dpor", "dfs", "sdfs"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-bound", type=int, default=4)
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--variant", default=None)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    if args.jobs > 1 and args.strategy != "dpor":
        ap.error("--jobs splits DPOR only")
    print(
        f"strategy {args.strategy}, {args.seconds:.0f} s per preemption bound, fixed variants, "
        f"{args.jobs} worker{'s' if args.jobs > 1 else ''}"
    )
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            if v.expect or (args.variant and v.name != args.variant):
                continue
            build = s.builder(v)
            best = None
            for bound in range(args.max_bound + 1):
                if args.jobs > 1:
                    strategy = None
                    recipe = recipe_of(s, v, preempt=s.preempt_of(v))
                    r = run_split(
                        build_of,
                        recipe,
                        member("dpor", 0, preemption_bound=bound),
                        10**9,
                        jobs=args.jobs,
                        stop_on_first=False,
                        max_steps=s.max_steps,
                        time_limit_s=args.seconds,
                    )
                else:
                    strategy = make_strategy(args.strategy, preemption_bound=bound)
                    r = explore(
                        build, strategy, 10**9, stop_on_first=False, max_steps=s.max_steps, time_limit_s=args.seconds
                    )
                if r.exhausted:
                    state = "exhausted"
                elif getattr(strategy, "exhausted", False):
                    state = f"explored, but {r.cut} runs cut: not exhausted"
                else:
                    state = f"not exhausted in {args.seconds:.0f} s" + (f" ({r.cut} runs cut)" if r.cut else "")
                found = ", ".join(r.kinds()) or "nothing"
                print(
                    f"{s.name:18} {v.name:28} bound {bound}: {r.schedules:8d} schedules {r.elapsed_s:7.2f} s "
                    f"{state}; found {found}",
                    flush=True,
                )
                if not r.exhausted:
                    break
                best = bound
            verdict = f"exhausted up to bound {best}" if best is not None else "no bound exhausted"
            print(f"{s.name:18} {v.name:28} => {verdict} in {args.seconds:.0f} s per bound", flush=True)


if __name__ == "__main__":
    main()
