"""The Dask path on a LocalCluster of two worker processes: the same findings as one process."""

import os
import subprocess
import sys

import pytest

from blkrace.engine import portfolio as pf
from blkrace.engine.parallel import run_campaign
from blkrace.scenarios.recipe import build_of, recipe_of
from blkrace.scenarios.registry import get

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    ) as c:
        yield c


def _summary(res):
    return (
        res.runs,
        [(f.violation.origin, f.schedule_index, f.choices, f.prefix, f.strategy, f.count) for f in res.findings],
    )


def test_a_campaign_on_a_local_cluster_finds_what_one_process_finds(cluster):
    s = get("budget-rerun")
    v = s.variants["buggy"]
    recipe = recipe_of(s, v, preempt=s.preempt_of(v))
    kw = dict(stop_on_first=False, max_steps=s.max_steps)
    here = run_campaign(build_of, recipe, pf.portfolio(0), 1000, **kw)
    there = run_campaign(build_of, recipe, pf.portfolio(0), 1000, dask=cluster.scheduler_address, **kw)
    assert there.backend == "dask"
    assert here.findings and _summary(here) == _summary(there)


def test_check_dask_address_from_the_command_line(cluster):
    env = dict(os.environ, PYTHONHASHSEED="0")
    args = ["check", "hctx-drain", "--variant", "buggy", "--no-shrink", "--dask", cluster.scheduler_address]
    proc = subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 1, proc.stderr
    assert "io_error" in proc.stdout


def test_an_unreachable_scheduler_is_one_line_and_exit_2():
    env = dict(os.environ, PYTHONHASHSEED="0")
    args = ["check", "hctx-drain", "--variant", "buggy", "--dask", "tcp://127.0.0.1:9"]
    proc = subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 2 and proc.stderr.startswith("blkrace: error:") and proc.stderr.count("\n") == 1
