"""Litmus tests through blkrace's memory model: verdicts against a reference, and timings.

Run:  python bench/bench_litmus.py DIR [--expected FILE] [--repeat 5]

DIR holds C litmus tests (*.litmus), e.g. the kernel's
tools/memory-model/litmus-tests.  The reference verdicts come from
``--expected`` (or DIR/expected.tsv, or DIR/../expected.tsv when present): a
tab-separated file with a header, the test name in its first column and the
verdict (Always, Sometimes, Never) in its second; optional third and fourth
columns give herd7's POS and NEG counts.  Without a reference, the verdicts
are printed alone.

Prints one line per test (verdict, counts, agreement, time), the agreement
total, the median time per test, the median time of the whole directory in
one process, and the median wall time of one ``blkrace litmus`` call on all
of them (a fresh process, as a user runs it), each over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import statistics
import subprocess
import sys
import time

from blkrace.litmus import LitmusError, check


def _reference(args, d):
    for p in [args.expected, d / "expected.tsv", d.parent / "expected.tsv"]:
        if p and pathlib.Path(p).is_file():
            with open(p) as f:
                rows = list(csv.reader(f, delimiter="\t"))
            return {r[0]: r[1:] for r in rows[1:] if r}, p
    return {}, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--expected", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--memory-model", default="lkmm")
    args = ap.parse_args()
    d = pathlib.Path(args.dir)
    files = sorted(d.glob("*.litmus"))
    if not files:
        sys.exit(f"bench_litmus: no *.litmus in {d}")
    ref, ref_path = _reference(args, d)
    print(f"{len(files)} tests in {d}; reference: {ref_path or 'none'}; memory model {args.memory_model}")
    agree = disagree = unsupported = 0
    per_test = []
    for f in files:
        t0 = time.perf_counter()
        try:
            v = check(f, args.memory_model)
        except LitmusError as exc:
            unsupported += 1
            print(f"  {f.stem:58} UNSUPPORTED  {exc}")
            continue
        dt = time.perf_counter() - t0
        per_test.append(dt)
        want = ref.get(f.stem)
        mark = ""
        if want:
            ok = want[0] == v.observation and (len(want) < 3 or (int(want[1]), int(want[2])) == (v.pos, v.neg))
            agree += ok
            disagree += not ok
            mark = "agrees" if ok else f"DISAGREES (reference {' '.join(want)})"
        print(f"  {f.stem:58} {v.observation:9} {v.pos:4} {v.neg:5} {dt * 1000:8.1f} ms  {mark}")
    if ref:
        print(f"agreement: {agree}/{agree + disagree} with the reference ({unsupported} unsupported)")
    print(f"per test: median {statistics.median(per_test) * 1000:.1f} ms, max {max(per_test) * 1000:.1f} ms")
    batch = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for f in files:
            try:
                check(f, args.memory_model)
            except LitmusError:
                pass
        batch.append(time.perf_counter() - t0)
    print(f"all {len(files)} in one process: median {statistics.median(batch):.3f} s over {args.repeat} runs")
    cli = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "blkrace", "litmus", "--no-witness", "--memory-model", args.memory_model]
            + [str(f) for f in files],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        cli.append(time.perf_counter() - t0)
    print(
        f"one `blkrace litmus` call on all {len(files)}: "
        f"median {statistics.median(cli):.3f} s wall over {args.repeat} runs"
    )


if __name__ == "__main__":
    main()
