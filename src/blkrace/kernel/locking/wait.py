"""Wait queues (include/linux/wait.h) and completions (kernel/sched/completion.c).
Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import READ, SYNC, WRITE, WaitQueue, access
from blkrace.kernel.memory import ONCE, mm_load, mm_store_locked, smp_mb, spin_acquire_order, spin_release_order
from blkrace.kernel.sched import (
    local_irq_disable,
    local_irq_enable,
    local_irq_restore,
    local_irq_save,
    preempt_disable,
    preempt_enable,
    schedule_on,
)


class wait_queue_head_t:
    __slots__ = ("name", "wq")

    def __init__(self, name, holders=None):
        self.name = name
        self.wq = WaitQueue(name, holders)


# wait_event(), include/linux/wait.h
async def wait_event(k, wq_head, condition, what="wait_event"):
    """wait_event(wq, condition): sleep until ``condition()`` holds.

    The check and the sleep are one atomic step here, which is what the
    kernel's prepare_to_wait()/set_current_state() protocol guarantees: a
    wake_up() after the check cannot be lost.
    """
    await access(wq_head, SYNC)
    while not condition():
        await schedule_on(k, wq_head.wq, what=what, resume=(wq_head, SYNC))


# wake_up(), include/linux/wait.h
async def wake_up(k, wq_head):
    """wake_up(): wake the waiters (all of them: none of ours is exclusive)."""
    await access(wq_head, SYNC)
    wq_head.wq.wake_all()


# wake_up_locked(), include/linux/wait.h
def wake_up_locked(wq_head):
    wq_head.wq.wake_all()


class completion:
    __slots__ = ("name", "done", "wq")

    def __init__(self, name, holders=None):
        self.name = name
        self.done = 0
        self.wq = WaitQueue(name, holders)


# wait_for_completion(), kernel/sched/completion.c
async def wait_for_completion(k, x):
    await access(x, SYNC)
    while not x.done:
        await schedule_on(k, x.wq, what="wait_for_completion", resume=(x, SYNC))
    x.done -= 1


# complete(), kernel/sched/completion.c
async def complete(k, x):
    await access(x, SYNC)
    x.done += 1
    x.wq.wake_one()


# complete_all(), kernel/sched/completion.c
async def complete_all(k, x):
    await access(x, SYNC)
    x.done = 1 << 30
    x.wq.wake_all()


# ---------------------------------------------------------------------------
# The prepare_to_wait() protocol at the kernel's granularity.
#
# wait_event() above fuses "check the condition" and "sleep" into one step,
# which is what the protocol guarantees for its callers.  Code that spells
# the protocol out (blk_mq_get_tag(): prepare, retry the allocation, then
# io_schedule()) has windows between those steps that the kernel has too: a
# wake-up after prepare_to_wait() and before schedule() makes schedule()
# return at once, and it consumes an exclusive wake-up although the task
# never slept.  A wait_queue_entry keeps exactly that state.


class wait_queue_entry:
    """struct wait_queue_entry, include/linux/wait.h, with autoremove_wake_function()
    (kernel/sched/wait.c) as its wake function, as DEFINE_WAIT() and DEFINE_SBQ_WAIT() set it.

    ``woken`` is the task's state seen from outside: False from prepare_to_wait()
    (TASK_UNINTERRUPTIBLE) until a wake-up or finish_wait() (TASK_RUNNING).

    An entry with a wake function of its own (``func``, an ``async`` callable
    taking the entry, as init_waitqueue_func_entry() sets one) stands for no
    task: __wake_up_common() calls it under the head's lock, and it counts
    against the wake-up's ``nr`` only when it returns true and the entry is
    ``exclusive`` (WQ_FLAG_EXCLUSIVE).
    """

    __slots__ = ("name", "head", "woken", "parked", "func", "exclusive", "k", "linked")

    def __init__(self, name, func=None, k=None):
        if func is not None and k is None:
            raise ValueError(f"wait entry {name}: a wake function runs under the head's lock: give the kernel (k)")
        self.name = name
        self.head = None  # the head whose list the entry is on (list_empty(&entry) when None)
        self.woken = True
        self.parked = None  # where schedule() parks the task: an engine wait queue per entry
        self.func = func
        self.exclusive = True
        self.k = k  # the kernel, for an entry with a wake function
        # The entry's own list pointers as list_empty_careful() reads them
        # locklessly (a location under lkmm), for an entry queued and
        # dequeued by __add_wait_queue() and list_del_init_entry() only.
        self.linked = False


class wait_queue_head:
    """struct wait_queue_head, include/linux/wait.h, for entry-based waiters.

    ``holders`` tells the wait-for graph whom the waiters wait for (see
    engine/waitq.py); it may be set after creation.

    Created with ``k`` under the ``lkmm`` memory model, the head is also a
    location of blkrace.kernel.memory: ``nonempty`` is what
    ``READ_ONCE(wq_head->head.next) != &wq_head->head`` tells the lockless
    waitqueue_active(); list changes under ``wq_head->lock`` store it, and the
    lock's acquire and release order what its holders do.
    """

    __slots__ = ("name", "entries", "holders", "k", "nonempty", "lock_owner", "lock_wq")

    def __init__(self, name, holders=None, k=None):
        self.name = name
        self.entries = []  # wq_head->head, in queue order
        self.holders = holders
        self.k = k if k is not None and k.memory is not None else None
        self.nonempty = False
        # wq_head->lock, when a caller holds it across steps of its own
        # (wq_head_lock_irq()): the task_struct holding it, and where the
        # head's one-step operations spin meanwhile.
        self.lock_owner = None
        self.lock_wq = None


def _head_holders(head):
    return lambda: head.holders() if head.holders else []


# The head's lock.  The operations below (prepare_to_wait_exclusive(),
# finish_wait(), wake_up_nr()) take wq_head->lock for one step each: the
# step is the critical section.  Code that holds the lock across steps of
# its own (blk_mq_mark_tag_wait() retries the driver tag under it) takes it
# with wq_head_lock_irq(); a one-step operation that meets it held spins
# until it is released.  Held by nobody (every other path), a one-step
# operation stays one step.  Lockdep does not see this lock (nor the
# one-step operations' hold of it).


async def _spin_while_head_locked(wq_head):
    """spin_lock_irqsave(&wq_head->lock) meeting the lock held by another CPU:
    spin with interrupts off until it is free (the caller's step has begun)."""
    if wq_head.lock_owner is None:
        return
    k = wq_head.lock_owner.k
    flags = local_irq_save(k)
    while wq_head.lock_owner is not None:
        await wq_head.lock_wq.park(resume=(wq_head, SYNC))
    local_irq_restore(k, flags)


# spin_lock_irq(&wq_head->lock), include/linux/spinlock.h, held across steps
async def wq_head_lock_irq(k, wq_head):
    """spin_lock_irq(&wq_head->lock) for a critical section of several steps."""
    local_irq_disable(k)
    preempt_disable(k)
    await access(wq_head, SYNC)
    await _spin_while_head_locked(wq_head)
    _take_head_lock(k, wq_head)
    if wq_head.k is not None:
        spin_acquire_order(wq_head.k, wq_head)


# spin_unlock_irq(&wq_head->lock), include/linux/spinlock.h
async def wq_head_unlock_irq(k, wq_head):
    await access(wq_head, SYNC)
    if wq_head.k is not None:
        spin_release_order(wq_head.k, wq_head)
    _drop_head_lock(wq_head)
    preempt_enable(k)
    local_irq_enable(k)


def _take_head_lock(k, wq_head):
    wq_head.lock_owner = k.current
    if wq_head.lock_wq is None:
        wq_head.lock_wq = WaitQueue(
            f"{wq_head.name}.lock", lambda: [wq_head.lock_owner.task] if wq_head.lock_owner else []
        )


def _drop_head_lock(wq_head):
    wq_head.lock_owner = None
    wq_head.lock_wq.wake_all()


# __add_wait_queue(), include/linux/wait.h
def __add_wait_queue(k, wq_head, wq_entry):
    """__add_wait_queue(): the entry at the head of the list, lock held."""
    k.execution.touch(wq_entry, WRITE)
    wq_entry.head = wq_head
    wq_head.entries.insert(0, wq_entry)
    mm_store_locked(k, wq_entry, "linked", True)
    if wq_head.k is not None:
        mm_store_locked(wq_head.k, wq_head, "nonempty", True)


# list_del_init(&wq_entry->entry), include/linux/list.h
def list_del_init_entry(k, wq_entry):
    """list_del_init() of a queued entry by code holding its head's lock."""
    wq_head = wq_entry.head
    if wq_head is None:
        return
    k.execution.touch(wq_entry, WRITE)
    wq_head.entries.remove(wq_entry)
    wq_entry.head = None
    mm_store_locked(k, wq_entry, "linked", False)
    if wq_head.k is not None:
        mm_store_locked(wq_head.k, wq_head, "nonempty", bool(wq_head.entries))


# list_empty_careful(&wq_entry->entry), include/linux/list.h
async def list_empty_careful_entry(wq_entry):
    """list_empty_careful(): a lockless look at whether the entry is queued, a
    step of its own (READ_ONCE() of its next pointer; under lkmm it may see
    an older state than the last __add_wait_queue() or list_del_init())."""
    return not await mm_load(wq_entry.k, wq_entry, "linked", ONCE)


async def prepare_to_wait_exclusive(wq_head, wq_entry):
    """prepare_to_wait_exclusive(), kernel/sched/wait.c: queue the entry at the tail
    (if not queued yet) and set the task's state, under the head's lock (one step)."""
    await access(wq_head, SYNC)  # spin_lock_irqsave(&wq_head->lock)
    await _spin_while_head_locked(wq_head)
    k = wq_head.k
    if k is not None:
        spin_acquire_order(k, wq_head)
    if wq_entry.head is None:
        wq_entry.head = wq_head
        wq_head.entries.append(wq_entry)
        if k is not None:
            mm_store_locked(k, wq_head, "nonempty", True)  # __add_wait_queue_entry_tail()
        if wq_entry.parked is None:
            wq_entry.parked = WaitQueue(wq_head.name, _head_holders(wq_head))
    wq_entry.woken = False  # set_current_state(TASK_UNINTERRUPTIBLE)
    if k is not None:
        # set_current_state() is smp_store_mb(current->state, ...): a full barrier,
        # the waiter's half of the pairing waitqueue_active()'s comment describes.
        smp_mb(k)
        spin_release_order(k, wq_head)  # spin_unlock_irqrestore()


async def finish_wait(wq_head, wq_entry):
    """finish_wait(), kernel/sched/wait.c: TASK_RUNNING, then dequeue unless a
    wake-up already did (list_empty_careful() is a lockless read: its own step)."""
    wq_entry.woken = True  # __set_current_state(TASK_RUNNING): current's own state
    await access(wq_head, READ)  # list_empty_careful(&wq_entry->entry)
    if wq_entry.head is not None:
        await access(wq_head, SYNC)  # spin_lock_irqsave(); list_del_init()
        await _spin_while_head_locked(wq_head)
        k = wq_head.k
        if k is not None:
            spin_acquire_order(k, wq_head)
        if wq_entry.head is not None:
            wq_entry.head.entries.remove(wq_entry)
            wq_entry.head = None
            if k is not None:
                mm_store_locked(k, wq_head, "nonempty", bool(wq_head.entries))
        if k is not None:
            spin_release_order(k, wq_head)


async def waitqueue_active(wq_head):
    """waitqueue_active(), include/linux/wait.h: a lockless look at the list,
    ``!list_empty(&wq_head->head)`` (list_empty() is a READ_ONCE() of head->next).
    The kernel's comment there: the waker needs an smp_mb() between making the
    condition true and this load, pairing with set_current_state()'s."""
    if wq_head.k is not None:
        return await mm_load(wq_head.k, wq_head, "nonempty", ONCE)
    await access(wq_head, READ)
    return bool(wq_head.entries)


async def wake_up_nr(wq_head, nr):
    """wake_up_nr() -> __wake_up(), kernel/sched/wait.c: under the head's lock, wake
    queued entries in order until ``nr`` exclusive ones were woken; autoremove takes
    each woken entry off the list.  A task between prepare_to_wait() and schedule()
    is woken all the same (its state goes back to TASK_RUNNING) and counts."""
    await access(wq_head, SYNC)
    await _spin_while_head_locked(wq_head)
    k = wq_head.k
    if k is not None:
        spin_acquire_order(k, wq_head)
    woken = 0
    held = None  # the kernel, once a wake function's steps hold the lock (see above)
    for entry in list(wq_head.entries):
        if woken >= nr:
            break
        if entry.func is not None:
            # __wake_up_common(): curr->func() under the lock; a function of
            # steps of its own (blk_mq_dispatch_wake()) holds it across them.
            if held is None:
                held = entry.k
                flags = local_irq_save(held)  # __wake_up_common_lock(): spin_lock_irqsave()
                _take_head_lock(held, wq_head)
            if await entry.func(entry) and entry.exclusive:
                woken += 1
            continue
        if entry.woken:
            # try_to_wake_up() finds TASK_RUNNING (the task is in finish_wait()):
            # no wake-up, so autoremove leaves the entry queued and nothing counts.
            continue
        entry.woken = True
        wq_head.entries.remove(entry)  # autoremove_wake_function(): list_del_init()
        entry.head = None
        entry.parked.wake_one()
        woken += 1
    if k is not None:
        if woken:
            mm_store_locked(k, wq_head, "nonempty", bool(wq_head.entries))
        spin_release_order(k, wq_head)
    if held is not None:
        _drop_head_lock(wq_head)
        local_irq_restore(held, flags)
    return woken


# model: wake_up_all() (__wake_up(), kernel/sched/wait.c) on an entry-based head, lock held
def wake_up_all_entries(wq_head):
    """wake_up_all() on an entry-based head, from code already under its lock."""
    before = bool(wq_head.entries)
    for entry in list(wq_head.entries):
        if not entry.woken:
            entry.woken = True
            wq_head.entries.remove(entry)
            entry.head = None
            entry.parked.wake_one()
    if wq_head.k is not None and before and not wq_head.entries:
        mm_store_locked(wq_head.k, wq_head, "nonempty", False)


# model: schedule() (kernel/sched/core.c) after prepare_to_wait()
async def schedule_entry(k, wq_entry, what="schedule", resume=None):
    """schedule() after prepare_to_wait(): returns at once if a wake-up came since
    (the task is TASK_RUNNING again), else sleeps until one does."""
    if wq_entry.woken:
        return
    await schedule_on(k, wq_entry.parked, what=what, resume=resume)
