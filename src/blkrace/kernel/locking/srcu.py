"""SRCU (kernel/rcu/srcutree.c): sleepable read-side sections and grace periods.

synchronize_srcu() waits for every reader that was inside a read-side
section when it started; readers that begin later do not hold it up.  The
model keeps, per open section, the generation it started in; a grace period
bumps the generation and waits until no section of an older one is left.
Its wait-for edges point at exactly those readers.

Kernel baseline: v5.8 (include/linux/srcu.h for the read side).
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
from blkrace.kernel.locking.lockdep import lock_acquire, lock_release
from blkrace.kernel.memory import rcu_gp_start_order, rcu_read_lock_order, synchronize_rcu_order
from blkrace.kernel.sched import schedule_on


class srcu_struct:
    __slots__ = ("name", "gen", "readers", "grace_periods")

    def __init__(self, name):
        self.name = name
        self.gen = 0
        self.readers = []  # [(engine task, generation)] of open read sections
        self.grace_periods = []  # wait queues of synchronize_srcu() callers


# srcu_read_lock(), include/linux/srcu.h
async def srcu_read_lock(k, ssp):
    """srcu_read_lock(): enter a read-side section; returns the index for unlock."""
    await access(ssp, SYNC)
    lock_acquire(k, ssp.name, read=2)  # rcu_lock_acquire(&ssp->dep_map): a recursive read
    idx = (k.execution.current, ssp.gen)
    ssp.readers.append(idx)
    rcu_read_lock_order(k, ssp.name)
    return idx


# srcu_read_unlock(), include/linux/srcu.h
async def srcu_read_unlock(k, ssp, idx):
    await access(ssp, SYNC)
    lock_release(k, ssp.name)
    ssp.readers.remove(idx)
    for gp in ssp.grace_periods:
        gp.wake_all()


# synchronize_srcu(), kernel/rcu/srcutree.c
async def synchronize_srcu(k, ssp):
    """synchronize_srcu() -> __synchronize_srcu(): wait out the readers that predate us."""
    await access(ssp, SYNC)
    gen = ssp.gen
    ssp.gen += 1
    rcu_gp_start_order(k, ssp.name)

    def readers_before():
        return [task for task, g in ssp.readers if g <= gen]

    gp = WaitQueue(f"{ssp.name} grace period", holders=readers_before)
    ssp.grace_periods.append(gp)
    while readers_before():
        await schedule_on(k, gp, what="__synchronize_srcu", resume=(ssp, SYNC))
    ssp.grace_periods.remove(gp)
    synchronize_rcu_order(k)
