"""Mutexes (kernel/locking/mutex.c): sleeping locks that know their owner."""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
from blkrace.kernel.sched import schedule_on


class mutex:
    __slots__ = ("name", "owner", "wq")

    def __init__(self, name):
        self.name = name
        self.owner = None  # engine task
        self.wq = WaitQueue(name, holders=lambda: [self.owner] if self.owner else [])


async def mutex_lock(k, lock):
    await access(lock, SYNC)
    while lock.owner is not None:
        await schedule_on(k, lock.wq, what="mutex_lock")
    lock.owner = k.execution.current


async def mutex_unlock(k, lock):
    await access(lock, SYNC)
    lock.owner = None
    lock.wq.wake_one()
