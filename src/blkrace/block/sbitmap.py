"""lib/sbitmap.c and include/linux/sbitmap.h as of v5.8: a bitmap of tags with 8 wait
queues and batched wake-ups, at the kernel's granularity.

Freeing a tag counts against the wait count of the first active wait queue
(round robin from ``wake_index``); when the count reaches zero, ``wake_batch``
waiters of that queue are woken and the count is reset.  Every atomic and
every lockless read of that path is its own scheduling point, in the kernel's
order: ``ws_active``, ``wake_index``, each ``waitqueue_active()`` in
sbq_wake_ptr(), the ``atomic_dec_return()`` of ``wait_cnt``, the
``atomic_cmpxchg()`` that resets it, the read and cmpxchg of
sbq_index_atomic_inc(), and ``wake_up_nr()`` under the queue's lock.  So the
windows the kernel has between them are here: two frees that pick the same
wait queue, the second counting against a queue the first just emptied (the
lost wake-up that 040b83fcecfb fixes), and, with that fix, a ``wait_cnt`` left
at zero that 48c033314f37 fixes.  Both commits are toggles of ``__sbq_wake_up()``.

Left out: the per-CPU allocation hints and deferred clearing (they decide
which bit is taken, not whether one is), shallow depth, resizing (so
``wake_batch`` is never written: its READ_ONCE() is not a scheduling point).

Under the ``lkmm`` memory model (a queue created with ``k``): the bitmap word,
``ws_active``, ``wake_index``, each ``wait_cnt`` and each wait queue's list
are locations of blkrace.kernel.memory, with the kernel's orderings: the
allocator's find_next_zero_bit() is a plain look at the word and
test_and_set_bit_lock() an acquire RMW (__sbitmap_get_word()); the free is
an unordered clear between smp_mb__before_atomic() and
smp_mb__after_atomic() (sbitmap_queue_clear()); atomic_read()/atomic_set()
are READ_ONCE()/WRITE_ONCE(), atomic_dec_return() and a successful
atomic_cmpxchg() fully ordered, atomic_inc()/atomic_dec() unordered
(Documentation/atomic_t.txt).  Deferred clearing (set_bit() on ``cleared``,
moved to the word under ``swap_lock``) is the word's clear here: the same
unordered RMW.  Under ``sc`` the allocation stays one step.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access
from blkrace.kernel.atomic import (
    atomic_cmpxchg,
    atomic_dec,
    atomic_dec_return,
    atomic_inc,
    atomic_read,
    atomic_set,
    atomic_t,
)
from blkrace.kernel.locking.wait import (
    finish_wait,
    prepare_to_wait_exclusive,
    wait_queue_entry,
    wait_queue_head,
    waitqueue_active,
    wake_up_all_entries,
    wake_up_nr,
)
from blkrace.kernel.memory import ACQUIRE, ONCE, mm_load, mm_rmw, smp_mb__after_atomic, smp_mb__before_atomic
from blkrace.kernel.patch import Patch

SBQ_WAIT_QUEUES = 8
SBQ_WAKE_BATCH = 8

SBQ_WAKE_BEFORE_RESET = Patch(
    "sbitmap-wake-before-reset",
    "040b83fcecfb",
    "sbitmap: fix possible io hung due to lost wakeup",
)
SBQ_RESET_WAIT_CNT = Patch(
    "sbitmap-reset-wait-cnt",
    "48c033314f37",
    "sbitmap: Avoid leaving waitqueue in invalid state in __sbq_wake_up()",
)


class sbq_wait_state:
    """struct sbq_wait_state, include/linux/sbitmap.h."""

    __slots__ = ("name", "wait_cnt", "wait")

    def __init__(self, name, wake_batch, k=None):
        self.name = name
        self.wait_cnt = atomic_t(f"{name}.wait_cnt", wake_batch, k=k)
        self.wait = wait_queue_head(f"{name}.wait", k=k)


class sbitmap_queue:
    """struct sbitmap_queue, include/linux/sbitmap.h.  ``k`` (set by whoever owns
    the queue) says which of the toggles above are applied."""

    __slots__ = ("name", "depth", "map", "wake_batch", "wake_index", "ws", "ws_active", "_k")

    def __init__(self, name, depth, k=None):
        self.name = name
        self.depth = depth
        self.map = 0
        self.wake_batch = sbq_calc_wake_batch(depth)
        self.wake_index = atomic_t(f"{name}.wake_index", k=k)
        self.ws = [sbq_wait_state(f"{name}.ws[{i}]", self.wake_batch, k) for i in range(SBQ_WAIT_QUEUES)]
        self.ws_active = atomic_t(f"{name}.ws_active", k=k)
        self.k = k

    @property
    def k(self):
        return self._k

    @k.setter
    def k(self, k):
        """Set by whoever owns the queue (blk_mq_init_queue() for a tag set's
        tags): the toggles, and under ``lkmm`` the locations of the wake path."""
        self._k = k
        weak = k if k is not None and k.memory is not None else None
        for v in [self.wake_index, self.ws_active] + [ws.wait_cnt for ws in self.ws]:
            v.k = weak
        for ws in self.ws:
            ws.wait.k = weak

    @property
    def mm(self):
        """The kernel when its memory model is weak (the word is a location), else None."""
        return self.k if self.k is not None and self.k.memory is not None else None

    def patched(self, patch):
        return self.k is not None and self.k.patched(patch)


def sbq_calc_wake_batch(depth):
    """sbq_calc_wake_batch(), lib/sbitmap.c: clamp(depth / SBQ_WAIT_QUEUES, 1, SBQ_WAKE_BATCH)."""
    return max(1, min(depth // SBQ_WAIT_QUEUES, SBQ_WAKE_BATCH))


def sbq_index_inc(index):
    """sbq_index_inc(), include/linux/sbitmap.h."""
    return (index + 1) % SBQ_WAIT_QUEUES


async def sbq_index_atomic_inc(index):
    """sbq_index_atomic_inc(), include/linux/sbitmap.h: a read, then a cmpxchg that
    may fail (someone else moved the index on meanwhile)."""
    old = await atomic_read(index)
    new = sbq_index_inc(old)
    await atomic_cmpxchg(index, old, new)


async def sbq_wait_ptr(sbq, wait_index):
    """sbq_wait_ptr(), include/linux/sbitmap.h: a waiter's queue, round robin."""
    ws = sbq.ws[await atomic_read(wait_index)]
    await sbq_index_atomic_inc(wait_index)
    return ws


async def __sbitmap_queue_get(sbq):
    """__sbitmap_queue_get(), lib/sbitmap.c: the lowest clear bit, set atomically; -1 if none.

    One step: find_next_zero_bit() and test_and_set_bit_lock() retry until one
    wins or no bit is clear, which is linearizable as a single atomic under
    ``sc``; under ``lkmm`` the look at the word is a load of its own
    (__sbitmap_get_word())."""
    if sbq.mm is not None:
        return await __sbitmap_get_word(sbq)
    await access(sbq, WRITE)
    free = ~sbq.map & ((1 << sbq.depth) - 1)
    if not free:
        return -1
    nr = (free & -free).bit_length() - 1
    sbq.map |= 1 << nr
    return nr


async def __sbitmap_get_word(sbq):
    """__sbitmap_get_word(), lib/sbitmap.c (v5.8): find_next_zero_bit() reads the
    word with plain loads; test_and_set_bit_lock() (an acquire) takes the bit or
    finds it taken, and then the search goes on (here: from the start again)."""
    k = sbq.mm
    while True:
        word = await mm_load(k, sbq, "map", ONCE, lambda b: f"{b:#x}")
        free = ~word & ((1 << sbq.depth) - 1)
        if not free:
            return -1
        nr = (free & -free).bit_length() - 1
        old = await mm_rmw(k, sbq, "map", lambda b, nr=nr: b | 1 << nr, ACQUIRE)  # test_and_set_bit_lock()
        if not old >> nr & 1:
            return nr


# sbitmap_any_bit_set(), lib/sbitmap.c
def sbitmap_any_bit_set(sbq):
    return sbq.map != 0


async def sbq_wake_ptr(sbq):
    """sbq_wake_ptr(), lib/sbitmap.c: the first wait queue with a waiter, from wake_index on."""
    if not await atomic_read(sbq.ws_active):
        return None
    wake_index = await atomic_read(sbq.wake_index)
    for _ in range(SBQ_WAIT_QUEUES):
        ws = sbq.ws[wake_index]
        if await waitqueue_active(ws.wait):
            if wake_index != await atomic_read(sbq.wake_index):
                await atomic_set(sbq.wake_index, wake_index)
            return ws
        wake_index = sbq_index_inc(wake_index)
    return None


async def __sbq_wake_up(sbq):
    """__sbq_wake_up(), lib/sbitmap.c: count this free against a wait queue's batch;
    true means "call again" (the free still has to be counted somewhere)."""
    ws = await sbq_wake_ptr(sbq)
    if ws is None:
        return False
    wait_cnt = await atomic_dec_return(ws.wait_cnt)
    if sbq.patched(SBQ_WAKE_BEFORE_RESET):
        return await _sbq_wake_up_040b83fcecfb(sbq, ws, wait_cnt)
    if wait_cnt <= 0:
        wake_batch = sbq.wake_batch  # READ_ONCE(sbq->wake_batch)
        # Pairs with the memory barrier in sbitmap_queue_resize() (not modelled)
        # to ensure that we see the batch size update before the wait count is reset.
        if sbq.mm is not None:
            smp_mb__before_atomic(sbq.mm)
        # For concurrent callers of this, the one that failed the atomic_cmpxchg()
        # race calls again, to wake a new batch on a different 'ws'.
        ret = await atomic_cmpxchg(ws.wait_cnt, wait_cnt, wake_batch)
        if ret == wait_cnt:
            await sbq_index_atomic_inc(sbq.wake_index)
            await wake_up_nr(ws.wait, wake_batch)
            return False
        return True
    return False


async def _sbq_wake_up_040b83fcecfb(sbq, ws, wait_cnt):
    """__sbq_wake_up() after 040b83fcecfb (wake first, then move the index, then
    reset the count), and with 48c033314f37 on top when that toggle is set."""
    reset_fix = sbq.patched(SBQ_RESET_WAIT_CNT)
    if reset_fix:
        if wait_cnt < 0:
            return True
        # If we decremented queue without waiters, retry to avoid lost wakeups.
        if wait_cnt > 0:
            return not await waitqueue_active(ws.wait)
        # wait_cnt == 0: reset it whether or not anybody is woken, but retry
        # if nobody was there.
        ret = not await waitqueue_active(ws.wait)
    else:
        # For concurrent callers of this, callers should call this function
        # again to wakeup a new batch on a different 'ws'.
        if wait_cnt < 0 or not await waitqueue_active(ws.wait):
            return True
        if wait_cnt > 0:
            return False
        ret = False
    wake_batch = sbq.wake_batch  # READ_ONCE(sbq->wake_batch)
    # Wake up first in case concurrent callers decrease wait_cnt while the
    # waitqueue is empty.
    await wake_up_nr(ws.wait, wake_batch)
    # Pairs with the memory barrier in sbitmap_queue_resize() to ensure that
    # we see the batch size update before the wait count is reset
    # (smp_mb__before_atomic()); 040b83fcecfb moves wake_index on before
    # resetting wait_cnt, or concurrent callers see a valid wait_cnt in the
    # old waitqueue.
    if sbq.mm is not None:
        smp_mb__before_atomic(sbq.mm)
    await sbq_index_atomic_inc(sbq.wake_index)
    await atomic_set(ws.wait_cnt, wake_batch)
    return ret


async def sbitmap_queue_wake_up(sbq):
    """sbitmap_queue_wake_up(), lib/sbitmap.c."""
    while await __sbq_wake_up(sbq):
        pass


async def sbitmap_queue_clear(sbq, nr, cpu):
    """sbitmap_queue_clear(), lib/sbitmap.c (v5.8): free the bit, then account the wake-up.

    smp_mb__before_atomic() (e6d1fa584e0d, v5.6) orders the freed request's
    accesses before the clear (pairing with test_and_set_bit_lock()'s acquire);
    smp_mb__after_atomic() pairs with set_current_state() in
    prepare_to_wait_exclusive(): the clear before the waker's look at
    ``ws_active`` and waitqueue_active(), against the waiter's list add and
    ``ws_active`` before its retry of the allocation (store buffering)."""
    k = sbq.mm
    if k is None:
        await access(sbq, WRITE)  # sbitmap_deferred_clear_bit(): the bit is free from here
        sbq.map &= ~(1 << nr)
    else:
        smp_mb__before_atomic(k)
        await mm_rmw(k, sbq, "map", lambda b: b & ~(1 << nr), ONCE)  # sbitmap_deferred_clear_bit()
        smp_mb__after_atomic(k)
    await sbitmap_queue_wake_up(sbq)


def sbitmap_queue_wake_all(sbq):
    """sbitmap_queue_wake_all(), lib/sbitmap.c: every waiter of every queue."""
    wake_index = sbq.wake_index.counter
    for _ in range(SBQ_WAIT_QUEUES):
        wake_up_all_entries(sbq.ws[wake_index].wait)
        wake_index = sbq_index_inc(wake_index)


class sbq_wait:
    """struct sbq_wait / DEFINE_SBQ_WAIT(), include/linux/sbitmap.h: the wait entry,
    and whether it counts in ``ws_active``."""

    __slots__ = ("sbq", "wait")

    def __init__(self, name="sbq_wait"):
        self.sbq = None
        self.wait = wait_queue_entry(name)


async def sbitmap_prepare_to_wait(sbq, ws, sbq_wait_):
    """sbitmap_prepare_to_wait(), lib/sbitmap.c: count the waiter, then queue it."""
    if sbq_wait_.sbq is None:
        await atomic_inc(sbq.ws_active)
        sbq_wait_.sbq = sbq
    await prepare_to_wait_exclusive(ws.wait, sbq_wait_.wait)


async def sbitmap_finish_wait(sbq, ws, sbq_wait_):
    """sbitmap_finish_wait(), lib/sbitmap.c: dequeue, then stop counting the waiter."""
    await finish_wait(ws.wait, sbq_wait_.wait)
    if sbq_wait_.sbq is not None:
        await atomic_dec(sbq.ws_active)
        sbq_wait_.sbq = None


# sbitmap_weight(), lib/sbitmap.c
async def sbitmap_weight(sbq):
    await access(sbq, READ)
    return bin(sbq.map).count("1")
