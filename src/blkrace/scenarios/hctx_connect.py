"""hctx-connect: bf0beec0607d's drain against an allocation from another CPU.

Topology: 4 CPUs; a null_blk-like disk with 2 hw queues (CPUs 0-1 and 2-3),
each with a managed interrupt affine to its CPUs, 100 us completions, no I/O
scheduler.  Workload: a kworker on CPU 0 sends a command tied to hw queue 1,
as nvme-fabrics' connect of an I/O queue does (nvmf_connect_io_queue() ->
__nvme_submit_sync_cmd() -> blk_mq_alloc_request_hctx(..., BLK_MQ_REQ_NOWAIT,
1) -> blk_execute_rq()); the control task on CPU 0 takes CPUs 2 and 3 offline
and brings them back.  A kernel without preemption (CONFIG_PREEMPT_NONE): no
window here needs a task preempted.

blk_mq_alloc_request_hctx() takes the software queue of hw queue 1's first
online CPU, which while CPUHP_AP_BLK_MQ_ONLINE drains hw queue 1 is CPU 3,
the dying one; the allocation itself runs on CPU 0.  Whether the drain sees
the command, and whether the command sees INACTIVE, is up to the modelled
blk-mq code, its memory ordering and the explorer's schedule.

The end-of-run check asks whether the command completed without the request
timeout's help.
"""

from __future__ import annotations

from blkrace.block.blk_exec import blk_execute_rq
from blkrace.block.blk_mq import (
    DRAIN_COUNTS_TAGS,
    RECHECK_INACTIVE_AFTER_INIT,
    blk_mq_alloc_request_hctx,
    blk_mq_free_request,
    blk_mq_init_cpuhp,
)
from blkrace.block.blk_mq_tag import DRAIN_INACTIVE_HCTX, TAG_INACTIVE_FULL_BARRIER
from blkrace.block.types import BLK_MQ_REQ_NOWAIT, RQF_TIMED_OUT
from blkrace.drivers.null_blk import null_add_dev
from blkrace.engine import Violation, choose
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import msleep, task_run_on_cpu
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.workloads import hotplug

REQ_OP_DRV_OUT = 35  # nvme_req_op() of a fabrics command that sends data


async def nvmf_connect_io_queue(k, q, qid, result):
    """nvmf_connect_io_queue(), drivers/nvme/host/fabrics.c, through
    __nvme_submit_sync_cmd() (drivers/nvme/host/core.c): allocate on the
    queue's hw context without waiting, execute, free."""
    await msleep(k, await choose(3, "connect after (ms)"))  # when the reconnect work runs
    rq = await blk_mq_alloc_request_hctx(q, REQ_OP_DRV_OUT, BLK_MQ_REQ_NOWAIT, qid - 1)
    if isinstance(rq, int):
        result.append(("no request", rq))  # the caller retries the connect later: not a failure here
        return
    await blk_execute_rq(rq, False)
    result.append(("timed out" if rq.rq_flags & RQF_TIMED_OUT else "done", rq.name))
    await blk_mq_free_request(rq)


def check_connect(result):
    for what, name in result:
        if what == "timed out":
            yield Violation(
                "io_error",
                f"the connect command {name} on hctx1 timed out after 30 s and was completed by the timeout handler",
                origin="io_error:timeout",
            )


class HctxConnect(Scenario):
    def build(self, execution, variant):
        k = boot(execution, nr_cpus=4, patches=variant.patches)
        blk_mq_init_cpuhp(k)
        nb = null_add_dev(k, nr_hw_queues=2, hw_queue_depth=4, completion_us=100, rq_affinity=1)
        result = []
        task_run_on_cpu(k, nvmf_connect_io_queue, "kworker/0:1", 0, nb.q, 2, result)
        task_run_on_cpu(k, hotplug, "hotplug", 0, [2, 3])
        execution.checkers.append(lambda ex: check_connect(result))


PATCHED = frozenset({DRAIN_INACTIVE_HCTX.name})

SCENARIO = HctxConnect(
    name="hctx-connect",
    summary="a command tied to a hw queue is allocated from another CPU while the queue's last CPU goes "
    "offline: the drain misses it (seed 000's patch)",
    seed="000_b646876222f14e49.txt",
    preempt=False,
    variants={
        "fixed": Variant(
            "fixed",
            PATCHED,
            frozenset({"io_error"}),
            "bf0beec0607d: the drain counts a request only once blk_mq_rq_ctx_init() has set rq->mq_hctx; an "
            "allocation on another CPU between its tag and that init is missed without any preemption, and the "
            "command is issued after hw queue 1's interrupt is gone",
            schedules=10_000,  # PCT seed 0 finds it after about 2,100
        ),
        "fixed-recheck": Variant(
            "fixed-recheck",
            PATCHED | {RECHECK_INACTIVE_AFTER_INIT.name},
            frozenset(),
            "bf0beec0607d and the recheck of INACTIVE after the init, behind a full barrier (toggle "
            "blk-mq-recheck-inactive-after-init)",
        ),
        "drain-tags": Variant(
            "drain-tags",
            PATCHED | {DRAIN_COUNTS_TAGS.name},
            frozenset(),
            "bf0beec0607d with a drain that counts allocated tags (a proposal, toggle blk-mq-drain-counts-tags): "
            "the allocation is seen from its tag on",
        ),
        "drain-tags-lkmm": Variant(
            "drain-tags-lkmm",
            PATCHED | {DRAIN_COUNTS_TAGS.name},
            frozenset({"io_error"}),
            "drain-tags under the kernel's memory model: the drain's smp_mb__after_atomic() is said to pair with "
            "test_and_set_bit_lock(), an ACQUIRE; the drain misses the tag while the allocator misses INACTIVE "
            "(store buffering; raised in bf0beec0607d's review, never settled)",
            memory_model="lkmm",
            schedules=5_000,
        ),
        "drain-tags-mb-lkmm": Variant(
            "drain-tags-mb-lkmm",
            PATCHED | {DRAIN_COUNTS_TAGS.name, TAG_INACTIVE_FULL_BARRIER.name},
            frozenset(),
            "drain-tags-lkmm with smp_mb() between taking the tag and testing INACTIVE (a proposal, toggle "
            "blk-mq-tag-inactive-smp-mb)",
            memory_model="lkmm",
        ),
    },
)
