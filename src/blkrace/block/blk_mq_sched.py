"""block/blk-mq-sched.c: scheduler dispatch loops, RESTART, insertion.

The patch of seed 001 lives here: two hunks, each a delayed rerun of every
hw queue after a dispatch loop took the budget and found nothing to send.

Kernel baseline: v5.7 (for-5.8/block right after a0823421a4d7, as block/blk-mq.py).
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.list import list_empty_careful, list_head, list_splice_init
from blkrace.block.types import BLK_MQ_S_SCHED_RESTART
from blkrace.engine import READ, access
from blkrace.kernel.atomic import clear_bit, set_bit, test_bit
from blkrace.kernel.locking.spinlock import spin_lock, spin_unlock
from blkrace.kernel.memory import smp_mb
from blkrace.kernel.patch import Patch

BUDGET_RERUN = Patch(
    "blk-mq-rerun-on-budget-contention",
    "a0823421a4d7",
    "blk-mq: Rerun dispatching in the case of budget contention",
)

ORDER_DISPATCH_RESTART = Patch(
    "blk-mq-order-dispatch-restart",
    "d7d8535f377e",
    "blk-mq: order adding requests to hctx->dispatch and checking SCHED_RESTART",
)

BLK_MQ_BUDGET_DELAY = 3  # ms units


# blk_mq_sched_mark_restart_hctx(), block/blk-mq-sched.c
async def blk_mq_sched_mark_restart_hctx(hctx):
    """blk_mq_sched_mark_restart_hctx(): rerun this hctx when one of its requests is freed."""
    if await test_bit(BLK_MQ_S_SCHED_RESTART, hctx.state):
        return
    await set_bit(BLK_MQ_S_SCHED_RESTART, hctx.state)


# blk_mq_sched_needs_restart(), block/blk-mq-sched.c
async def blk_mq_sched_needs_restart(hctx):
    return await test_bit(BLK_MQ_S_SCHED_RESTART, hctx.state)


# blk_mq_sched_restart(), block/blk-mq-sched.c
async def blk_mq_sched_restart(hctx):
    """blk_mq_sched_restart(): no barrier between the clear and the run before d7d8535f377e (v5.9)."""
    if not await test_bit(BLK_MQ_S_SCHED_RESTART, hctx.state):
        return
    await clear_bit(BLK_MQ_S_SCHED_RESTART, hctx.state)
    if hctx.queue.k.patched(ORDER_DISPATCH_RESTART):
        # "Order clearing SCHED_RESTART and list_empty_careful(&hctx->dispatch)
        # in blk_mq_run_hw_queue(). Its pair is the barrier in
        # blk_mq_dispatch_rq_list()."
        smp_mb(hctx.queue.k)
    await blk_mq.blk_mq_run_hw_queue(hctx, True)


async def blk_mq_sched_has_work(hctx):
    """blk_mq_sched_has_work(), block/blk-mq-sched.h."""
    e = hctx.queue.elevator
    if e is not None and e.type.ops.has_work is not None:
        return await e.type.ops.has_work(hctx)
    return False


# blk_mq_do_dispatch_sched(), block/blk-mq-sched.c
async def blk_mq_do_dispatch_sched(hctx):
    """blk_mq_do_dispatch_sched(): one request at a time from the scheduler.

    Each pass takes the budget first, then asks the scheduler; a scheduler
    may return NULL even after has_work() said yes.
    """
    q = hctx.queue
    e = q.elevator
    rq_list = []
    while True:
        if e.type.ops.has_work is not None and not await e.type.ops.has_work(hctx):
            break
        if not await blk_mq.blk_mq_get_dispatch_budget(hctx):
            break
        rq = await e.type.ops.dispatch_request(hctx)
        if rq is None:
            await blk_mq.blk_mq_put_dispatch_budget(hctx)
            if q.k.patched(BUDGET_RERUN):
                # We're releasing without dispatching. Holding the budget
                # could have blocked any "hctx"s with the same queue and if we
                # didn't dispatch then there's no guarantee anyone will kick
                # the queue.  Kick it ourselves.
                await blk_mq.blk_mq_delay_run_hw_queues(q, BLK_MQ_BUDGET_DELAY)
            break
        rq_list.append(rq)  # list_add(&rq->queuelist, &rq_list): rq now owns the budget
        if not await blk_mq.blk_mq_dispatch_rq_list(q, rq_list, True):
            break


# blk_mq_next_ctx(), block/blk-mq-sched.c
def blk_mq_next_ctx(hctx, ctx):
    """blk_mq_next_ctx(): round-robin over the hctx's software queues."""
    idx = ctx.index_hw + 1
    if idx == hctx.nr_ctx:
        idx = 0
    return hctx.ctxs[idx]


# blk_mq_do_dispatch_ctx(), block/blk-mq-sched.c
async def blk_mq_do_dispatch_ctx(hctx):
    """blk_mq_do_dispatch_ctx(): the none scheduler when the hctx is busy, one ctx at a time."""
    q = hctx.queue
    rq_list = []
    ctx = hctx.dispatch_from  # READ_ONCE
    while True:
        await access(hctx.ctx_map, READ)
        if not hctx.ctx_map.bits:  # !sbitmap_any_bit_set(&hctx->ctx_map)
            break
        if not await blk_mq.blk_mq_get_dispatch_budget(hctx):
            break
        rq = await blk_mq.blk_mq_dequeue_from_ctx(hctx, ctx)
        if rq is None:
            await blk_mq.blk_mq_put_dispatch_budget(hctx)
            if q.k.patched(BUDGET_RERUN):
                # Same comment as in blk_mq_do_dispatch_sched(): kick it ourselves.
                await blk_mq.blk_mq_delay_run_hw_queues(q, BLK_MQ_BUDGET_DELAY)
            break
        rq_list.append(rq)
        ctx = blk_mq_next_ctx(hctx, rq.mq_ctx)
        if not await blk_mq.blk_mq_dispatch_rq_list(q, rq_list, True):
            break
    hctx.dispatch_from = ctx  # WRITE_ONCE


async def blk_mq_sched_dispatch_requests(hctx):
    """blk_mq_sched_dispatch_requests(), block/blk-mq-sched.c (v5.7)."""
    q = hctx.queue
    k = q.k
    e = q.elevator
    has_sched_dispatch = e is not None and e.type.ops.dispatch_request is not None
    await access(q.queue_flags, READ)
    if blk_mq.blk_mq_hctx_stopped(hctx) or blk_mq.blk_queue_quiesced(q):
        return
    hctx.run += 1
    rq_list = []
    # Previous leftovers on hctx->dispatch go first, for fairness.
    if not await list_empty_careful(hctx.dispatch):
        await spin_lock(k, hctx.lock)
        taken = list_head("rq_list")
        await list_splice_init(hctx.dispatch, taken)
        rq_list = taken.items
        await spin_unlock(k, hctx.lock)
    if rq_list:
        await blk_mq_sched_mark_restart_hctx(hctx)
        if await blk_mq.blk_mq_dispatch_rq_list(q, rq_list, False):
            if has_sched_dispatch:
                await blk_mq_do_dispatch_sched(hctx)
            else:
                await blk_mq_do_dispatch_ctx(hctx)
    elif has_sched_dispatch:
        await blk_mq_do_dispatch_sched(hctx)
    elif hctx.dispatch_busy:
        # dequeue request one by one from sw queue if queue is busy
        await blk_mq_do_dispatch_ctx(hctx)
    else:
        await blk_mq.blk_mq_flush_busy_ctxs(hctx, rq_list)
        await blk_mq.blk_mq_dispatch_rq_list(q, rq_list, False)


# blk_mq_sched_insert_request(), block/blk-mq-sched.c
async def blk_mq_sched_insert_request(rq, at_head, run_queue, async_):
    """blk_mq_sched_insert_request(): into the elevator (or the ctx), then maybe run.

    Flush and passthrough bypasses are left out: the model has neither.
    """
    q = rq.q
    e = q.elevator
    ctx = rq.mq_ctx
    hctx = rq.mq_hctx
    if e is not None and e.type.ops.insert_requests is not None:
        await e.type.ops.insert_requests(hctx, [rq], at_head)
    else:
        await blk_mq.blk_mq_insert_requests(hctx, ctx, [rq])
    if run_queue:
        await blk_mq.blk_mq_run_hw_queue(hctx, async_)


# blk_mq_sched_insert_requests(), block/blk-mq-sched.c
async def blk_mq_sched_insert_requests(hctx, ctx, rqs, run_queue_async):
    """blk_mq_sched_insert_requests(): a plug's batch into the elevator, then run."""
    q = hctx.queue
    e = q.elevator
    if e is not None and e.type.ops.insert_requests is not None:
        await e.type.ops.insert_requests(hctx, rqs, False)
    else:
        # Try to issue requests directly if the hw queue isn't busy, which
        # saves a trip through the software queue.
        if not hctx.dispatch_busy and e is None and not run_queue_async:
            await blk_mq.blk_mq_try_issue_list_directly(hctx, rqs)
            if not rqs:
                return
        await blk_mq.blk_mq_insert_requests(hctx, ctx, rqs)
    await blk_mq.blk_mq_run_hw_queue(hctx, run_queue_async)
