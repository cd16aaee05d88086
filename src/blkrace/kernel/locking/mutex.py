"""Mutexes (kernel/locking/mutex.c): sleeping locks that know their owner.

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
from blkrace.kernel.locking.lockdep import lock_acquire, lock_release
from blkrace.kernel.sched import schedule_on


class mutex:
    __slots__ = ("name", "owner", "wq", "key")

    def __init__(self, name, key=None):
        self.name = name
        self.key = key or name  # the lockdep class
        self.owner = None  # engine task
        self.wq = WaitQueue(name, holders=lambda: [self.owner] if self.owner else [])


# mutex_lock(), kernel/locking/mutex.c
async def mutex_lock(k, lock):
    """mutex_lock(): lockdep hears of it first (mutex_acquire()), then we may sleep."""
    await access(lock, SYNC)
    lock_acquire(k, lock.key)
    while lock.owner is not None:
        await schedule_on(k, lock.wq, what="mutex_lock", resume=(lock, SYNC))
    lock.owner = k.execution.current


# mutex_unlock(), kernel/locking/mutex.c
async def mutex_unlock(k, lock):
    await access(lock, SYNC)
    lock_release(k, lock.key)
    lock.owner = None
    lock.wq.wake_one()
