"""How rare 5266caaf5660's hang is in tag-wait-shared: PCT on the kernel with the
other two barriers and without 5266caaf5660.

The scenario has no variant for this window: `check` finds it far outside a
variant's budget (PCT at depth 5 found it once, at seed 7 after 27,119
schedules).  This prints, per seed, where PCT first finds a violation in the
form ``--patches`` gives (default: d7d8535f377e and the wake's barrier, not
5266caaf5660), and the choices of the first one found (``--print-choices``),
which tests/test_tag_wait_shared.py replays.

Run:  python bench/bench_tag_wait_shared.py [--seeds 0:8] [--depth 5] [--schedules 30000]
          [--reads 2] [--irqmode irq] [--print-choices]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from blkrace.block.blk_mq import DISPATCH_WAKE_MB, TAG_WAIT_SHARED_MB
from blkrace.block.blk_mq_sched import ORDER_DISPATCH_RESTART
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import get

REVERTED = frozenset({ORDER_DISPATCH_RESTART.name, DISPATCH_WAKE_MB.name})


def reverted_build(reads=2, irqmode="irq", patches=REVERTED):
    """tag-wait-shared with ``patches`` (default: 5266caaf5660 reverted, the other two applied)."""
    scenario = get("tag-wait-shared")
    variant = replace(scenario.variants["buggy"], patches=frozenset(patches))
    return scenario, scenario.builder(variant, params={"reads": str(reads), "irqmode": irqmode})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0:8", help="a range START:END of PCT seeds")
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--schedules", type=int, default=30_000)
    ap.add_argument("--reads", type=int, default=2)
    ap.add_argument("--irqmode", default="irq", choices=("irq", "none"))
    ap.add_argument("--with-5266caaf5660", action="store_true", help="apply it too (expect nothing)")
    ap.add_argument("--print-choices", action="store_true")
    args = ap.parse_args()
    start, end = (int(x) for x in args.seeds.split(":"))
    patches = REVERTED | ({TAG_WAIT_SHARED_MB.name} if args.with_5266caaf5660 else set())
    scenario, build = reverted_build(args.reads, args.irqmode, patches)
    print(f"tag-wait-shared, patches {', '.join(sorted(patches))}, reads={args.reads}, irqmode={args.irqmode}")
    for seed in range(start, end):
        t0 = time.perf_counter()
        r = explore(build, make_strategy("pct", seed, depth=args.depth), args.schedules, max_steps=scenario.max_steps)
        took = time.perf_counter() - t0
        if r.findings:
            f = r.findings[0]
            print(
                f"seed {seed}: {', '.join(r.kinds())} at schedule {f.schedule_index + 1} ({took:.1f} s): "
                f"{f.violation.message}",
                flush=True,
            )
            if args.print_choices:
                print(f"  choices {tuple(f.choices)}", flush=True)
        else:
            print(f"seed {seed}: nothing in {r.schedules} schedules ({took:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
