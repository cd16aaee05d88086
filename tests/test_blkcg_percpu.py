"""Seed 004: the lockdep report, the real self-deadlock, the RFT's own bug, and the fix."""

from blkrace.block.blk_cgroup import ALLOC_PCPU_FROM_WORKER, CMPXCHG_RESULT_FIX
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.base import Variant
from blkrace.scenarios.registry import get

SC = get("blkcg-percpu-alloc")


def run(variant, schedules=1500, seed=0, keep_going=True):
    build = SC.builder(variant)
    return explore(build, make_strategy("pct", seed), schedules, stop_on_first=not keep_going, max_steps=SC.max_steps)


def test_buggy_reports_the_reclaim_inconsistency_and_deadlocks_on_itself():
    result = run(SC.variants["buggy"])
    kinds = result.kinds()
    assert "lockdep" in kinds and "deadlock" in kinds
    report = next(f.violation for f in result.findings if f.violation.kind == "lockdep")
    assert report.message.startswith("inconsistent {RECLAIM_FS-ON-W} -> {IN-RECLAIM_FS-W} usage on pcpu_alloc_mutex")
    assert "  lock(pcpu_alloc_mutex);" in report.detail and "  <Interrupt>" in report.detail
    deadlock = next(f.violation for f in result.findings if f.violation.kind == "deadlock")
    trace = "\n".join(deadlock.detail)
    # The seed's chain: pcpu_alloc -> reclaim -> swap -> submit_bio -> blk_throtl_bio (or CFQ's
    # cfq_get_cfqg(), the second user) -> alloc_percpu.
    for fn in ("pcpu_alloc", "try_to_free_pages", "swap_writepage", "mutex_lock"):
        assert fn in trace
    assert ("blk_throtl_bio" in trace and "throtl_alloc_tg" in trace) or (
        "cfq_get_cfqg" in trace and "cfq_alloc_cfqg" in trace
    )
    assert "modprobe waits on pcpu_alloc_mutex, held by modprobe" in trace


def test_the_lockdep_report_also_comes_on_runs_that_do_not_deadlock():
    # Every run on a fresh boot (its own graph): some report lockdep with no task blocked forever.
    from blkrace.engine.campaign import run_once

    build = SC.builder(SC.variants["buggy"])
    strategy = make_strategy("pct", 3)
    shared = {}
    for i in range(300):
        res, _ = run_once(build, strategy, i, max_steps=SC.max_steps, shared=shared)
        kinds = {v.kind for v in res.violations}
        if "lockdep" in kinds and "deadlock" not in kinds:
            return
        shared = {}  # a fresh boot, so that every run can report
    raise AssertionError("no run reported lockdep without deadlocking")


def test_rft_as_posted_frees_the_stats_it_installs():
    result = run(SC.variants["rft"])
    assert result.kinds() == ["bug"]
    assert "use after free" in result.findings[0].violation.message


def test_fixed_is_clean():
    result = run(SC.variants["fixed"], schedules=2000, keep_going=False)
    assert result.findings == [] and result.schedules == 2000


def test_the_cmpxchg_fix_alone_does_not_remove_the_original_bug():
    result = run(Variant("v", frozenset({CMPXCHG_RESULT_FIX.name}), frozenset(), ""), schedules=800)
    assert "lockdep" in result.kinds()


def test_the_worker_allocation_alone_removes_report_and_deadlock():
    result = run(Variant("v", frozenset({ALLOC_PCPU_FROM_WORKER.name}), frozenset(), ""), schedules=800)
    assert "lockdep" not in result.kinds() and "deadlock" not in result.kinds()


def test_under_the_fs_reclaim_annotation_the_report_is_a_circular_dependency():
    result = run(SC.variants["buggy-fs-reclaim"])
    assert "deadlock" in result.kinds()
    report = next(f.violation for f in result.findings if f.violation.kind == "lockdep")
    assert "WARNING: possible circular locking dependency detected" in report.detail
    chain = "\n".join(report.detail)
    assert "(fs_reclaim)" in chain and "(pcpu_alloc_mutex)" in chain


def run_one_policy(variant, policy, schedules=1500):
    from blkrace.scenarios.blkcg_percpu_alloc import build_blkcg_machine

    return explore(
        lambda ex: build_blkcg_machine(ex, variant, policies=(policy,)),
        make_strategy("pct", 0),
        schedules,
        stop_on_first=False,
        max_steps=SC.max_steps,
    )


def test_cfq_alone_is_a_second_user_with_the_same_bug_and_the_same_fix():
    """CFQ's cfq_get_cfqg() without blk-throttle: its own alloc_percpu() on the
    I/O path reports and deadlocks; the RFT's CFQ hunk misreads cmpxchg() too;
    both fixes make it clean."""
    buggy = run_one_policy(SC.variants["buggy"], "cfq")
    assert {"lockdep", "deadlock"} <= set(buggy.kinds())
    deadlock = next(f for f in buggy.findings if f.violation.kind == "deadlock")
    trace = "\n".join(deadlock.violation.detail)
    assert "cfq_get_cfqg" in trace and "swap_writepage" in trace and "throtl" not in trace

    rft = run_one_policy(SC.variants["rft"], "cfq")
    assert rft.kinds() == ["bug"]
    assert "cfqg:" in rft.findings[0].violation.message and "use after free" in rft.findings[0].violation.message

    fixed = run_one_policy(SC.variants["fixed"], "cfq", schedules=800)
    assert fixed.findings == []


def test_throttle_alone_still_has_the_bug():
    buggy = run_one_policy(SC.variants["buggy"], "throttle")
    assert {"lockdep", "deadlock"} <= set(buggy.kinds())
    assert run_one_policy(SC.variants["fixed"], "throttle", schedules=800).findings == []
