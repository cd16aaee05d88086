"""Campaigns at scale: worker processes, a Dask cluster, and the portfolio against each strategy.

Three measurements (medians), each printed with what it measured:

- jobs:      schedules per second (wall time) of one campaign of a clean variant, every
             schedule explored, with --jobs 1 and --jobs 2 (starting the workers included).
- dask:      the same campaign on a Dask LocalCluster of 2 worker processes
             (the cluster started beforehand), against --jobs 2.
- portfolio: time and schedules to the first finding of an expected kind on every
             buggy variant, the default portfolio against each strategy alone
             (one process; median over --seeds seeds; a seed that finds nothing within
             --budget schedules or --time-limit seconds counts as a miss).

Speedups depend on free cores: on a machine shared with other work they are noisy.

Run:  python bench/bench_parallel.py [--part jobs|dask|portfolio|all] [--seeds 20] [--schedules 3000]
          [--budget 20000] [--time-limit 10] [--scenario NAME] [--strategies portfolio,pct,random,dfs]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from blkrace.engine.parallel import run_campaign
from blkrace.scale import members_of
from blkrace.scenarios.recipe import build_of, recipe_of
from blkrace.scenarios.registry import SCENARIOS, get


def _recipe(scenario, variant):
    s = get(scenario)
    v = s.variants[variant]
    return s, v, recipe_of(s, v, preempt=s.preempt_of(v))


def _rate(recipe, s, schedules, repeats, **kw):
    """Schedules per second of wall time, the start of worker processes included (median)."""
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        res = run_campaign(
            build_of, recipe, members_of("portfolio", 0), schedules, stop_on_first=False, max_steps=s.max_steps, **kw
        )
        rates.append(res.schedules / (time.perf_counter() - t))
    return statistics.median(rates), res


def part_jobs(args):
    s, v, recipe = _recipe(args.scenario or "budget-rerun", "fixed")
    print(f"jobs: {s.name} --variant {v.name}, {args.schedules} schedules, portfolio, median of {args.repeats}")
    one, r1 = _rate(recipe, s, args.schedules, args.repeats, jobs=1)
    two, r2 = _rate(recipe, s, args.schedules, args.repeats, jobs=2, inline_s=0)
    print(f"  --jobs 1: {one:8.0f} schedules/s")
    print(f"  --jobs 2: {two:8.0f} schedules/s ({two / one:.2f}x; wall time, starting the workers included)")
    assert [f.violation.origin for f in r1.findings] == [f.violation.origin for f in r2.findings]
    return two


def part_dask(args, jobs2=None):
    """Dask's defaults, then with its workers' statistical profiler off: the
    profiler samples every worker's stack every 10 ms in a thread of the
    worker, which costs a CPU-bound unit a few percent."""
    import dask
    from distributed import Client, LocalCluster

    s, v, recipe = _recipe(args.scenario or "budget-rerun", "fixed")
    if jobs2 is None:
        jobs2, _ = _rate(recipe, s, args.schedules, args.repeats, jobs=2, inline_s=0)
    print(f"dask: {s.name} --variant {v.name}, {args.schedules} schedules, LocalCluster(2 worker processes)")
    for profile in (True, False):
        with dask.config.set({"distributed.worker.profile.enabled": profile}):
            with LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
            ) as c:
                with Client(c) as client:
                    rate, _ = _rate(recipe, s, args.schedules, args.repeats, dask=client)
        what = "Dask's defaults      " if profile else "worker profiler off  "
        print(f"  {what}: {rate:6.0f} schedules/s, --jobs 2 {jobs2:.0f} schedules/s ({rate / jobs2:.2f}x)")


def part_portfolio(args):
    strategies = args.strategies.split(",")
    print(
        f"portfolio: first finding of an expected kind, median over {args.seeds} seeds, one process "
        f"(budget {args.budget} schedules or {args.time_limit} s per seed)"
    )
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            if not v.expect:
                continue
            recipe = recipe_of(s, v, preempt=s.preempt_of(v))
            cells = []
            for name in strategies:
                secs, counts, by = [], [], {}
                for seed in range(args.seeds):
                    res = run_campaign(
                        build_of,
                        recipe,
                        members_of(name, seed),
                        args.budget,
                        stop_on_first=False,
                        want=v.expect,
                        max_steps=s.max_steps,
                        time_limit_s=args.time_limit,
                    )
                    hits = [f for f in res.findings if f.violation.kind in v.expect]
                    if hits:
                        secs.append(hits[0].elapsed_s)
                        counts.append(hits[0].schedule_index + 1)
                        by[hits[0].strategy] = by.get(hits[0].strategy, 0) + 1
                # The median over every seed, a miss counting as slower than any hit.
                missed = args.seeds - len(secs)
                med_s = statistics.median(secs + [math.inf] * missed)
                med_n = statistics.median(counts + [math.inf] * missed)
                who = ""
                if name == "portfolio" and by:
                    who = f" by {', '.join(f'{k} x{n}' for k, n in sorted(by.items()))}"
                if med_s != math.inf:
                    cells.append(f"{name} {med_s:.3f} s / {med_n:.0f} sched ({len(secs)}/{args.seeds}){who}")
                elif secs:
                    cells.append(
                        f"{name} > {args.time_limit} s ({len(secs)}/{args.seeds}; those found: median "
                        f"{statistics.median(secs):.3f} s / {statistics.median(counts):.0f} sched){who}"
                    )
                else:
                    cells.append(f"{name} > {args.time_limit} s (0/{args.seeds})")
            print(f"  {s.name:18} {v.name:28} " + "; ".join(cells), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("jobs", "dask", "portfolio", "all"), default="all")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--schedules", type=int, default=3000, help="jobs/dask: schedules per campaign")
    ap.add_argument("--repeats", type=int, default=3, help="jobs/dask: campaigns per figure (median)")
    ap.add_argument("--budget", type=int, default=20_000, help="portfolio: schedules per seed before a miss")
    ap.add_argument("--time-limit", type=float, default=10.0, help="portfolio: seconds per seed before a miss")
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--strategies", default="portfolio,pct,random,dfs")
    args = ap.parse_args()
    jobs2 = None
    if args.part in ("jobs", "all"):
        jobs2 = part_jobs(args)
    if args.part in ("dask", "all"):
        part_dask(args, jobs2)
    if args.part in ("portfolio", "all"):
        part_portfolio(args)


if __name__ == "__main__":
    main()
