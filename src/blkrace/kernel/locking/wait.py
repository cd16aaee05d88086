"""Wait queues (include/linux/wait.h) and completions (kernel/sched/completion.c).
Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import READ, SYNC, WaitQueue, access
from blkrace.kernel.memory import ONCE, mm_load, mm_store_locked, smp_mb, spin_acquire_order, spin_release_order
from blkrace.kernel.sched import schedule_on


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
    """

    __slots__ = ("name", "head", "woken", "parked")

    def __init__(self, name):
        self.name = name
        self.head = None  # the head whose list the entry is on (list_empty(&entry) when None)
        self.woken = True
        self.parked = None  # where schedule() parks the task: an engine wait queue per entry


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

    __slots__ = ("name", "entries", "holders", "k", "nonempty")

    def __init__(self, name, holders=None, k=None):
        self.name = name
        self.entries = []  # wq_head->head, in queue order
        self.holders = holders
        self.k = k if k is not None and k.memory is not None else None
        self.nonempty = False


def _head_holders(head):
    return lambda: head.holders() if head.holders else []


async def prepare_to_wait_exclusive(wq_head, wq_entry):
    """prepare_to_wait_exclusive(), kernel/sched/wait.c: queue the entry at the tail
    (if not queued yet) and set the task's state, under the head's lock (one step)."""
    await access(wq_head, SYNC)  # spin_lock_irqsave(&wq_head->lock)
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
    k = wq_head.k
    if k is not None:
        spin_acquire_order(k, wq_head)
    woken = 0
    for entry in list(wq_head.entries):
        if woken >= nr:
            break
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
