"""Every scenario and variant: how fast the expected violation is found, or how
long a clean variant takes to explore its default number of schedules.

For a variant that expects violations: schedules and seconds until the first
finding of an expected kind, median (and max) over 20 seeds, and which other
kinds those runs showed (allowed by the variant, or not).  For a clean
variant: schedules explored and seconds, median over 3 seeds, and what was
found (an allowed kind is counted apart from an unexpected one).

Run:  python bench/bench_scenarios.py [--strategy pct] [--seeds 20] [--scenario NAME]
          [--variant NAME] [--preempt full|none]
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
    ap.add_argument("--variant", default=None)
    ap.add_argument("--preempt", choices=("full", "none"), default=None, help="override each variant's model")
    ap.add_argument("--budget", type=int, default=20_000, help="schedules per seed before giving up")
    args = ap.parse_args()
    preempt = None if args.preempt is None else args.preempt == "full"
    print(f"strategy {args.strategy}; found: median over {args.seeds} seeds; clean: median over 3 seeds")
    for s in SCENARIOS.values():
        if args.scenario and s.name != args.scenario:
            continue
        for v in s.variants.values():
            if args.variant and v.name != args.variant:
                continue
            build = s.builder(v, preempt=preempt)
            preemptive = s.preempt_of(v) if preempt is None else preempt
            model = "preempt " + ("full" if preemptive else "none")
            if v.expect:
                per_kind = {kind: ([], []) for kind in sorted(v.expect)}
                misses = 0
                others = {}
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
                    for f in r.findings:
                        if f.violation.kind not in v.expect:
                            others[f.violation.kind] = others.get(f.violation.kind, 0) + 1
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
                            f"{s.name:13} {v.name:28} {kind:11} median {statistics.median(counts):7.0f} schedules "
                            f"{statistics.median(secs):7.3f} s (max {max(secs):.3f} s; found in {len(counts)} of "
                            f"{args.seeds} seeds; {model})"
                        )
                    else:
                        print(f"{s.name:13} {v.name:28} {kind:11} NOT FOUND in {args.seeds} seeds ({model})")
                if others:
                    print(f"{'':13} {'':28} also seen: {_kinds(others, v.allowed)}")
            else:
                times, found = [], {}
                for seed in range(3):
                    t = time.perf_counter()
                    r = explore(build, make_strategy(args.strategy, seed), s.default_schedules, max_steps=s.max_steps)
                    times.append(time.perf_counter() - t)
                    for f in r.findings:
                        found[f.violation.kind] = found.get(f.violation.kind, 0) + 1
                seen = _kinds(found, v.allowed) or "nothing"
                print(
                    f"{s.name:13} {v.name:28} clean       {s.default_schedules} schedules "
                    f"{statistics.median(times):7.2f} s ({model}); over 3 seeds: {seen}"
                )


def _kinds(counts, allowed):
    """'deadlock x2 (NOT allowed), stall x1 (allowed)': what a variant's runs showed besides its expectation."""
    return ", ".join(
        f"{kind} x{n} ({'allowed' if kind in allowed else 'NOT allowed'})" for kind, n in sorted(counts.items())
    )


if __name__ == "__main__":
    main()
