"""Every scenario and variant: how fast the expected violation is found, or how
long a clean variant takes to explore its default number of schedules.

For a variant that expects violations: schedules and seconds until the first
finding of an expected kind, median (and max) over 20 seeds.  For a clean
variant: schedules explored and seconds, median over 3 seeds.

Run:  python bench/bench_scenarios.py [--strategy pct] [--seeds 20] [--scenario NAME]
"""

from __future__ import annotations

import argparse
import statistics
import time

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import SCENARIOS


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", default="pct")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--scenario", default=None)
    ap.add_argument("--budget", type=int, default=20_000, help="schedules per seed before giving up")
    args = ap.parse_args()
    print(f"strategy {args.strategy}; found: median over {args.seeds} seeds; clean: median over 3 seeds")
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            build = s.builder(v)
            if v.expect:
                per_kind = {kind: ([], []) for kind in sorted(v.expect)}
                misses = 0
                for seed in range(args.seeds):
                    strategy = make_strategy(args.strategy, seed)
                    r = explore(
                        build,
                        strategy,
                        args.budget,
                        stop_on_first=False,
                        max_steps=s.max_steps,
                        stop_when=lambda kinds, want=v.expect: want <= kinds,
                        time_limit_s=60,
                    )
                    for kind, (counts, secs) in per_kind.items():
                        hits = [f for f in r.findings if f.violation.kind == kind]
                        if hits:
                            counts.append(hits[0].schedule_index + 1)
                            secs.append(hits[0].elapsed_s)
                        else:
                            misses += 1
                for kind, (counts, secs) in per_kind.items():
                    if counts:
                        print(
                            f"{s.name:13} {v.name:28} {kind:9} median {statistics.median(counts):7.0f} schedules "
                            f"{statistics.median(secs):7.3f} s (max {max(secs):.3f} s; found in {len(counts)} of "
                            f"{args.seeds} seeds)"
                        )
                    else:
                        print(f"{s.name:13} {v.name:28} {kind:9} NOT FOUND in {args.seeds} seeds")
            else:
                times, found = [], 0
                for seed in range(3):
                    t = time.perf_counter()
                    r = explore(build, make_strategy(args.strategy, seed), s.default_schedules, max_steps=s.max_steps)
                    times.append(time.perf_counter() - t)
                    found += len(r.findings)
                print(
                    f"{s.name:13} {v.name:28} clean     {s.default_schedules} schedules "
                    f"{statistics.median(times):7.2f} s, {found} findings over 3 seeds"
                )


if __name__ == "__main__":
    main()
