"""tag-wait-shared: a request put back on hctx->dispatch to wait for a shared
driver tag, whose wake-up reruns nothing, under the ``lkmm`` memory model.
Two store-buffering windows meet here; the explorer found the second.

Topology: 2 CPUs; two null_blk disks on one tag set (null_blk's
shared_tags) with one hw queue and one driver tag (hw_queue_depth=1), so
both disks' hctxs are BLK_MQ_F_TAG_SHARED; BFQ on each (64 scheduler tags,
so a request is allocated and dispatched without a driver tag).
Workload: "fio-a" on CPU 0 reads nullb0 and "fio-b" on CPU 1 reads nullb1,
twice each in the variants (parameter ``reads``), synchronously.  The device
answers after 100 us by interrupt (parameter ``irqmode=none``: inside
queue_rq, as null_blk's irqmode=0).

A dispatcher that finds no driver tag goes through blk_mq_mark_tag_wait().
With shared tags the tag may be freed by the other disk's completion, which
reruns only its own hctx, so the hctx queues its ``dispatch_wait`` entry on
the tag bitmap's wait queue (counted in ``ws_active``) and retries the tag
under that queue's lock; the freeing completion's __sbq_wake_up() finds the
entry, and blk_mq_dispatch_wake() dequeues it and reruns the hctx.

1. 5266caaf5660 ("blk-mq: fix IO hang from sbitmap wakeup race", v6.8,
   CVE-2024-26671):

    dispatcher (blk_mq_mark_tag_wait)        completion (sbitmap_queue_clear)
    atomic_inc(&sbq->ws_active)              clear the tag bit
    __add_wait_queue(wq, wait)               smp_mb__after_atomic()
    blk_mq_get_driver_tag(): tag word        sbq_wake_ptr(): ws_active, waitqueue_active()

   Toggle ``blk-mq-tag-wait-shared-smp-mb`` is its smp_mb() after the add.
   The hang needs a failed retry on a rerun that already set SCHED_RESTART;
   PCT found it once (depth 5, seed 7, 27,119 schedules) with the other two
   barriers applied, far outside a variant's budget, so no variant expects
   it: tests/test_tag_wait_shared.py replays that schedule, with and
   without the toggle (bench/bench_tag_wait_shared.py searches for it).

2. The wake-up's rerun (found by the explorer, with 5266caaf5660 applied):

    dispatcher (blk_mq_dispatch_rq_list)     wake-up (blk_mq_dispatch_wake)
    splice rq onto hctx->dispatch            list_del_init(&wait->entry)
    [d7d8535f377e: smp_mb()]                 spin_unlock(); atomic_dec(ws_active)
    list_empty_careful(&wait->entry)         blk_mq_hctx_has_pending(): hctx->dispatch

   The dispatcher reads its entry still queued and leaves the rerun to the
   wake-up; the wake-up reads hctx->dispatch empty and reruns nothing.
   Toggle ``blk-mq-dispatch-wake-smp-mb`` (a proposal) orders the wake side;
   with d7d8535f377e it closes the window (herd7: LKMM Sometimes with either
   barrier alone, Never with both; tests/litmus/dispatchwake-rerun*).

A sequentially consistent machine loses neither (``buggy-sc``).  Nothing
steers the explorer to the windows: BFQ, the tag wait, the sbitmap wake path
and the reruns are the modelled v5.8 code paths.
"""

from __future__ import annotations

from blkrace.block.bfq_iosched import bfq_init_queue
from blkrace.block.blk_mq import DISPATCH_WAKE_MB, TAG_WAIT_SHARED_MB, blk_mq_alloc_sched_tags
from blkrace.block.blk_mq_sched import ORDER_DISPATCH_RESTART
from blkrace.drivers.null_blk import null_add_dev
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.base import Param, Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


class TagWaitShared(Scenario):
    def build(self, execution, variant):
        # boot()'s v5.8 kernel/smp.c unlocks an async csd before its call
        # (8053871d0f7f, v4.0), so a request completed by IPI can be reused at once.
        k = boot(execution, nr_cpus=2, patches=variant.patches, hotplug=False)
        us = None if variant.params["irqmode"] == "none" else 100
        nb0 = null_add_dev(k, "nullb0", nr_hw_queues=1, hw_queue_depth=1, completion_us=us, managed_irqs=False)
        nb1 = null_add_dev(k, "nullb1", completion_us=us, managed_irqs=False, tag_set=nb0.tag_set)
        reads = variant.params["reads"]
        for nb, comm, cpu in ((nb0, "fio-a", 0), (nb1, "fio-b", 1)):
            blk_mq_alloc_sched_tags(nb.q, 64)
            bfq_init_queue(nb.q)
            task_run_on_cpu(k, sync_reader, comm, cpu, nb.q, reads)
        execution.checkers.append(lambda ex: [v for nb in (nb0, nb1) for v in check_bios(nb.q, ex)])


SCENARIO = TagWaitShared(
    name="tag-wait-shared",
    summary="two disks on one tag: a request put back on hctx->dispatch for the shared tag's wake-up, "
    "whose rerun does not see it: store buffering in blk_mq_dispatch_wake() under lkmm (found, with "
    "5266caaf5660 applied)",
    seed="5266caaf5660",
    default_schedules=5000,
    params={
        "reads": Param(1, "reads per reader (fio-a on nullb0, CPU 0; fio-b on nullb1, CPU 1)"),
        "irqmode": Param(
            "irq",
            "how null_blk completes: irq (an interrupt 100 us later) or none (irqmode=0: inside queue_rq)",
            choices=("irq", "none"),
        ),
    },
    variants={
        "buggy": Variant(
            "buggy",
            frozenset(),
            frozenset({"stall"}),
            "v5.8 under lkmm, two reads each: a request put back on nullb1's hctx->dispatch waits for "
            "a wake-up that reruns nothing",
            params={"reads": 2},
            schedules=10_000,
            memory_model="lkmm",
        ),
        "5266caaf5660": Variant(
            "5266caaf5660",
            frozenset({TAG_WAIT_SHARED_MB.name}),
            frozenset({"stall"}),
            "5266caaf5660 applied, under lkmm: blk_mq_dispatch_wake() dequeues dispatch_wait and "
            "reruns the hctx only if blk_mq_hctx_has_pending() sees the request, which the "
            "dispatcher put back without ordering it against its own look at dispatch_wait (found "
            "by the explorer; no upstream fix known)",
            params={"reads": 2},
            schedules=10_000,
            memory_model="lkmm",
        ),
        "fixed": Variant(
            "fixed",
            frozenset({TAG_WAIT_SHARED_MB.name, ORDER_DISPATCH_RESTART.name, DISPATCH_WAKE_MB.name}),
            frozenset(),
            "5266caaf5660, d7d8535f377e and smp_mb() in blk_mq_dispatch_wake() between the dequeue "
            "and the rerun (a proposal, toggle blk-mq-dispatch-wake-smp-mb): clean",
            params={"reads": 2},
            memory_model="lkmm",
        ),
        "buggy-sc": Variant(
            "buggy-sc",
            frozenset(),
            frozenset(),
            "v5.8 under sc: a sequentially consistent machine loses neither wake-up",
            params={"reads": 2},
            memory_model="sc",
        ),
    },
)
