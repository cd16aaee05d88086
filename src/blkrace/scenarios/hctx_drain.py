"""hctx-drain: seed 000, "blk-mq: drain I/O when all CPUs in a hctx are offline" (bf0beec0607d, v5.8).

Topology: 4 CPUs; a null_blk-like disk with 2 hw queues (CPUs 0-1 and 2-3),
each with a managed interrupt affine to its CPUs, 100 us completions, and a
loop device over it with 2 hw queues mapped the same way (a multi-queue
stacking device, as dm-rq with dm_mq_nr_hw_queues=2 would be), its worker
starting on CPU 3.  Workload: "fio-2", a process on CPU 2, reads the disk
twice synchronously; "fio-3", on CPU 3, reads the loop device twice.  The
control task on CPU 0 takes CPUs 2 and 3 offline (hctx1 of both queues loses
its last CPU) and brings them back.  Where the hotplug falls in the I/O is
the explorer's choice.

Without the patch, a request in flight on the disk's hctx1 when CPU 3 goes
can only complete through hctx1's interrupt, which __cpu_disable() shuts
down: the completion is lost and the request times out after 30 s (v5.8's
null_blk then completes it, with the status it had).  With it,
CPUHP_AP_BLK_MQ_ONLINE marks hctx1 INACTIVE and waits for its requests before
the interrupt goes; allocations that meet INACTIVE retry on a live hctx.

Every variant builds the same machine; they differ only in toggles.
``fixed-without-stacking`` is bf0beec0607d without its loop.c hunk
(``blk-mq-stacking-flag``): loop's hctx1 is then drained as well, before the
disk's (cpuhp runs the newest instance first).
"""

from __future__ import annotations

from blkrace.block.blk_mq import RECHECK_INACTIVE_AFTER_INIT, blk_mq_init_cpuhp
from blkrace.block.blk_mq_tag import DRAIN_INACTIVE_HCTX, DRAIN_STACKING_FLAG
from blkrace.drivers.loop import loop_add
from blkrace.drivers.null_blk import null_add_dev
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import hotplug, sync_reader


class HctxDrain(Scenario):
    def build(self, execution, variant):
        k = boot(execution, nr_cpus=4, patches=variant.patches)
        blk_mq_init_cpuhp(k)
        nb = null_add_dev(k, nr_hw_queues=2, hw_queue_depth=4, completion_us=100, rq_affinity=1)
        lo = loop_add(k, nb.q, worker_cpu=3, nr_hw_queues=2)
        task_run_on_cpu(k, sync_reader, "fio-2", 2, nb.q, 2)
        task_run_on_cpu(k, sync_reader, "fio-3", 3, lo.q, 2)
        task_run_on_cpu(k, hotplug, "hotplug", 0, [2, 3])
        for q in (nb.q, lo.q):
            execution.checkers.append(lambda ex, q=q: check_bios(q, ex))


PATCHED = frozenset({DRAIN_INACTIVE_HCTX.name, DRAIN_STACKING_FLAG.name})

SCENARIO = HctxDrain(
    name="hctx-drain",
    summary="the last CPU of a hw queue goes offline with I/O in flight: its managed IRQ is shut down, "
    "the completion lost (seed 000)",
    seed="000_b646876222f14e49.txt",
    variants={
        "buggy": Variant(
            "buggy",
            frozenset(),
            frozenset({"io_error"}),
            "bf0beec0607d reverted: a completion raised after the interrupt's shutdown is lost; the request times out "
            "after 30 s (v5.8 null_blk then completes it)",
        ),
        "fixed": Variant(
            "fixed",
            PATCHED,
            frozenset({"io_error"}),
            "bf0beec0607d: the hctx goes INACTIVE and is drained before its interrupt is shut down, but the drain "
            "counts a request only once blk_mq_rq_ctx_init() has set rq->mq_hctx: a submitter preempted on the "
            "dying CPU between its tag (INACTIVE not yet set) and that init is missed, and its request is issued "
            "after the interrupt is gone (found by the explorer; no upstream fix known)",
            # The drain reads each request at a step of its own, as the kernel's
            # iterator does: the window is narrow (found after 801-8382
            # schedules over seeds 0-2).
            schedules=20_000,
        ),
        "fixed-recheck": Variant(
            "fixed-recheck",
            PATCHED | {RECHECK_INACTIVE_AFTER_INIT.name},
            frozenset(),
            "bf0beec0607d, and INACTIVE checked again once the request is initialised (a proposal, toggle "
            "blk-mq-recheck-inactive-after-init): either the drain sees the request or the allocation retries",
            schedules=10_000,  # more than `fixed` needs to show its window with seed 0
        ),
        "fixed-without-stacking": Variant(
            "fixed-without-stacking",
            frozenset({DRAIN_INACTIVE_HCTX.name, RECHECK_INACTIVE_AFTER_INIT.name}),
            frozenset(),
            "fixed-recheck without bf0beec0607d's loop.c hunk: loop (2 hw queues, as dm-rq with "
            "dm_mq_nr_hw_queues=2) over the disk lacks BLK_MQ_F_STACKING, so its hctx is drained too; no deadlock "
            "arises (see tests/test_stacking_drain.py for why)",
        ),
    },
)
