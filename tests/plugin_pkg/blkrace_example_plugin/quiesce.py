"""quiesce-insert-null: 2003ee8a9aa1's quiesce form on a null_blk queue.

A submitter sees the queue quiesced in __blk_mq_try_issue_directly(); the
unquiescer clears the flag and runs the queue, finding nothing pending; the
submitter then puts its request on hctx->dispatch without running the queue.
"""

from blkrace.block import blk_mq
from blkrace.block.blk_mq import QUIESCE_INSERT_RERUN
from blkrace.drivers.null_blk import null_add_dev
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.base import Param, Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


async def quiesce_for_a_while(k, q):
    """An admin quiescing the queue and unquiescing it (a driver's reset, say)."""
    await blk_mq.blk_mq_quiesce_queue(q)
    await blk_mq.blk_mq_unquiesce_queue(q)


class QuiesceInsert(Scenario):
    def build(self, execution, variant):
        k = boot(execution, nr_cpus=2, patches=variant.patches, hotplug=False)
        nb = null_add_dev(k, nr_hw_queues=1, hw_queue_depth=2, completion_us=100, managed_irqs=False)
        task_run_on_cpu(k, quiesce_for_a_while, "admin", 0, nb.q)
        task_run_on_cpu(k, sync_reader, "fio", 1, nb.q, variant.params["nr_reads"])
        execution.checkers.append(lambda ex: check_bios(nb.q, ex))


VARIANTS = {
    "buggy": Variant("buggy", frozenset(), frozenset({"stall"}), "2003ee8a9aa1 reverted"),
    "fixed": Variant("fixed", frozenset({QUIESCE_INSERT_RERUN.name}), frozenset(), "2003ee8a9aa1 applied"),
}

SCENARIO = QuiesceInsert(
    name="quiesce-insert-null",
    summary="a request inserted while the queue is unquiesced is stranded on hctx->dispatch (2003ee8a9aa1)",
    seed="https://git.kernel.org/linus/2003ee8a9aa1",
    variants=VARIANTS,
    params={"nr_reads": Param(1, "reads of the one reader")},
    default_schedules=500,
    max_delay_ns=1_000_000,  # 1 ms: an engine limit of its own, shown by `blkrace list`
)
