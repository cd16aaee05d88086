"""tag-wait-restart: the SCHED_RESTART rerun lost to store buffering, under lkmm.

One driver tag, BFQ, two readers: the second request's dispatcher finds no
driver tag, marks SCHED_RESTART in blk_mq_mark_tag_wait() and retries; the
first request's completion frees the tag and tests SCHED_RESTART.  With
d7d8535f377e applied the explorer still finds the stall, through the tag
wait's own store buffering; a full barrier after the mark closes it, and a
sequentially consistent machine cannot show it at all.
"""

from __future__ import annotations

from blkrace.engine.campaign import replay
from blkrace.scenarios.registry import get
from scenariokit import first_finding, pct_campaign

SCENARIO = get("tag-wait-restart")


def _campaign(variant, seed, schedules):
    return pct_campaign(SCENARIO, variant, seed, schedules)


def _first_finding(variant, seeds, schedules):
    return first_finding(SCENARIO, variant, seeds, schedules)


def test_with_d7d8535f377e_the_tag_wait_still_loses_the_rerun():
    build, result = _first_finding("d7d8535f377e", (0, 1, 2), 3000)
    assert result.kinds() == ["stall"]
    assert "on hctx0->dispatch, never dispatched again" in result.findings[0].violation.message
    res, _, _ = replay(build, result.findings[0].choices, max_steps=SCENARIO.max_steps)
    steps = [t for t in res.trace if t.kind == "step"]
    # The dispatcher's retry read the tag word stale (the completion's clear
    # not yet visible): a load inside blk_mq_mark_tag_wait().
    retry = [
        t
        for t in res.trace
        if t.what.startswith("reads tags0.bitmap_tags.map = 0x1 (stale")
        and any(f.function == "blk_mq_mark_tag_wait" for f in t.stack)
    ]
    assert retry, [t.what for t in res.trace if "stale" in t.what]
    # The completion tested SCHED_RESTART after freeing the tag, and reran nothing.
    freed = next(i for i, t in enumerate(steps) if any(f.function == "__blk_mq_free_request" for f in t.stack))
    tested = [
        i
        for i, t in enumerate(steps)
        if any(f.function == "blk_mq_sched_restart" for f in t.stack) and "hctx0->state" in t.what
    ]
    assert tested and tested[0] > freed
    completion = steps[tested[0]].task
    after = [t for t in steps[tested[0] + 1 :] if t.task == completion]
    assert not any(any(f.function == "blk_mq_run_hw_queue" for f in t.stack) for t in after)


def test_without_any_barrier_it_stalls_too():
    assert _first_finding("buggy", (0, 1, 2), 3000)[1].kinds() == ["stall"]


def test_a_full_barrier_after_marking_restart_closes_it():
    for seed in (0, 1):
        assert _campaign("fixed", seed, 1500)[1].findings == []


def test_a_sequentially_consistent_machine_cannot_lose_both_loads():
    for seed in (0, 1):
        assert _campaign("buggy-sc", seed, 1500)[1].findings == []


def test_reverting_d7d8535f377e_brings_its_own_window_back():
    # The tag wait's barrier applied, two reads each: what is left is
    # d7d8535f377e's pair, the splice onto hctx->dispatch against the
    # completion's clear of SCHED_RESTART and its look at the list.
    build, result = _first_finding("d7d8535f377e-reverted", (0, 1, 2), 3000)
    assert result.kinds() == ["stall"]
    res, _, _ = replay(build, result.findings[0].choices, max_steps=SCENARIO.max_steps)
    stale = [
        t
        for t in res.trace
        if t.what.startswith("reads hctx0->dispatch.nonempty = False (stale")
        and {"blk_mq_sched_restart", "blk_mq_hctx_has_pending"} <= {f.function for f in t.stack}
    ]
    assert stale, [t.what for t in res.trace if "stale" in t.what]


def test_with_both_barriers_two_reads_each_are_clean():
    for seed in (0, 1):
        assert _campaign("fixed-2-reads", seed, 1500)[1].findings == []
