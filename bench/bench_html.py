"""The HTML report: how long building a page takes, how big it is, and (with
Chromium installed) how long the page takes to load and draw.

For each run shown (the first finding of a PCT campaign, seed 0, replayed with
its trace): trace entries, page bytes, median seconds to build the page data
and render it (over --repeat), and median seconds from navigation to the
load event in headless Chromium (over --repeat; the page draws itself before
its load event), using tests/browser.py.

Run:  python bench/bench_html.py [--repeat 5] [--no-browser]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from blkrace.report import html
from blkrace.scenarios.registry import get

RUNS = (
    ("budget-rerun", "buggy"),
    ("hctx-drain", "buggy"),
    ("nvme-mpath-freeze", "buggy"),
    ("nvme-mpath-freeze", "start-queues-in-teardown"),
)


def traced(name, variant):
    s = get(name)
    build = s.builder(s.variants[variant])
    found = explore(build, make_strategy("pct", 0), 2000, max_steps=s.max_steps)
    res, _, _ = replay(build, found.findings[0].choices, max_steps=s.max_steps)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    browser = None
    if not args.no_browser:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from browser import Browser, find_chromium

        path = find_chromium()
        browser = Browser(path) if path else None
    print(f"median over {args.repeat}; load: navigation to the load event in headless Chromium")
    print(f"{'scenario':<58} {'entries':>8} {'bytes':>10} {'build s':>8} {'load s':>7}")
    with tempfile.TemporaryDirectory() as d:
        for name, variant in RUNS:
            res = traced(name, variant)
            build_s, page = [], None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                page = html.render(html.replay_page(name, variant, res, "br1.bench", "bench"))
                build_s.append(time.perf_counter() - t0)
            out = Path(d) / f"{name}-{variant}.html"
            out.write_text(page, encoding="utf-8")
            load = "-"
            if browser is not None:
                times = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    browser.open(out.as_uri())
                    times.append(time.perf_counter() - t0)
                load = f"{statistics.median(times):.2f}"
                if browser.errors():
                    load += " (console errors!)"
            label = f"{name} --variant {variant}"
            size = len(page.encode())
            print(f"{label:<58} {len(res.trace):>8} {size:>10,} {statistics.median(build_s):>8.3f} {load:>7}")
    if browser is not None:
        browser.close()


if __name__ == "__main__":
    main()
