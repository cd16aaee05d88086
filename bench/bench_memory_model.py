"""The cost of the ``lkmm`` memory model over ``sc``, and what it finds.

For every scenario and variant: a fixed number of PCT schedules (seed 0,
exploring on after findings) under ``sc`` and under ``lkmm``, schedules per
second in each (median of ``--repeat`` campaigns), the ratio, and the
violation kinds each model showed.  Also: how fast each variant that
declares ``lkmm`` finds its expected violation (median over ``--seeds``
seeds, the default strategy PCT).

Run:  python bench/bench_memory_model.py [--schedules 200] [--repeat 3] [--seeds 20] [--scenario NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import SCENARIOS


def _campaign(s, v, mm, n):
    try:
        build = s.builder(v, memory_model=mm)
    except TypeError:  # a tree from before the memory model: sc only
        build = s.builder(v)
    t0 = time.perf_counter()
    r = explore(build, make_strategy("pct", 0), n, stop_on_first=False, max_steps=s.max_steps, time_limit_s=120)
    return r.schedules / (time.perf_counter() - t0), sorted({f.violation.kind for f in r.findings})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--models", default="sc,lkmm", help="sc alone measures a tree from before the memory model")
    args = ap.parse_args()
    models = args.models.split(",")
    print(f"pct seed 0, {args.schedules} schedules a campaign, schedules/s median of {args.repeat} campaigns")
    ratios = []
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            rate, kinds = {}, {}
            for mm in models:
                runs = [_campaign(s, v, mm, args.schedules) for _ in range(args.repeat)]
                rate[mm] = statistics.median(r for r, _ in runs)
                kinds[mm] = runs[0][1]
            line = f"{s.name:18} {v.name:28} " + "  ".join(f"{mm} {rate[mm]:7.1f}/s" for mm in models)
            if len(models) == 2:
                ratio = rate["sc"] / rate["lkmm"]
                ratios.append(ratio)
                line += f"  lkmm costs x{ratio:.2f}"
            line += "  found " + "  ".join(f"{mm}: {','.join(kinds[mm]) or '-'}" for mm in models)
            print(line)
    if ratios:
        print(f"cost of lkmm over sc: median x{statistics.median(ratios):.2f}, max x{max(ratios):.2f}")
    if "lkmm" not in models:
        return
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            if s.memory_model_of(v) != "lkmm" or not v.expect:
                continue
            secs, counts = [], []
            for seed in range(args.seeds):
                r = explore(
                    s.builder(v),
                    make_strategy("pct", seed),
                    20_000,
                    max_steps=s.max_steps,
                    stop_when=lambda found, want=v.expect: want <= found,
                    stop_on_first=False,
                    time_limit_s=60,
                )
                hits = [f for f in r.findings if f.violation.kind in v.expect]
                if hits:
                    secs.append(hits[0].elapsed_s)
                    counts.append(hits[0].schedule_index + 1)
            if secs:
                print(
                    f"{s.name} --variant {v.name} (lkmm): {'/'.join(sorted(v.expect))} found in {len(secs)} of "
                    f"{args.seeds} seeds, median {statistics.median(counts):.0f} schedules, "
                    f"{statistics.median(secs):.3f} s (max {max(secs):.3f} s)"
                )
            else:
                print(f"{s.name} --variant {v.name} (lkmm): NOT FOUND in {args.seeds} seeds")


if __name__ == "__main__":
    main()
