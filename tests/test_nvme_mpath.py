"""Seed 002: the deadlock, the attempts and the fix, each from the modelled nvme and block code."""

from blkrace.block.blk_mq import QUIESCE_INSERT_RERUN
from blkrace.drivers.nvme import FREEZE_IN_SETUP, REMOVE_DIRECT_MAKE_REQUEST, START_QUEUES_IN_TEARDOWN
from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.base import Variant
from blkrace.scenarios.registry import get

NVME = get("nvme-mpath-freeze")


def run(variant, schedules=2000, seed=0, keep_going=False, preempt=None):
    build = NVME.builder(variant, preempt=preempt)
    return explore(build, make_strategy("pct", seed), schedules, stop_on_first=not keep_going, max_steps=NVME.max_steps)


def cycle_of(result):
    return next(f.violation for f in result.findings if f.violation.kind == "deadlock")


def test_buggy_deadlocks_through_srcu_and_the_reset_work():
    result = run(NVME.variants["buggy"], keep_going=True)
    v = cycle_of(result)
    text = "\n".join(v.detail)
    assert "srcu grace period" in v.message
    # The reset work waits in synchronize_srcu() for a submitter inside head->srcu ...
    assert "nvme_mpath_set_live" in text and "synchronize_srcu" in text and "nvme_read_ana_log" in text
    # ... who sleeps below nvme_ns_head_submit_bio() in direct_make_request().
    assert "direct_make_request" in text and "nvme_ns_head_submit_bio" in text


def test_buggy_also_blocks_in_blk_queue_enter_on_the_frozen_path():
    found = False
    for seed in range(6):
        result = run(NVME.variants["buggy"], seed=seed, keep_going=True, schedules=1500)
        for f in result.findings:
            if f.violation.kind == "deadlock" and "mq_freeze_wq" in f.violation.message:
                assert "blk_queue_enter" in "\n".join(f.violation.detail)
                found = True
        if found:
            break
    assert found, "the blk_queue_enter form of the deadlock was not found"


def test_submit_bio_direct_deadlocks_in_blk_mq_get_tag():
    for seed in range(4):
        result = run(NVME.variants["submit-bio-direct"], keep_going=True, seed=seed)
        if "deadlock" in result.kinds():
            break
    v = cycle_of(result)
    text = "\n".join(v.detail)
    assert "blk_mq_get_tag" in text and "blk_mq_submit_bio_direct" in text
    assert "direct_make_request" not in text


def test_nowait_fails_io_on_a_healthy_path():
    result = run(NVME.variants["nowait"])
    assert "io_error" in result.kinds()
    assert any("BLK_STS_AGAIN" in f.violation.message for f in result.findings)


def test_fixed_is_clean():
    result = run(NVME.variants["fixed"])
    assert result.findings == [] and result.schedules == 2000


def test_the_bio_list_deferral_alone_removes_the_deadlock():
    # 5a6c35f9af41 moves the lower queue entry out of head->srcu (with the
    # 2024 quiesce fix every variant carries: without it, that older stall).
    patches = frozenset({REMOVE_DIRECT_MAKE_REQUEST.name, QUIESCE_INSERT_RERUN.name})
    result = run(Variant("v", patches, frozenset(), ""), schedules=1500)
    assert result.findings == []


def test_the_freeze_placement_alone_still_deadlocks_before_5_9():
    # 99dc264014d5 alone: no freeze in the teardown, but a submitter inside
    # head->srcu can still sleep on a tag held behind the quiesced queue.
    result = run(Variant("v", frozenset({FREEZE_IN_SETUP.name}), frozenset(), ""), schedules=3000, keep_going=True)
    assert "deadlock" in result.kinds()


def test_without_either_fix_the_deadlock_is_back():
    result = run(Variant("v", frozenset(), frozenset(), ""), keep_going=True, seed=4)
    assert "deadlock" in result.kinds()


def test_without_the_2024_quiesce_fix_a_request_inserted_during_unquiesce_is_stranded():
    """The explorer found this one by itself in `fixed`: fio-1 sees the queue
    quiesced, the reset work unquiesces and finds nothing pending, then fio-1
    inserts its request on hctx->dispatch without running the queue.  Muchun
    Song's 2024 fix (run the queue after that insert) removes it."""
    from blkrace.block.blk_mq import QUIESCE_INSERT_RERUN

    without = Variant("v", NVME.variants["fixed"].patches - {QUIESCE_INSERT_RERUN.name}, frozenset(), "")
    result = run(without, schedules=6000, seed=1)
    assert result.kinds() == ["stall"]
    assert "on hctx0->dispatch, never dispatched again" in result.findings[0].violation.message
    assert run(NVME.variants["fixed"], schedules=2000, seed=1).findings == []


def test_start_queues_in_teardown_spins_the_resubmission_into_a_soft_lockup():
    """Sagi's experiment: the queues restart in the teardown, the deadlock is
    gone, and after the reset the resubmission spins in the retry loop against
    nvme_update_ns_info()'s freeze on the CPU that has to run the completion."""
    variant = NVME.variants["start-queues-in-teardown"]
    result = run(variant)
    assert result.kinds() == ["soft_lockup"]
    v = result.findings[0].violation
    assert v.message.startswith("BUG: soft lockup - CPU#") and "stuck for 2" in v.message
    text = "\n".join(v.detail)
    assert "nvme_ns_head_submit_bio" in text
    replayed, _, _ = replay(NVME.builder(variant), result.findings[0].choices, max_steps=NVME.max_steps)
    waits = "\n".join(f.function for _, _, _, frames in replayed.blocked for f in frames)
    assert "nvme_update_ns_info" in waits and "blk_mq_freeze_queue_wait" in waits


def test_the_soft_lockup_needs_the_restart_and_a_non_preemptible_kernel():
    variant = NVME.variants["start-queues-in-teardown"]
    # Toggle off: hch's patch alone deadlocks first and does not spin here.
    without = Variant("v", variant.patches - {START_QUEUES_IN_TEARDOWN.name}, frozenset(), "")
    assert "soft_lockup" not in run(without, schedules=1500, keep_going=True).kinds()
    # With full preemption the completion work gets its CPU and the freeze drains.
    assert run(variant, schedules=1500, preempt=True).findings == []
