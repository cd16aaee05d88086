"""Same token, same trace: replay findings in fresh processes under several PYTHONHASHSEED values.

    python bench/determinism.py                  # 6 findings x 6 hash seeds: 36 comparisons
    python bench/determinism.py --hashseeds 0 1 2

For each finding (the first of a buggy variant), `blkrace check --json` runs
once under PYTHONHASHSEED=0; its token is then replayed with
`blkrace replay --json` in a new process per hash seed (the last one
"random").  A comparison is identical when the replayed trace, violations
and step count equal those of the check.  Exit 1 if any differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

FINDINGS = [
    ("budget-rerun", "buggy"),
    ("hctx-drain", "buggy"),
    ("ipi-flush", "buggy"),
    ("nvme-mpath-freeze", "buggy"),
    ("nvme-mpath-freeze", "start-queues-in-teardown"),  # a 26,000-step soft lockup
    ("blkcg-percpu-alloc", "buggy"),  # lockdep: replayed after the runs it builds on
]


def blkrace(args, hashseed):
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed))
    proc = subprocess.run([sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env)
    return proc.returncode, json.loads(proc.stdout)


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashseeds", nargs="+", default=["0", "1", "42", "12345", "4294967295", "random"])
    args = parser.parse_args()
    same = total = 0
    for scenario, variant in FINDINGS:
        _, doc = blkrace(["check", scenario, "--variant", variant, "--json"], 0)
        v = doc["results"][0]["violations"][0]
        want = digest(v["trace"])
        print(f"{scenario} {variant}: {v['kind']} at schedule {v['schedule']}, {len(v['trace'])} trace steps, {want}")
        for seed in args.hashseeds:
            _, again = blkrace(["replay", *v["prefix_tokens"], v["token"], "--json"], seed)
            got = digest(again["trace"])
            ok = got == want and v["message"] in [x["message"] for x in again["violations"]]
            same += ok
            total += 1
            print(f"  PYTHONHASHSEED={seed:<10} {got} {'identical' if ok else 'DIFFERENT'}")
    print(f"{same} of {total} replays identical to the check's run")
    sys.exit(0 if same == total else 1)


if __name__ == "__main__":
    main()
