"""lib/sbitmap.c as of v5.8: a bitmap of tags with 8 wait queues and batched wake-ups.

Freeing a tag decrements the wait count of the first active wait queue
(round robin from ``wake_index``); when it reaches zero, ``wake_batch``
waiters of that queue are woken and the count is reset by cmpxchg (the form
before 040b83fcecfb; its lost-wakeup window is part of the model).  A
waiter picks its queue round robin through ``hctx->wait_index``.
Left out: the per-CPU allocation hints and deferred clearing (they decide
which bit is taken, not whether one is), shallow depth.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, WaitQueue, access

SBQ_WAIT_QUEUES = 8
SBQ_WAKE_BATCH = 8


class sbq_wait_state:
    __slots__ = ("name", "wait_cnt", "wait")

    def __init__(self, name, wake_batch):
        self.name = name
        self.wait_cnt = wake_batch
        self.wait = WaitQueue(name)


class sbitmap_queue:
    __slots__ = ("name", "depth", "map", "wake_batch", "wake_index", "ws", "ws_active")

    def __init__(self, name, depth):
        self.name = name
        self.depth = depth
        self.map = 0
        self.wake_batch = sbq_calc_wake_batch(depth)
        self.wake_index = 0
        self.ws = [sbq_wait_state(f"{name}.ws[{i}]", self.wake_batch) for i in range(SBQ_WAIT_QUEUES)]
        self.ws_active = 0


# sbq_calc_wake_batch(), lib/sbitmap.c
def sbq_calc_wake_batch(depth):
    """sbq_calc_wake_batch(): clamp(depth / SBQ_WAIT_QUEUES, 1, SBQ_WAKE_BATCH)."""
    return max(1, min(depth // SBQ_WAIT_QUEUES, SBQ_WAKE_BATCH))


# sbq_index_inc(), include/linux/sbitmap.h
def sbq_index_inc(index):
    return (index + 1) % SBQ_WAIT_QUEUES


# __sbitmap_queue_get(), lib/sbitmap.c
async def __sbitmap_queue_get(sbq):
    """__sbitmap_queue_get(): the lowest clear bit, set atomically; -1 if none."""
    await access(sbq, WRITE)
    free = ~sbq.map & ((1 << sbq.depth) - 1)
    if not free:
        return -1
    nr = (free & -free).bit_length() - 1
    sbq.map |= 1 << nr
    return nr


# sbitmap_any_bit_set(), lib/sbitmap.c
def sbitmap_any_bit_set(sbq):
    return sbq.map != 0


# sbq_wake_ptr(), lib/sbitmap.c
def sbq_wake_ptr(sbq):
    """sbq_wake_ptr(): the first wait queue with a waiter, from wake_index on."""
    if not sbq.ws_active:
        return None
    wake_index = sbq.wake_index
    for _ in range(SBQ_WAIT_QUEUES):
        ws = sbq.ws[wake_index]
        if ws.wait.waiters:
            if wake_index != sbq.wake_index:
                sbq.wake_index = wake_index
            return ws
        wake_index = sbq_index_inc(wake_index)
    return None


# __sbq_wake_up(), lib/sbitmap.c
async def __sbq_wake_up(sbq):
    """__sbq_wake_up(): count this free against a wait queue's batch; true means retry."""
    await access(sbq.ws, WRITE)
    ws = sbq_wake_ptr(sbq)
    if ws is None:
        return False
    ws.wait_cnt -= 1
    wait_cnt = ws.wait_cnt
    if wait_cnt <= 0:
        wake_batch = sbq.wake_batch
        await access(sbq.ws, WRITE)  # smp_mb__before_atomic(); atomic_cmpxchg()
        ret = ws.wait_cnt
        if ret == wait_cnt:
            ws.wait_cnt = wake_batch
            sbq.wake_index = sbq_index_inc(sbq.wake_index)
            for _ in range(wake_batch):  # wake_up_nr(&ws->wait, wake_batch)
                if ws.wait.wake_one() is None:
                    break
            return False
        return True
    return False


# sbitmap_queue_wake_up(), lib/sbitmap.c
async def sbitmap_queue_wake_up(sbq):
    while await __sbq_wake_up(sbq):
        pass


# sbitmap_queue_clear(), lib/sbitmap.c
async def sbitmap_queue_clear(sbq, nr, cpu):
    """sbitmap_queue_clear(): free the bit, then account the wake-up."""
    await access(sbq, WRITE)
    sbq.map &= ~(1 << nr)
    await sbitmap_queue_wake_up(sbq)


# sbitmap_queue_wake_all(), lib/sbitmap.c
def sbitmap_queue_wake_all(sbq):
    """sbitmap_queue_wake_all(): every waiter of every queue."""
    wake_index = sbq.wake_index
    for _ in range(SBQ_WAIT_QUEUES):
        sbq.ws[wake_index].wait.wake_all()
        wake_index = sbq_index_inc(wake_index)


class sbq_wait:
    """DEFINE_SBQ_WAIT(wait): remembers whether it counts in ws_active."""

    __slots__ = ("sbq",)

    def __init__(self):
        self.sbq = None


# sbitmap_prepare_to_wait(), lib/sbitmap.c
def sbitmap_prepare_to_wait(sbq, ws, wait):
    """sbitmap_prepare_to_wait(): count the waiter (the queueing itself is the park)."""
    if wait.sbq is None:
        sbq.ws_active += 1
        wait.sbq = sbq


# sbitmap_finish_wait(), lib/sbitmap.c
def sbitmap_finish_wait(sbq, ws, wait):
    if wait.sbq is not None:
        sbq.ws_active -= 1
        wait.sbq = None


# sbitmap_weight(), lib/sbitmap.c
async def sbitmap_weight(sbq):
    await access(sbq, READ)
    return bin(sbq.map).count("1")
