"""Spinlocks (include/linux/spinlock.h).

A waiter spins with preemption off, so its CPU runs nothing else of task
level meanwhile: the model parks it on the lock's queue while keeping its
lane exclusion, which is what spinning amounts to.  Sleeping while holding
one is caught by might_sleep().

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
from blkrace.kernel.locking.lockdep import lock_acquire, lock_release
from blkrace.kernel.memory import spin_acquire_order, spin_release_order
from blkrace.kernel.sched import local_irq_restore, local_irq_save, preempt_disable, preempt_enable


class spinlock_t:
    __slots__ = ("name", "owner", "wq", "key")

    def __init__(self, name, key=None):
        self.name = name
        self.key = key or name  # the lockdep class
        self.owner = None  # task_struct
        self.wq = WaitQueue(name, holders=lambda: [self.owner.task] if self.owner else [])

    def __repr__(self):
        return f"<spinlock {self.name} {'held by ' + self.owner.comm if self.owner else 'free'}>"


# spin_lock(), include/linux/spinlock.h
async def spin_lock(k, lock):
    """spin_lock(): preempt_disable(), then spin until the lock is ours."""
    preempt_disable(k)
    await access(lock, SYNC)
    lock_acquire(k, lock.key)
    while lock.owner is not None:
        await lock.wq.park(resume=(lock, SYNC))
    lock.owner = k.current
    spin_acquire_order(k, lock)


# spin_unlock(), include/linux/spinlock.h
async def spin_unlock(k, lock):
    await access(lock, SYNC)
    lock_release(k, lock.key)
    spin_release_order(k, lock)
    lock.owner = None
    lock.wq.wake_one()
    preempt_enable(k)


# spin_lock_irqsave(), include/linux/spinlock.h
async def spin_lock_irqsave(k, lock):
    """spin_lock_irqsave(lock, flags): returns ``flags`` for the restore."""
    flags = local_irq_save(k)
    await spin_lock(k, lock)
    return flags


# spin_unlock_irqrestore(), include/linux/spinlock.h
async def spin_unlock_irqrestore(k, lock, flags):
    await spin_unlock(k, lock)
    local_irq_restore(k, flags)


# spin_lock_irq(), include/linux/spinlock.h
async def spin_lock_irq(k, lock):
    await spin_lock_irqsave(k, lock)


# spin_unlock_irq(), include/linux/spinlock.h
async def spin_unlock_irq(k, lock):
    await spin_unlock_irqrestore(k, lock, False)
