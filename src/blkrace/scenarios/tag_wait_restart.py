"""tag-wait-restart: a request left on hctx->dispatch for a SCHED_RESTART
rerun that never comes, under the ``lkmm`` memory model.  Two store-buffering
windows meet here; the explorer found the second.

Topology: 2 CPUs; a null_blk disk with one hw queue and one driver tag
(hw_queue_depth=1), unshared, BFQ as the I/O scheduler (64 scheduler tags, so
a second request is allocated while the first holds the only driver tag).
Workload: "fio-a" on CPU 0 and "fio-b" on CPU 1 read once each (parameter
``reads``), synchronously.  The device answers after 100 us.

A dispatcher that finds no driver tag goes through blk_mq_mark_tag_wait():
for unshared tags it marks SCHED_RESTART and retries the tag; if the retry
fails too, it puts the request back on hctx->dispatch and, SCHED_RESTART
being set, leaves the rerun to the completion that frees a tag
(__blk_mq_free_request() -> blk_mq_sched_restart()).

1. d7d8535f377e ("blk-mq: order adding requests to hctx->dispatch and
   checking SCHED_RESTART", v5.9; an I/O hang in ltp/fs_fill):

    dispatcher (blk_mq_dispatch_rq_list)     completion (blk_mq_sched_restart)
    list_splice_tail_init(hctx->dispatch)    clear_bit(SCHED_RESTART)
    blk_mq_sched_needs_restart()             blk_mq_run_hw_queue(): dispatch empty?

   Toggle ``blk-mq-order-dispatch-restart`` adds its two smp_mb().  With the
   tag wait's barrier in place and two reads each, reverting d7d8535f377e
   brings this window back alone (``d7d8535f377e-reverted``), and applying
   it closes it (``fixed-2-reads``).

2. The tag wait (found by the explorer, with d7d8535f377e applied):

    dispatcher (blk_mq_mark_tag_wait)        completion (__blk_mq_free_request)
    set_bit(SCHED_RESTART)                   sbitmap_queue_clear(): clear the tag,
                                               smp_mb__after_atomic()
    blk_mq_get_driver_tag(): tag word        blk_mq_sched_restart(): test_bit(SCHED_RESTART)

   set_bit() orders nothing and a failed allocation makes no RMW, so the
   retry may read the tag still taken while the completion reads RESTART
   still clear: neither reruns the queue.  5266caaf5660 ("blk-mq: fix IO
   hang from sbitmap wakeup race", v6.8) gave the shared-tag branch of the
   same function an explicit smp_mb() for this reason (its wait-queue add
   against the retry); the unshared branch has none, in v5.8 and in the
   v6.12-era tree read.  On x86 set_bit() is a locked instruction, a full
   barrier: only weakly ordered CPUs can lose both loads (herd7: LKMM and
   AArch64 Sometimes, Never with the barrier; tests/litmus/tagwait-restart*).
   Toggle ``blk-mq-tag-wait-restart-smp-mb`` is that barrier (a proposal).

Nothing steers the explorer to the windows: BFQ's heuristics, the tag wait,
the completion and the reruns are the modelled v5.7/v5.8 code paths.
"""

from __future__ import annotations

from blkrace.block.bfq_iosched import bfq_init_queue
from blkrace.block.blk_mq import TAG_WAIT_RESTART_MB, blk_mq_alloc_sched_tags
from blkrace.block.blk_mq_sched import ORDER_DISPATCH_RESTART
from blkrace.drivers.null_blk import null_add_dev
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.base import Param, Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


class TagWaitRestart(Scenario):
    def build(self, execution, variant):
        k = boot(execution, nr_cpus=2, patches=variant.patches, hotplug=False)
        nb = null_add_dev(k, nr_hw_queues=1, hw_queue_depth=1, completion_us=100, managed_irqs=False)
        blk_mq_alloc_sched_tags(nb.q, 64)
        bfq_init_queue(nb.q)
        reads = variant.params["reads"]
        task_run_on_cpu(k, sync_reader, "fio-a", 0, nb.q, reads)
        task_run_on_cpu(k, sync_reader, "fio-b", 1, nb.q, reads)
        execution.checkers.append(lambda ex: check_bios(nb.q, ex))


SCENARIO = TagWaitRestart(
    name="tag-wait-restart",
    summary="a request left on hctx->dispatch for a SCHED_RESTART rerun the tag's completion does not "
    "see: store buffering in blk_mq_mark_tag_wait() under lkmm (found; beside d7d8535f377e's)",
    seed="5266caaf5660",
    default_schedules=5000,
    params={"reads": Param(1, "reads per reader (fio-a on CPU 0, fio-b on CPU 1)")},
    variants={
        "buggy": Variant(
            "buggy",
            frozenset(),
            frozenset({"stall"}),
            "v5.8, under lkmm: neither d7d8535f377e nor a barrier in the tag wait; the request stays on hctx->dispatch",
            memory_model="lkmm",
        ),
        "d7d8535f377e": Variant(
            "d7d8535f377e",
            frozenset({ORDER_DISPATCH_RESTART.name}),
            frozenset({"stall"}),
            "d7d8535f377e applied, under lkmm: blk_mq_mark_tag_wait() sets SCHED_RESTART and retries "
            "the driver tag with no barrier between; the retry reads the tag still taken, the "
            "completion that freed it reads RESTART still clear; nobody reruns the queue (found by "
            "the explorer; the unshared-tag sibling of 5266caaf5660; no upstream fix known)",
            memory_model="lkmm",
        ),
        "fixed": Variant(
            "fixed",
            frozenset({ORDER_DISPATCH_RESTART.name, TAG_WAIT_RESTART_MB.name}),
            frozenset(),
            "d7d8535f377e and smp_mb() between marking SCHED_RESTART and retrying the driver tag (a "
            "proposal, toggle blk-mq-tag-wait-restart-smp-mb): the retry gets the freed tag or the "
            "completion sees RESTART and reruns",
            memory_model="lkmm",
        ),
        "d7d8535f377e-reverted": Variant(
            "d7d8535f377e-reverted",
            frozenset({TAG_WAIT_RESTART_MB.name}),
            frozenset({"stall"}),
            "the tag wait's barrier but not d7d8535f377e, two reads each, under lkmm: the dispatcher "
            "puts the request back and reads SCHED_RESTART still set, the completion clears it and "
            "reads hctx->dispatch still empty (d7d8535f377e's window alone)",
            params={"reads": 2},
            schedules=10_000,
            memory_model="lkmm",
        ),
        "fixed-2-reads": Variant(
            "fixed-2-reads",
            frozenset({ORDER_DISPATCH_RESTART.name, TAG_WAIT_RESTART_MB.name}),
            frozenset(),
            "both barriers, two reads each, under lkmm: clean",
            params={"reads": 2},
            memory_model="lkmm",
        ),
        "buggy-sc": Variant(
            "buggy-sc",
            frozenset(),
            frozenset(),
            "v5.8 under sc: a sequentially consistent machine cannot lose both loads of either window",
            memory_model="sc",
        ),
    },
)
