"""hctx-connect: bf0beec0607d's drain against blk_mq_alloc_request_hctx() from another CPU.

A command tied to hw queue 1 (an nvme-fabrics connect) is allocated by a
kworker on CPU 0 while CPU 3, hw queue 1's last CPU, goes offline.  No task is
preempted anywhere (CONFIG_PREEMPT_NONE): the windows come from two CPUs
running at once.
"""

from __future__ import annotations

from blkrace.engine.campaign import replay
from blkrace.scenarios.registry import get
from scenariokit import first_finding, pct_campaign

CONNECT = get("hctx-connect")


def _campaign(variant, seed, schedules):
    return pct_campaign(CONNECT, variant, seed, schedules)


def _first_finding(variant, seeds, schedules):
    return first_finding(CONNECT, variant, seeds, schedules)


def _steps(build, finding):
    res, _, _ = replay(build, finding.choices, max_steps=CONNECT.max_steps)
    return [(t.task, t.what, [f.function for f in t.stack]) for t in res.trace if t.kind == "step"]


def _index(steps, task, function, what=""):
    return next(i for i, (t, w, fs) in enumerate(steps) if t == task and function in fs and what in w)


def test_the_drain_misses_a_request_allocated_on_another_cpu_without_any_preemption():
    build, result = _first_finding("fixed", (0, 1, 2), 4000)
    assert result.kinds() == ["io_error"]
    assert "timed out after 30 s" in result.findings[0].violation.message
    steps = _steps(build, result.findings[0])
    tag = _index(steps, "kworker/0:1", "blk_mq_get_tag", "hctx1->state")  # found_tag: not INACTIVE yet
    inactive = _index(steps, "cpuhp/3", "blk_mq_hctx_notify_offline")
    drained = _index(steps, "cpuhp/3", "blk_mq_all_tag_iter")
    init = _index(steps, "kworker/0:1", "blk_mq_rq_ctx_init")
    assert tag < inactive < drained < init


def test_the_recheck_closes_it():
    for seed in (0, 1):
        assert _campaign("fixed-recheck", seed, 1500)[1].findings == []


def test_a_drain_that_counts_tags_closes_it_under_sc():
    for seed in (0, 1):
        assert _campaign("drain-tags", seed, 1500)[1].findings == []


def test_under_lkmm_the_acquire_of_test_and_set_bit_lock_does_not_pair_with_the_drain():
    build, result = _first_finding("drain-tags-lkmm", (0, 1, 2), 3000)
    assert result.kinds() == ["io_error"]
    res, _, _ = replay(build, result.findings[0].choices, max_steps=CONNECT.max_steps)
    # Store buffering against an acquire-only RMW: one side read the other's
    # store stale, the drain the tag word or the allocator INACTIVE.
    stale = [t.what for t in res.trace if "stale" in t.what]
    assert any(w.startswith(("reads tags1.bitmap_tags.map = 0x0", "reads hctx1->state = 0x0")) for w in stale)


def test_a_full_barrier_before_the_inactive_test_closes_it_under_lkmm():
    for seed in (0, 1):
        assert _campaign("drain-tags-mb-lkmm", seed, 1500)[1].findings == []
