"""tag-wait-shared: two disks on one tag set with one tag, under lkmm.

The hctx that finds no driver tag queues its dispatch_wait entry on the tag
bitmap's wait queue (blk_mq_mark_tag_wait(), shared branch); the completion
that frees the tag wakes it, and blk_mq_dispatch_wake() reruns the hctx.
With 5266caaf5660 applied the explorer still finds a lost rerun: the wake's
blk_mq_hctx_has_pending() misses the request the dispatcher put back on
hctx->dispatch, while the dispatcher saw its entry still queued.
"""

from __future__ import annotations

from blkrace.block.blk_mq import TAG_WAIT_SHARED_MB
from blkrace.block.types import BLK_MQ_F_TAG_SHARED
from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import get
from scenariokit import first_finding, pct_campaign

SCENARIO = get("tag-wait-shared")


def _functions(step):
    return {f.function for f in step.stack}


def test_with_5266caaf5660_the_wake_up_still_loses_the_rerun():
    build, result = first_finding(SCENARIO, "5266caaf5660", (0, 1, 2), 8000)
    assert result.kinds() == ["stall"]
    assert "on hctx0->dispatch, never dispatched again" in result.findings[0].violation.message
    res, _, _ = replay(build, result.findings[0].choices, max_steps=SCENARIO.max_steps)
    steps = [t for t in res.trace if t.kind == "step"]
    # The wake function dequeued dispatch_wait, then its rerun found nothing
    # pending: it read hctx->dispatch stale.
    woke = [i for i, t in enumerate(steps) if "blk_mq_dispatch_wake" in _functions(t)]
    assert woke
    stale = [
        t
        for t in res.trace
        if "hctx0->dispatch.nonempty = False (stale" in t.what and "blk_mq_hctx_has_pending" in _functions(t)
    ]
    assert stale, [t.what for t in res.trace if "stale" in t.what]


def test_the_fix_and_sc_are_clean():
    for variant in ("fixed", "buggy-sc"):
        _, result = pct_campaign(SCENARIO, variant, 0, 3000)
        assert result.findings == [], (variant, result.kinds())


def test_every_hctx_of_a_shared_set_is_marked_shared():
    from blkrace.drivers.null_blk import null_add_dev
    from blkrace.engine.execution import Execution
    from blkrace.kernel.boot import boot

    ex = Execution(make_strategy("random", 0))
    k = boot(ex, nr_cpus=2, hotplug=False)
    nb0 = null_add_dev(k, "nullb0", nr_hw_queues=1, hw_queue_depth=1, managed_irqs=False)
    assert not nb0.q.queue_hw_ctx[0].flags & BLK_MQ_F_TAG_SHARED
    nb1 = null_add_dev(k, "nullb1", managed_irqs=False, tag_set=nb0.tag_set)
    for q in (nb0.q, nb1.q):
        assert q.queue_hw_ctx[0].flags & BLK_MQ_F_TAG_SHARED
    assert nb0.q.queue_hw_ctx[0].tags is nb1.q.queue_hw_ctx[0].tags


def test_inline_completions_end_every_read():
    """null_blk's irqmode=0 (a request ends inside queue_rq) on a sequentially
    consistent machine: every read ends."""
    build = SCENARIO.builder(SCENARIO.variants["buggy-sc"], params={"irqmode": "none"})
    result = explore(build, make_strategy("pct", 0), 500, max_steps=SCENARIO.max_steps)
    assert result.findings == [] and result.runs == 500


# A schedule of 5266caaf5660's own hang, found by PCT (seed 7, depth 5, after
# 27,119 schedules) on tag-wait-shared with d7d8535f377e and the wake's
# barrier applied and 5266caaf5660 reverted, two reads each, interrupts:
#   python bench/bench_tag_wait_shared.py --seeds 7:8 --print-choices
# (run it again to record a new one if a model change moves the choices).
HANG_5266CAAF5660 = (
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    0,
    4,
    4,
    4,
    4,
    4,
    1,
    1,
    4,
    4,
    4,
    4,
    4,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    0,
    5,
    5,
    2,
    0,
    3,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    1,
    1,
    1,
    1,
    1,
    1,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    3,
    6,
    7,
    7,
    7,
    7,
    7,
    7,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    8,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    2,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    5,
    0,
    5,
    5,
    2,
    0,
    9,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    10,
    2,
    1,
    0,
    12,
    12,
    12,
    5,
    5,
    5,
    5,
    5,
)


def _bench():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import bench_tag_wait_shared

    return bench_tag_wait_shared


def test_reverting_5266caaf5660_brings_its_hang_back_and_applying_it_closes_it():
    """On the recorded schedule: the dispatcher's retry in blk_mq_mark_tag_wait()
    reads the tag word stale after queueing dispatch_wait, the completion that
    freed the tag read ws_active before the waiter's increment, and the request
    stays on hctx->dispatch.  With 5266caaf5660's smp_mb() the retry cannot
    read the stale word: the schedule leaves the recorded one there and ends
    clean."""
    bench = _bench()
    scenario, build = bench.reverted_build()
    res, _, _ = replay(build, HANG_5266CAAF5660, max_steps=scenario.max_steps)
    assert {v.kind for v in res.violations} == {"stall"}
    assert any("on hctx0->dispatch, never dispatched again" in v.message for v in res.violations)
    retry = [
        t
        for t in res.trace
        if t.what.startswith("reads tags0.bitmap_tags.map = 0x1 (stale") and "blk_mq_mark_tag_wait" in _functions(t)
    ]
    assert retry, [t.what for t in res.trace if "stale" in t.what]
    _, fixed = bench.reverted_build(patches=bench.REVERTED | {TAG_WAIT_SHARED_MB.name})
    res, _, strategy = replay(fixed, HANG_5266CAAF5660, lenient=True, max_steps=scenario.max_steps)
    assert res.violations == [] and strategy.diverged_at is not None
