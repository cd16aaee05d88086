"""blk-mq quiesce against direct issue: the 2024 race, on its own.

A submitter sees the queue quiesced in __blk_mq_try_issue_directly(); the
unquiescer clears the flag and runs the queue, finding nothing pending; the
submitter then inserts its request without running the queue, and it stays
on hctx->dispatch.  2003ee8a9aa1 (toggle blk-mq-quiesce-insert-rerun) runs
the queue after that insert.  The nvme scenario found this one first; there
the second unquiesce of nvme_start_ctrl() now mostly hides it, so it is
checked here on a null_blk queue.
"""

from blkrace.block import blk_mq
from blkrace.block.blk_mq import QUIESCE_INSERT_RERUN
from blkrace.drivers.null_blk import null_add_dev
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


def _build(patches):
    def build(ex):
        k = boot(ex, nr_cpus=2, patches=patches, hotplug=False)
        nb = null_add_dev(k, nr_hw_queues=1, hw_queue_depth=2, completion_us=100, managed_irqs=False)

        async def quiesce_for_a_while(k):
            await blk_mq.blk_mq_quiesce_queue(nb.q)
            await blk_mq.blk_mq_unquiesce_queue(nb.q)

        task_run_on_cpu(k, quiesce_for_a_while, "admin", 0)
        task_run_on_cpu(k, sync_reader, "fio", 1, nb.q, 1)
        ex.checkers.append(lambda ex: check_bios(nb.q, ex))

    return build


def test_without_2003ee8a9aa1_a_request_inserted_while_unquiescing_is_stranded():
    found = explore(_build(()), make_strategy("dfs", preemption_bound=2), 5000, stop_on_first=True)
    assert found.kinds() == ["stall"]
    assert "hctx0->dispatch" in found.findings[0].violation.message
    clean = explore(_build({QUIESCE_INSERT_RERUN.name}), make_strategy("dfs", preemption_bound=2), 5000)
    assert clean.findings == [] and clean.exhausted
