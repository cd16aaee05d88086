"""The campaign store: resume after kill -9 loses nothing found and counts nothing twice."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

ARGS = [
    "check",
    "budget-rerun",
    "--variant",
    "buggy",
    "--strategy",
    "portfolio",
    "--keep-going",
    "--no-shrink",
    "-n",
    "800",
]


def blkrace(*args, **kw):
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=900, **kw
    )


def _runs_on_disk(path):
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*), COALESCE(SUM(runs), 0) FROM units").fetchone()
    except sqlite3.OperationalError:
        return (0, 0)


def _findings(path):
    proc = blkrace("findings", str(path), "--json")
    assert proc.returncode in (0, 1), proc.stderr
    (campaign,) = json.loads(proc.stdout)["campaigns"]
    return campaign


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_resume_after_kill_9_loses_nothing_and_counts_nothing_twice(tmp_path, jobs):
    whole, killed = tmp_path / "whole.db", tmp_path / "killed.db"
    proc = blkrace(*ARGS, "--jobs", jobs, "--store", str(whole))
    assert proc.returncode == 1, proc.stderr

    env = dict(os.environ, PYTHONHASHSEED="0")
    p = subprocess.Popen(
        [sys.executable, "-m", "blkrace", *ARGS, "--jobs", jobs, "--store", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.time() + 300
    # Past round 2 (units 10..14): with --jobs 2 the worker processes are running by then.
    while _runs_on_disk(killed)[0] < 12 and p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    workers = _children(p.pid)
    p.send_signal(signal.SIGKILL)
    p.wait()
    units, runs = _runs_on_disk(killed)
    assert 0 < runs < 800, "the campaign was killed part way"
    time.sleep(2)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived a killed campaign"

    again = blkrace(*ARGS, "--jobs", jobs, "--store", str(killed), "--resume")
    assert again.returncode == 1, again.stderr
    a, b = _findings(whole), _findings(killed)
    assert sum(e["runs"] for e in a["explored"]) == sum(e["runs"] for e in b["explored"]) == 800
    assert a["explored"] == b["explored"]
    assert a["findings"] and a["findings"] == b["findings"]  # signatures, counts, first schedule and token


def test_a_store_is_not_overwritten_nor_resumed_with_other_arguments(tmp_path):
    db = tmp_path / "c.db"
    args = ["check", "budget-rerun", "--variant", "buggy", "--no-shrink", "--store", str(db)]
    assert blkrace(*args).returncode == 1
    proc = blkrace(*args)
    assert proc.returncode == 2 and "pass --resume" in proc.stderr and proc.stderr.count("\n") == 1
    proc = blkrace(*args, "--resume", "--seed", "7")
    assert proc.returncode == 2 and "other parameters (members)" in proc.stderr
    proc = blkrace(*args, "--resume")  # the same arguments: nothing left to run, the same answer
    assert proc.returncode == 1
    assert len(_findings(db)["findings"]) >= 1


def test_findings_of_a_missing_or_foreign_file_is_bad_input(tmp_path):
    proc = blkrace("findings", str(tmp_path / "nope.db"))
    assert proc.returncode == 2 and "no campaign store" in proc.stderr
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 100)
    proc = blkrace("findings", str(junk))
    assert proc.returncode == 2 and proc.stderr.startswith("blkrace: error:") and proc.stderr.count("\n") == 1
    proc = blkrace("check", "budget-rerun", "--resume")
    assert proc.returncode == 2 and "--store" in proc.stderr


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            direct = [int(x) for x in f.read().split()]
    except OSError:
        return []
    return direct + [c for d in direct for c in _children(d)]


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
