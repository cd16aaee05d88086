"""Request timeouts: block/blk-timeout.c (blk_add_timer) and the blk-mq timeout
work of block/blk-mq.c (v5.8).  A request the driver never completes is
handed to the driver's ->timeout after q->rq_timeout (30 s)."""

from __future__ import annotations

from blkrace.block.types import BLK_EH_DONE, BLK_EH_RESET_TIMER, MQ_RQ_IN_FLIGHT, RQF_TIMED_OUT
from blkrace.engine import WRITE, access
from blkrace.kernel.timer import mod_timer, timer_list, timer_pending
from blkrace.kernel.workqueue import INIT_WORK, queue_work


# model: the timeout timer and work of blk_alloc_queue() (block/blk-core.c)
def blk_queue_init_timeout(q):
    """blk_alloc_queue(): the queue's timeout timer and work."""
    q.timeout = timer_list(q.k, blk_rq_timed_out_timer, f"{q.name}->timeout", q)
    q.timeout_work = INIT_WORK(blk_mq_timeout_work, f"{q.name}->timeout_work", q)


# blk_add_timer(), block/blk-timeout.c
def blk_add_timer(rq):
    """blk_add_timer(): arm the request's deadline; the queue timer fires at the earliest one."""
    q = rq.q
    rq.deadline = q.k.now + q.rq_timeout
    if not timer_pending(q.timeout) or q.timeout.expires > rq.deadline:
        mod_timer(q.timeout, rq.deadline - q.k.now)


# blk_rq_timed_out_timer(), block/blk-core.c
async def blk_rq_timed_out_timer(k, timer):
    """blk_rq_timed_out_timer(): let kblockd look at the requests."""
    await queue_work(k, k.kblockd_workqueue, timer.data.timeout_work)


async def blk_mq_rq_timed_out(rq, reserved):
    """blk_mq_rq_timed_out(), block/blk-mq.c: mark it RQF_TIMED_OUT, ask the
    driver; re-arm if it wants more time."""
    q = rq.q
    rq.rq_flags |= RQF_TIMED_OUT
    if rq.bio is not None:
        # What the kernel log shows (the driver's "timed out" line): kept per
        # queue so that an end-of-run check can tell a bio that only the
        # timeout handler ended.
        q.timed_out_bios.append(rq.bio)
    ret = BLK_EH_RESET_TIMER
    if q.mq_ops.timeout is not None:
        ret = await q.mq_ops.timeout(rq, reserved)
    if ret == BLK_EH_RESET_TIMER:
        blk_add_timer(rq)


# blk_mq_timeout_work(), block/blk-mq.c
async def blk_mq_timeout_work(k, work):
    """blk_mq_timeout_work() -> blk_mq_check_expired() for every busy request."""
    q = work.data
    now = k.now
    next_deadline = None
    for hctx in q.queue_hw_ctx:
        for rq in list(hctx.tags.rqs):
            if rq is None:
                continue
            await access(rq, WRITE)
            if rq.state != MQ_RQ_IN_FLIGHT:
                continue
            if rq.deadline <= now:
                k.execution.event(f"{rq.name} timed out after {q.rq_timeout // 1_000_000_000} s")
                await blk_mq_rq_timed_out(rq, False)
            elif next_deadline is None or rq.deadline < next_deadline:
                next_deadline = rq.deadline
    if next_deadline is not None:
        mod_timer(q.timeout, next_deadline - now)


__all__ = ["BLK_EH_DONE", "blk_add_timer", "blk_queue_init_timeout"]
