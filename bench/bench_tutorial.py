"""The tutorial's scenario (docs/WRITING_A_SCENARIO.md) run as a file, and the
latency check in idle time against plain virtual time.

Prints, for each variant that expects a violation, the schedules and seconds
to the first finding (median and max over the seeds, PCT); for each clean
variant, the seconds to explore its default schedules.  Then, on the fixed
variant `fixed-kicked` (no read is ever late), how soon a latency check
measured in plain virtual time reports a read late anyway, and that the idle
measure does not, over the same seeds.  Also the cost of loading the file
(import and fingerprint).

Run:  python bench/bench_tutorial.py [--seeds 20] [--strategy pct]
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios import latency
from blkrace.scenarios.loader import load_file
from blkrace.scenarios.registry import fingerprint_of

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "WRITING_A_SCENARIO.md"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--strategy", default="pct")
    args = ap.parse_args()
    (block,) = re.findall(r"^```python\n(.*?)^```$", TUTORIAL.read_text(), flags=re.S | re.M)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "my_race.py"
        path.write_text(block)
        loads = []
        for _ in range(20):
            t0 = time.perf_counter()
            s = load_file(str(path))
            fingerprint_of(s)
            loads.append(time.perf_counter() - t0)
        print(f"load + fingerprint of the scenario file: median {statistics.median(loads) * 1e3:.1f} ms over 20")
        print(f"strategy {args.strategy}; found: median (max) over {args.seeds} seeds")
        for v in s.variants.values():
            build = s.builder(v)
            if v.expect:
                counts, secs = [], []
                for seed in range(args.seeds):
                    r = explore(build, make_strategy(args.strategy, seed), 20_000)
                    if r.findings:
                        counts.append(r.findings[0].schedule_index + 1)
                        secs.append(r.findings[0].elapsed_s)
                kinds = ", ".join(sorted(v.expect))
                print(
                    f"  {v.name:14} {kinds:8} found in {len(counts)}/{args.seeds} seeds: "
                    f"{statistics.median(counts):.0f} ({max(counts)}) schedules, "
                    f"{statistics.median(secs):.3f} s"
                )
            else:
                r = explore(build, make_strategy(args.strategy, 0), s.schedules_of(v))
                found = ", ".join(r.kinds()) or "none"
                print(f"  {v.name:14} clean    {r.schedules} schedules, {r.elapsed_s:.2f} s, found: {found}")
        module = sys.modules[type(s).__module__]
        fixed = s.builder(s.variants["fixed-kicked"])
        for clock in latency.CLOCKS:
            module.LatencyWatch = functools.partial(latency.LatencyWatch, clock=clock)
            counts = []
            for seed in range(args.seeds):
                r = explore(fixed, make_strategy(args.strategy, seed), 2000)
                if r.findings:
                    counts.append(r.findings[0].schedule_index + 1)
            median = f"median {statistics.median(counts):.0f} schedules" if counts else "none"
            print(
                f"  fixed-kicked, latency in {clock} time: reported late in {len(counts)}/{args.seeds} seeds "
                f"of 2000 schedules ({median})"
            )


if __name__ == "__main__":
    main()
