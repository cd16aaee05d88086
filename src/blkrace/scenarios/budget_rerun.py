"""budget-rerun: seed 001, "blk-mq: Rerun dispatching in the case of budget contention".

Topology: 4 CPUs, a SCSI disk with 2 hw queues (CPUs 0-1 and 2-3) sharing a
queue depth of 1 (the dispatch budget), BFQ as the I/O scheduler.
Workload: two processes doing asynchronous direct-I/O reads (io_submit()
plugs around the submission, so blk_finish_plug() runs the hw queue inline
on their CPU while kblockd may run the same or the other hw queue), then
waiting for the completion (io_getevents()); "fio-a" on CPU 1 reads twice,
"fio-b" on CPU 3 reads once.  BFQ's idling decisions are the explorer's
choices; the device answers after 100 us.

The end-of-run check only asks whether every bio completed.  Whether a
dispatcher ends up holding the budget with nothing to send while every other
run gives up, and whether anyone reruns the queue afterwards, is up to the
modelled blk-mq, BFQ and SCSI code and the explorer's schedule.
"""

from __future__ import annotations

from blkrace.block.bfq_iosched import bfq_init_queue
from blkrace.block.blk_core import blk_finish_plug, blk_plug, blk_start_plug, submit_bio
from blkrace.block.blk_mq import blk_mq_alloc_sched_tags
from blkrace.block.blk_mq_sched import BUDGET_RERUN
from blkrace.block.types import REQ_OP_READ, REQ_SYNC, bio
from blkrace.drivers.scsi import scsi_add_device
from blkrace.kernel.locking.wait import complete, completion, wait_for_completion
from blkrace.kernel.machine import Kernel
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.kernel.workqueue import init_workqueues
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.checks import check_bios


async def blkdev_bio_end_io(k, b):
    """blkdev_bio_end_io(), fs/block_dev.c: the aio completes; wake io_getevents()."""
    await complete(k, b.bi_private)


async def aio_reader(k, q, nr_reads):
    """A process reading with O_DIRECT through io_submit(): io_submit() plugs
    (blk_start_plug ... blk_finish_plug around __blkdev_direct_IO()), then
    io_getevents() waits for the completion."""
    ts = k.current
    for i in range(nr_reads):
        done = completion(f"{ts.comm}:aio#{i}.done")
        b = bio(f"bio:{ts.comm}#{i}", REQ_OP_READ | REQ_SYNC, blkdev_bio_end_io, done)
        b.bi_disk = q
        plug = blk_plug()
        blk_start_plug(k, plug)
        await submit_bio(k, b)
        await blk_finish_plug(k, plug)
        await wait_for_completion(k, done)


class BudgetRerun(Scenario):
    def build(self, execution, variant):
        k = Kernel(execution, nr_cpus=4, patches=variant.patches)
        init_workqueues(k)
        sdev = scsi_add_device(k, nr_hw_queues=2, queue_depth=1, can_queue=32, latency_us=100)
        q = sdev.request_queue
        blk_mq_alloc_sched_tags(q, 64)
        bfq_init_queue(q)
        task_run_on_cpu(k, aio_reader, "fio-a", 1, q, 2)
        task_run_on_cpu(k, aio_reader, "fio-b", 3, q, 1)
        execution.checkers.append(lambda ex: check_bios(q, ex))


SCENARIO = BudgetRerun(
    name="budget-rerun",
    summary="a dispatcher holds the queue-wide SCSI budget with nothing to send; nobody reruns: I/O stall (seed 001)",
    seed="001_42713fea8f09e91c.txt",
    variants={
        "buggy": Variant(
            "buggy",
            frozenset(),
            frozenset({"stall"}),
            "a0823421a4d7 reverted: a NULL dispatch puts the budget without a rerun",
        ),
        "fixed": Variant(
            "fixed",
            frozenset({BUDGET_RERUN.name}),
            frozenset(),
            "a0823421a4d7 applied: every NULL dispatch reruns all hw queues after 3 ms",
        ),
    },
)
