"""quiesce-order: the memory-ordering half of the 2024 quiesce/insert race,
"block: fix ordering between checking QUEUE_FLAG_QUIESCED request adding"
(6bda857bcbb8, Muchun Song, v6.12), under the ``lkmm`` memory model.

Topology: 2 CPUs; a null_blk disk with one hw queue (depth 2), no scheduler.
Workload: "admin" on CPU 0 quiesces the queue and unquiesces it; "fio" on
CPU 1 reads once, synchronously, so its request is issued directly.  Both
companions of the sequentially consistent race are applied: 2003ee8a9aa1
(run the queue after inserting a request that met a quiesced queue) and
e70feb8b3e68 (quiesce depth under q->queue_lock, as every kernel since v5.16).

The race is store buffering (the commit's own diagram):

    CPU1 (fio)                              CPU0 (admin)
    insert rq on hctx->dispatch   1) store  blk_queue_flag_clear(QUIESCED)  3) store
    blk_mq_run_hw_queue():                  blk_mq_run_hw_queues():
      blk_queue_quiesced()        2) load     blk_mq_hctx_has_pending()     4) load

With no full barrier between 1) and 2), nor between 3) and 4), both loads
may read the old values: fio sees the queue still quiesced, admin sees
nothing pending, and the request stays on hctx->dispatch (a stall).  Under
``sc`` this cannot happen.  6bda857bcbb8 re-checks under q->queue_lock,
which the unquiescer's clear is made under: one of the two then sees the
other's store.
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.blk_mq import CONCURRENT_QUIESCE, QUIESCE_INSERT_RERUN, QUIESCE_ORDERING
from blkrace.drivers.null_blk import null_add_dev
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


async def quiesce_for_a_while(k, q):
    await blk_mq.blk_mq_quiesce_queue(q)
    await blk_mq.blk_mq_unquiesce_queue(q)


class QuiesceOrder(Scenario):
    def build(self, execution, variant):
        k = boot(execution, nr_cpus=2, patches=variant.patches, hotplug=False)
        nb = null_add_dev(k, nr_hw_queues=1, hw_queue_depth=2, completion_us=100, managed_irqs=False)
        task_run_on_cpu(k, quiesce_for_a_while, "admin", 0, nb.q)
        task_run_on_cpu(k, sync_reader, "fio", 1, nb.q, 1)
        execution.checkers.append(lambda ex: check_bios(nb.q, ex))


BASE = frozenset({QUIESCE_INSERT_RERUN.name, CONCURRENT_QUIESCE.name})

SCENARIO = QuiesceOrder(
    name="quiesce-order",
    summary="a request inserted while the queue is unquiesced, both sides reading stale values "
    "(store buffering) under lkmm (6bda857bcbb8)",
    seed="6bda857bcbb8",
    default_schedules=2000,
    variants={
        "buggy": Variant(
            "buggy",
            BASE,
            frozenset({"stall"}),
            "6bda857bcbb8 reverted, under lkmm: the submitter reads QUIESCED still set, the unquiescer "
            "reads hctx->dispatch still empty; the request is stranded",
            memory_model="lkmm",
        ),
        "fixed": Variant(
            "fixed",
            BASE | {QUIESCE_ORDERING.name},
            frozenset(),
            "6bda857bcbb8, under lkmm: the re-check under q->queue_lock sees the unquiescer's clear, or the "
            "unquiescer's lock sees the insert",
            memory_model="lkmm",
        ),
        "buggy-sc": Variant(
            "buggy-sc",
            BASE,
            frozenset(),
            "6bda857bcbb8 reverted, under sc: a sequentially consistent machine cannot lose both loads",
            memory_model="sc",
        ),
    },
)
