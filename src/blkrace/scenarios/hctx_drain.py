"""hctx-drain: seed 000, "blk-mq: drain I/O when all CPUs in a hctx are offline" (bf0beec0607d, v5.8).

Topology: 4 CPUs; a null_blk-like disk with 2 hw queues (CPUs 0-1 and 2-3),
each with a managed interrupt affine to its CPUs, 100 us completions.
Workload: "fio-2" and "fio-3", processes on CPUs 2 and 3, each read twice
synchronously; the control task on CPU 0 takes CPUs 2 and 3 offline (hctx1
loses its last CPU) and brings them back.  Where the hotplug falls in the
I/O is the explorer's choice.

Without the patch, a request in flight on hctx1 when CPU 3 goes can only
complete through hctx1's interrupt, which __cpu_disable() shuts down: the
completion is lost and the request times out after 30 s (io_error).  With
it, CPUHP_AP_BLK_MQ_ONLINE marks hctx1 INACTIVE and waits for its requests
before the interrupt goes; allocations that meet INACTIVE retry on a live hctx.

``fixed-without-stacking`` puts a loop device over the disk with
BLK_MQ_F_STACKING left off (the drain then waits for loop's requests too).
"""

from __future__ import annotations

from blkrace.block.blk_mq import blk_mq_init_cpuhp
from blkrace.block.blk_mq_tag import DRAIN_INACTIVE_HCTX
from blkrace.drivers.loop import loop_add
from blkrace.drivers.null_blk import null_add_dev
from blkrace.kernel.boot import boot
from blkrace.kernel.cpuhp import cpu_down, cpu_up
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


async def hotplug(k, cpus):
    """Offline the CPUs one by one, then online them in reverse order."""
    for cpu in cpus:
        await cpu_down(k, cpu)
    for cpu in reversed(cpus):
        await cpu_up(k, cpu)


class HctxDrain(Scenario):
    def build(self, execution, variant):
        k = boot(execution, nr_cpus=4, patches=variant.patches)
        blk_mq_init_cpuhp(k)
        nb = null_add_dev(k, nr_hw_queues=2, hw_queue_depth=4, completion_us=100, rq_affinity=1)
        disks = [nb.q]
        if "stacking" in variant.name:
            lo = loop_add(k, nb.q, stacking=False, worker_cpu=3, nr_hw_queues=2)
            target = lo.q
            disks.append(lo.q)
        else:
            target = nb.q
        task_run_on_cpu(k, sync_reader, "fio-2", 2, target, 2)
        task_run_on_cpu(k, sync_reader, "fio-3", 3, target, 2)
        task_run_on_cpu(k, hotplug, "hotplug", 0, [2, 3])
        for q in disks:
            execution.checkers.append(lambda ex, q=q: check_bios(q, ex))


PATCHED = frozenset({DRAIN_INACTIVE_HCTX.name})

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
            "bf0beec0607d reverted: a completion raised after the interrupt's shutdown is lost; the request times out",
        ),
        "fixed": Variant(
            "fixed",
            PATCHED,
            frozenset(),
            "bf0beec0607d: the hctx goes INACTIVE and is drained before its interrupt is shut down",
        ),
        "fixed-without-stacking": Variant(
            "fixed-without-stacking",
            PATCHED,
            frozenset(),
            "loop over the disk without BLK_MQ_F_STACKING: loop's single hw queue spans every CPU, so "
            "the drain never waits on it and no deadlock arises in this configuration",
        ),
    },
)
