"""Seed 000's stacking deadlock: why the model cannot produce it, pinned down.

bf0beec0607d sets BLK_MQ_F_STACKING on loop and dm-rq "so we don't need to
wait for completion of in-flight requests from these drivers to avoid a
potential dead-lock".  Without the flag, a stacking device's hctx that loses
its last CPU is drained like any other: cpuhp/N waits in
blk_mq_hctx_notify_offline() until the stacking device's requests complete,
which needs their I/O on the lower disk.

The order of the drains is the order of the cpuhp instances, newest first:
a dm-rq device is created after the disks below it and is drained first
(while the disk still takes I/O); loop devices created at boot are older
than a disk probed later, so that disk is drained first and is INACTIVE when
loop's worker submits below it.  An allocation that meets an INACTIVE hctx
sleeps 3 ms and retries "as CPU hotplug should have migrated us to an online
CPU by now": the retry lands on a live hctx because a task waking on an
inactive CPU is placed on an active one (is_cpu_allowed() in
select_task_rq(), the model's wake hook).  Only if that placement did not
happen would loop's worker retry on the dying CPU forever while cpuhp/N waits
for it: the hang the flag avoids.  These tests show each of those facts on
the hctx-drain machine (loop with 2 hw queues over a 2-queue disk, the
loop hctx mapped to the dying CPU 3).
"""

from blkrace.block.blk_mq import blk_mq_init_cpuhp
from blkrace.block.blk_mq_tag import DRAIN_INACTIVE_HCTX, DRAIN_STACKING_FLAG
from blkrace.drivers.loop import loop_add
from blkrace.drivers.null_blk import null_add_dev
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.cpuhp import CPUHP_AP_BLK_MQ_ONLINE
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import hotplug, sync_reader

DRAIN = frozenset({DRAIN_INACTIVE_HCTX.name})
DRAIN_AND_FLAG = DRAIN | {DRAIN_STACKING_FLAG.name}


def _builder(patches, disk_first, placement=True):
    def build(ex):
        k = boot(ex, nr_cpus=4, patches=patches)
        blk_mq_init_cpuhp(k)
        nb = null_add_dev(k, nr_hw_queues=2, hw_queue_depth=4, completion_us=100, rq_affinity=1)
        lo = loop_add(k, nb.q, worker_cpu=3, nr_hw_queues=2)
        instances = k.cpuhp_hp_states[CPUHP_AP_BLK_MQ_ONLINE].instances
        if disk_first:
            # As if the disk had been probed after loop0 was created at boot:
            # its hctxs are newer, first on the hlist.
            instances.sort(key=lambda hctx: hctx.queue is lo.q)
        if not placement:
            ex.wake_hook = None  # no select_task_rq() on wake-up: tasks stay on their CPU
        task_run_on_cpu(k, sync_reader, "fio-2", 2, nb.q, 2)
        task_run_on_cpu(k, sync_reader, "fio-3", 3, lo.q, 2)
        task_run_on_cpu(k, hotplug, "hotplug", 0, [2, 3])
        for q in (nb.q, lo.q):
            ex.checkers.append(lambda ex, q=q: check_bios(q, ex))
        ex.shared["instances"] = [h.queue.name for h in instances]

    return build


def _explore(build, schedules):
    return explore(build, make_strategy("pct", 0), schedules, stop_on_first=True, max_steps=20_000)


def test_the_scenario_drains_loop_first_as_dm_rq_over_its_disks_would():
    build = _builder(DRAIN, disk_first=False)
    from blkrace.engine.campaign import run_once

    _, ex = run_once(build, make_strategy("pct", 0), 0, max_steps=20_000)
    assert ex.shared["instances"] == ["loop0", "loop0", "nullb0", "nullb0"]


def test_disk_drained_first_without_the_flag_is_still_clean():
    result = _explore(_builder(DRAIN, disk_first=True), 400)
    assert result.findings == []


def test_the_hang_needs_a_retry_that_stays_on_the_dying_cpu():
    # Take away the wake-up placement and loop's worker retries its lower
    # allocation on CPU 3's INACTIVE hctx for ever while cpuhp/3 waits for
    # loop's request: found at once.
    result = _explore(_builder(DRAIN, disk_first=True, placement=False), 50)
    assert result.kinds() == ["livelock"]
    assert "cpuhp/3" in result.findings[0].violation.message
    assert "loop0" in result.findings[0].violation.message


def test_the_flag_avoids_that_hang():
    # With BLK_MQ_F_STACKING, loop's hctx is not drained: the same machine,
    # placement still off, is clean.
    result = _explore(_builder(DRAIN_AND_FLAG, disk_first=True, placement=False), 300)
    assert result.findings == []
