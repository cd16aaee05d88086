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
    # Toggle off: the same kernel waits for a tag instead (and deadlocks, as buggy), no I/O error.
    from blkrace.drivers.nvme import MPATH_REQ_NOWAIT

    without = Variant("v", NVME.variants["nowait"].patches - {MPATH_REQ_NOWAIT.name}, frozenset(), "")
    assert "io_error" not in run(without, schedules=1500, keep_going=True).kinds()


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
    # The scan waits in nvme_update_ns_info()'s freeze: asleep on the drain,
    # or woken and kept off its CPU by a spinner (state R), depending on the run.
    waits = "\n".join(f.function for _, _, _, frames, _ in replayed.blocked for f in frames)
    assert "nvme_update_ns_info" in waits and "blk_mq_freeze_queue_wait" in waits


def test_start_queues_in_teardown_trades_the_deadlock_for_the_spin():
    """Toggle off (hch's patch alone): the blk_mq_get_tag() deadlock.  Toggle
    on: no deadlock, the spin instead, a soft lockup only on a non-preemptible
    kernel.  With full preemption no CPU is held, but the requeue work spinning
    in CPU0's highpri worker pool can still keep io_work (queued behind it in
    that pool: concurrency management starts no second worker for a running
    one, preempted or not) from completing the requests the scan's freeze
    waits for: a workqueue livelock (step bound), first at schedule 1017."""
    variant = NVME.variants["start-queues-in-teardown"]
    without = Variant("v", variant.patches - {START_QUEUES_IN_TEARDOWN.name}, frozenset(), "")
    assert "deadlock" in run(without, schedules=1500, keep_going=True).kinds()
    kinds = run(variant, schedules=1500, keep_going=True).kinds()
    assert "deadlock" not in kinds and "soft_lockup" in kinds
    preempted = run(variant, schedules=1500, preempt=True, keep_going=True)
    assert set(preempted.kinds()) <= {"livelock"}
    for f in preempted.findings:
        assert "kworker/0:0H" in f.violation.message


def test_a_refused_connect_is_retried_after_reconnect_delay():
    """The target refuses the first connect: the reset fails, connect_work
    retries reconnect_delay (10 s) later, the controller comes back LIVE and
    every bio completes (fixed: no violation)."""
    from blkrace.engine.campaign import run_once

    seen = []
    build = NVME.builder(NVME.variants["fixed"])
    for seed in range(12):
        res, _ = run_once(build, make_strategy("random", seed), 0, max_steps=NVME.max_steps, traced=True)
        assert res.violations == []
        events = [st.what for st in res.trace if st.kind == "event"]
        if any("failed to connect" in e for e in events):
            seen.append(seed)
            assert any("Reconnecting in 10 seconds" in e for e in events)
            # out_fail counts the reset as attempt 1, connect_work as 2 (as the kernel prints)
            assert any("Successfully reconnected (2 attempt)" in e for e in events)
            assert res.time_ns >= 10 * 10**9
    assert seen, "no run refused a connect"


def test_without_1b95e8179160_deleting_a_controller_after_a_failed_reset_hangs():
    """ctrl_loss_tmo spent: the refused reconnect deletes nvme0.  Its reset left
    the I/O queue quiesced with a request parked on it, and blk_cleanup_queue()
    waits for that request forever.  Ming Lei's 1b95e8179160 unquiesces the
    queues in nvme_remove_namespaces() first."""
    import dataclasses

    from blkrace.drivers.nvme import REMOVE_UNQUIESCE

    short = dataclasses.replace(NVME, ctrl_loss_tmo=10)

    def explore_short(patches, schedules):
        build = short.builder(Variant("v", patches, frozenset(), ""))
        return explore(build, make_strategy("pct", 0), schedules, stop_on_first=False, max_steps=short.max_steps)

    base = NVME.variants["fixed"].patches
    hang = explore_short(base, 300)
    waits = [
        f.violation
        for f in hang.findings
        if f.violation.kind in ("stall", "deadlock") and "blk_cleanup_queue" in "\n".join(f.violation.detail)
    ]
    assert waits, hang.kinds()
    fixed = explore_short(base | {REMOVE_UNQUIESCE.name}, 1500)
    # What is left is the bio that picked nvme0 just before its removal and
    # enters the dying queue after it (EIO): noted, not analysed.
    assert set(fixed.kinds()) <= {"io_error"}


def test_a_timeout_on_a_live_controller_starts_error_recovery():
    """A target that answers after 60 s: at 30 s the request times out on a
    LIVE controller, err_work tears the queues down (the request fails over to
    the head), reconnects 10 s later, resubmits, and times out again; the
    reader is a hung task after 120 s."""
    from blkrace.drivers.nvme import NVME_ANA_OPTIMIZED, nvme_alloc_subsystem
    from blkrace.engine.campaign import run_once
    from blkrace.kernel.boot import boot
    from blkrace.kernel.sched import task_run_on_cpu
    from blkrace.scenarios.workloads import sync_reader

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)
        head, _ = nvme_alloc_subsystem(
            k, nr_ctrls=1, queue_depth=1, latency_us=60_000_000, ana_states=[NVME_ANA_OPTIMIZED]
        )
        task_run_on_cpu(k, sync_reader, "fio-0", 0, head.disk, 1)

    result, _ = run_once(build, make_strategy("pct", 0), 0, max_steps=20_000, traced=True)
    events = [st.what for st in result.trace if st.kind == "event"]
    assert any("timeout request" in e for e in events)
    assert any("starting error recovery" in e for e in events)
    assert any("Reconnecting in 10 seconds" in e for e in events)
    assert sum("timeout request" in e for e in events) >= 2
    assert [v.kind for v in result.violations] == ["hung_task"]
    assert "fio-0 blocked for more than 120 seconds" in result.violations[0].message
