"""block/bfq-iosched.c, the part of BFQ that the budget race needs.

Kept: per-process queues, one in-service queue, the busy-queue count that
has_work() reads without the lock, idling on an empty in-service queue with
the 8 ms idle-slice hrtimer, expiry, and bfq_schedule_dispatch() kicking
every hw queue when the idle slice ends.  While BFQ idles, the empty
in-service queue still counts as busy, so has_work() says yes and
dispatch_request() returns NULL: "BFQ, by design, sometimes returns true for
has_work() but then NULL for dispatch_request() and stays in this state for
a while" (seed 001).

Left out: B-WF2Q+ scheduling (busy queues are served first come, first
served), budgets and budget timeouts, weight raising, and injection.  The
heuristics are choices the explorer makes (``choose``): whether idling is
better (bfq_better_to_idle()), whether a small request keeps the idle timer
running (idling_boosts_thr_without_issues()), and how long the idle slice is
(2 ms for a seeky queue, 8 ms by default, 20 ms for a weight-raised one).

Kernel baseline: v5.7 (for-5.8/block right after a0823421a4d7, as block/blk-mq.py).
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.elevator import elevator_mq_ops, elevator_queue, elevator_type
from blkrace.engine import NSEC_PER_SEC, READ, WRITE, access, choose
from blkrace.kernel.locking.spinlock import (
    spin_lock_irq,
    spin_lock_irqsave,
    spin_unlock_irq,
    spin_unlock_irqrestore,
    spinlock_t,
)
from blkrace.kernel.machine import HARDIRQ
from blkrace.kernel.timer import hrtimer_start, hrtimer_try_to_cancel, timer_list

bfq_slice_idle = NSEC_PER_SEC // 125  # 8 ms
BFQ_MIN_TT = 2 * NSEC_PER_SEC // 1000  # 2 ms
BFQ_WR_SLICE = 20 * NSEC_PER_SEC // 1000  # max(sl, 20 ms) for weight-raised queues


class bfq_queue:
    __slots__ = ("name", "pid", "sort_list", "dispatched", "wait_request", "busy")

    def __init__(self, pid, comm):
        self.name = f"bfqq:{comm}"
        self.pid = pid
        self.sort_list = []  # queued requests of this process
        self.dispatched = 0
        self.wait_request = False  # idling: waiting for this process's next request
        self.busy = False


class bfq_data:
    __slots__ = (
        "name",
        "queue",
        "lock",
        "queues",
        "active",
        "in_service_queue",
        "busy_queues",
        "queued",
        "rq_in_driver",
        "dispatch",
        "idle_slice_timer",
    )

    def __init__(self, q):
        self.name = "bfqd"
        self.queue = q
        self.lock = spinlock_t("bfqd->lock")
        self.queues = {}  # pid -> bfq_queue (insertion-ordered: deterministic)
        self.active = []  # busy queues, in the order they became busy
        self.in_service_queue = None
        self.busy_queues = 0
        self.queued = 0
        self.rq_in_driver = 0
        self.dispatch = []  # passthrough requests; none in the model
        self.idle_slice_timer = timer_list(q.k, bfq_idle_slice_timer, "bfq_idle_slice_timer", self, context=HARDIRQ)


# bfq_init_queue(), block/bfq-iosched.c
def bfq_init_queue(q):
    """bfq_init_queue(): attach BFQ as q's elevator."""
    bfqd = bfq_data(q)
    q.elevator = elevator_queue(iosched_bfq, bfqd)
    return bfqd


# bfq_has_work(), block/bfq-iosched.c
async def bfq_has_work(hctx):
    """bfq_has_work(): "Avoiding lock: a race on bfqd->busy_queues should cause at
    most a call to dispatch for nothing"."""
    bfqd = hctx.queue.elevator.elevator_data
    await access(bfqd, READ)
    return bool(bfqd.dispatch) or bfqd.busy_queues > 0


# bfq_prepare_request(), block/bfq-iosched.c
async def bfq_prepare_request(rq, bio):
    """bfq_prepare_request(): remember the process (its bic) the request belongs to."""
    ts = rq.q.k.current
    rq.elv = (ts.pid, ts.comm)


# bfq_add_bfqq_busy(), block/bfq-wf2q.c
def bfq_add_bfqq_busy(bfqd, bfqq):
    bfqq.busy = True
    bfqd.busy_queues += 1
    bfqd.active.append(bfqq)


# bfq_del_bfqq_busy(), block/bfq-wf2q.c
def bfq_del_bfqq_busy(bfqd, bfqq):
    bfqq.busy = False
    bfqd.busy_queues -= 1
    bfqd.active.remove(bfqq)


# bfq_insert_request(), block/bfq-iosched.c
async def bfq_insert_request(hctx, rq, at_head):
    """bfq_insert_request() + bfq_rq_enqueued(), under bfqd->lock."""
    q = hctx.queue
    bfqd = q.elevator.elevator_data
    await spin_lock_irq(q.k, bfqd.lock)
    await access(bfqd, WRITE)
    pid, comm = rq.elv
    bfqq = bfqd.queues.get(pid)
    if bfqq is None:
        bfqq = bfqd.queues[pid] = bfq_queue(pid, comm)
    rq.elv = bfqq
    bfqq.sort_list.append(rq)
    bfqd.queued += 1
    if not bfqq.busy:
        bfq_add_bfqq_busy(bfqd, bfqq)
    if bfqq is bfqd.in_service_queue and bfqq.wait_request:
        # bfq_rq_enqueued(): the request we were idling for arrived.  A small
        # one may keep the timer running when idling boosts throughput.
        small_req = len(bfqq.sort_list) == 1  # one 4 KiB request: < 32 sectors
        if not (small_req and await choose(2, "idling_boosts_thr_without_issues")):
            # Let's stop idling and dispatch.
            bfqq.wait_request = False
            hrtimer_try_to_cancel(bfqd.idle_slice_timer)
    await spin_unlock_irq(q.k, bfqd.lock)


# bfq_insert_requests(), block/bfq-iosched.c
async def bfq_insert_requests(hctx, rqs, at_head):
    """bfq_insert_requests()."""
    while rqs:
        await bfq_insert_request(hctx, rqs.pop(0), at_head)


# __bfq_bfqq_expire(), block/bfq-iosched.c
def __bfq_bfqq_expire(bfqd, bfqq):
    """__bfq_bfqq_expire(): the queue leaves service; an empty one stops being busy."""
    if not bfqq.sort_list and bfqq.busy:
        bfq_del_bfqq_busy(bfqd, bfqq)
    bfqq.wait_request = False
    bfqd.in_service_queue = None
    hrtimer_try_to_cancel(bfqd.idle_slice_timer)


# bfq_select_queue(), block/bfq-iosched.c
async def bfq_select_queue(bfqd):
    """bfq_select_queue(): the queue to serve, or None while idling or plugging."""
    bfqq = bfqd.in_service_queue
    if bfqq is not None:
        if bfqq.sort_list:
            if bfqq.wait_request:
                # A small request arrived without stopping the timer; the
                # device was unplugged since: stop idling now.
                bfqq.wait_request = False
                hrtimer_try_to_cancel(bfqd.idle_slice_timer)
            return bfqq  # keep_queue
        if bfqq.wait_request or (bfqq.dispatched != 0 and await choose(2, "bfq_better_to_idle")):
            # Idling for this process's next request, or plugging while its
            # last one is in flight: dispatch nothing (injection not modelled).
            return None
        __bfq_bfqq_expire(bfqd, bfqq)
    # new_queue: B-WF2Q+ is not modelled; serve busy queues in arrival order.
    for candidate in bfqd.active:
        if candidate.sort_list:
            bfqd.in_service_queue = candidate
            return candidate
    return None


# __bfq_dispatch_request(), block/bfq-iosched.c
async def __bfq_dispatch_request(bfqd):
    """__bfq_dispatch_request()."""
    if bfqd.dispatch:
        return bfqd.dispatch.pop(0)
    if bfqd.busy_queues == 0:
        return None
    bfqq = await bfq_select_queue(bfqd)
    if bfqq is None:
        return None
    rq = bfqq.sort_list.pop(0)  # bfq_dispatch_rq_from_bfqq() -> bfq_dispatch_remove()
    bfqd.queued -= 1
    bfqq.dispatched += 1
    bfqd.rq_in_driver += 1
    return rq


# bfq_dispatch_request(), block/bfq-iosched.c
async def bfq_dispatch_request(hctx):
    """bfq_dispatch_request(): under bfqd->lock."""
    q = hctx.queue
    bfqd = q.elevator.elevator_data
    await spin_lock_irq(q.k, bfqd.lock)
    await access(bfqd, WRITE)
    rq = await __bfq_dispatch_request(bfqd)
    await spin_unlock_irq(q.k, bfqd.lock)
    return rq


# bfq_schedule_dispatch(), block/bfq-iosched.c
async def bfq_schedule_dispatch(bfqd):
    """bfq_schedule_dispatch(): kick every hw queue if requests are queued."""
    await access(bfqd, READ)
    if bfqd.queued != 0:
        await blk_mq.blk_mq_run_hw_queues(bfqd.queue, True)


# bfq_arm_slice_timer(), block/bfq-iosched.c
async def bfq_arm_slice_timer(bfqd, bfqq):
    """bfq_arm_slice_timer(): idle a while for the process's next request."""
    sl = (BFQ_MIN_TT, bfq_slice_idle, BFQ_WR_SLICE)[await choose(3, "bfq idle slice: seeky 2 ms, 8 ms, wr 20 ms")]
    bfqq.wait_request = True
    hrtimer_start(bfqd.idle_slice_timer, sl)


# bfq_completed_request(), block/bfq-iosched.c
async def bfq_completed_request(bfqq, bfqd):
    """bfq_completed_request(): called under bfqd->lock when a request of bfqq ends."""
    bfqd.rq_in_driver -= 1
    bfqq.dispatched -= 1
    if bfqq is bfqd.in_service_queue and not bfqq.sort_list and bfqq.dispatched == 0:
        # bfq_better_to_idle(): think time, seekiness, weights... decided by the explorer.
        if await choose(2, "bfq_better_to_idle"):
            await bfq_arm_slice_timer(bfqd, bfqq)
            return
        __bfq_bfqq_expire(bfqd, bfqq)
    if not bfqd.rq_in_driver:
        await bfq_schedule_dispatch(bfqd)


# bfq_finish_requeue_request(), block/bfq-iosched.c
async def bfq_finish_requeue_request(rq):
    """bfq_finish_requeue_request(): the elevator's finish_request."""
    q = rq.q
    bfqd = q.elevator.elevator_data
    bfqq = rq.elv
    flags = await spin_lock_irqsave(q.k, bfqd.lock)
    await access(bfqd, WRITE)
    await bfq_completed_request(bfqq, bfqd)
    await spin_unlock_irqrestore(q.k, bfqd.lock, flags)
    rq.elv = None


# bfq_idle_slice_timer(), block/bfq-iosched.c
async def bfq_idle_slice_timer(k, timer):
    """bfq_idle_slice_timer(): hardirq, the idle slice is over.

    "Theoretical race here: the in-service queue can be NULL or different
    from the queue that was idling ... in the worst case we just expire a
    queue too early." (the in-service queue is read without the lock)
    """
    bfqd = timer.data
    await access(bfqd, READ)
    bfqq = bfqd.in_service_queue
    if bfqq is not None:
        await bfq_idle_slice_timer_body(k, bfqd, bfqq)


# bfq_idle_slice_timer_body(), block/bfq-iosched.c
async def bfq_idle_slice_timer_body(k, bfqd, bfqq):
    """bfq_idle_slice_timer_body()."""
    flags = await spin_lock_irqsave(k, bfqd.lock)
    await access(bfqd, WRITE)
    if bfqq is not bfqd.in_service_queue:
        await spin_unlock_irqrestore(k, bfqd.lock, flags)
        return
    bfqq.wait_request = False  # bfq_clear_bfqq_wait_request()
    if not bfqq.sort_list:
        __bfq_bfqq_expire(bfqd, bfqq)  # BFQQE_TOO_IDLE; otherwise goto schedule_dispatch
    await spin_unlock_irqrestore(k, bfqd.lock, flags)  # v5.7: unlock before schedule_dispatch
    await bfq_schedule_dispatch(bfqd)


iosched_bfq = elevator_type(
    "bfq",
    elevator_mq_ops(
        insert_requests=bfq_insert_requests,
        dispatch_request=bfq_dispatch_request,
        has_work=bfq_has_work,
        prepare_request=bfq_prepare_request,
        finish_request=bfq_finish_requeue_request,
    ),
)
