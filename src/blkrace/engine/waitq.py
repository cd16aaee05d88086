"""WaitQueue: the single park/unpark primitive every lock and wait is built on."""

from __future__ import annotations

import types

from blkrace.engine.traps import BLOCK


class WaitQueue:
    """A FIFO of parked tasks (Trio's ParkingLot).

    ``holders`` is how the wait-for graph learns whom the waiters wait for:
    a callable returning the tasks that must act before a waiter can go on
    (a mutex returns its owner, an SRCU grace period its readers).  ``None``
    means "nobody in particular" (an event that may simply never come).
    """

    __slots__ = ("name", "waiters", "holders", "idle")

    def __init__(self, name, holders=None, idle=False):
        self.name = name
        self.waiters = []
        self.holders = holders
        # An idle queue (a worker pool waiting for work) is where a task rests,
        # not where it is stuck: end-of-run and hung-task checks skip it.
        self.idle = idle

    @types.coroutine
    def park(self, timeout_ns=None, hung_check=True, resume=None):
        """Await this: block the current task here until woken.

        The trap of :func:`blkrace.engine.traps.block`, yielded here rather
        than through a call to it: one frame less on every lock's slow path.
        """
        return (yield (BLOCK, self, timeout_ns, hung_check, resume))

    def wake_one(self, value=None):
        """Wake the first waiter; return it (or None if nobody waits)."""
        if not self.waiters:
            return None
        task = self.waiters.pop(0)
        task.execution._unblock(task, value)
        return task

    def wake_all(self, value=None):
        """Wake every waiter, in FIFO order; return how many."""
        waiters = self.waiters
        if not waiters:
            return 0
        self.waiters = []
        for task in waiters:
            task.execution._unblock(task, value)
        return len(waiters)

    def __bool__(self):
        return bool(self.waiters)

    def __repr__(self):
        return f"<WaitQueue {self.name} {len(self.waiters)} waiting>"
