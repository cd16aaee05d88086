"""Read-write semaphores (kernel/locking/rwsem.c): many readers or one writer.

Writers are not starved: once a writer waits, new readers queue behind it
(the handoff rule of the kernel's rwsem, simplified to FIFO fairness).
Lockdep sees readers as read acquisitions, writers as write ones.

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
from blkrace.kernel.locking.lockdep import lock_acquire, lock_release
from blkrace.kernel.sched import schedule_on


class rw_semaphore:
    __slots__ = ("name", "key", "readers", "writer", "waiting_writers", "wq")

    def __init__(self, name, key=None):
        self.name = name
        self.key = key or name
        self.readers = []  # engine tasks holding it for read
        self.writer = None
        self.waiting_writers = 0
        self.wq = WaitQueue(name, holders=lambda: ([self.writer] if self.writer else []) + list(self.readers))


# down_read(), kernel/locking/rwsem.c
async def down_read(k, sem):
    await access(sem, SYNC)
    lock_acquire(k, sem.key, read=1)
    while sem.writer is not None or sem.waiting_writers:
        await schedule_on(k, sem.wq, what="down_read", resume=(sem, SYNC))
    sem.readers.append(k.execution.current)


# up_read(), kernel/locking/rwsem.c
async def up_read(k, sem):
    await access(sem, SYNC)
    lock_release(k, sem.key)
    sem.readers.remove(k.execution.current)
    sem.wq.wake_all()


# down_write(), kernel/locking/rwsem.c
async def down_write(k, sem):
    await access(sem, SYNC)
    lock_acquire(k, sem.key)
    sem.waiting_writers += 1
    while sem.writer is not None or sem.readers:
        await schedule_on(k, sem.wq, what="down_write", resume=(sem, SYNC))
    sem.waiting_writers -= 1
    sem.writer = k.execution.current


# up_write(), kernel/locking/rwsem.c
async def up_write(k, sem):
    await access(sem, SYNC)
    lock_release(k, sem.key)
    sem.writer = None
    sem.wq.wake_all()
