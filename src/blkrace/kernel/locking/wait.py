"""Wait queues (include/linux/wait.h) and completions (kernel/sched/completion.c).

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
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
        await schedule_on(k, wq_head.wq, what=what)


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
        await schedule_on(k, x.wq, what="wait_for_completion")
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
