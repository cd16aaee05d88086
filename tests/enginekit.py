"""Tiny textbook models built directly on the engine, for engine tests and benches."""

from __future__ import annotations

from blkrace.engine import READ, SYNC, WRITE, StopRun, Violation, WaitQueue, access


class Lock:
    """A sleeping lock on the engine's WaitQueue, reporting its owner for the wait-for graph."""

    def __init__(self, name, declare_resume=False):
        self.name = name
        self.owner = None
        self.wq = WaitQueue(name, holders=lambda: [self.owner] if self.owner else [])
        # Whether the re-check after a wake is declared (traps.block's
        # resume), as the kernel model's mutex does; else it is undeclared.
        self.resume = (self, SYNC) if declare_resume else None

    async def acquire(self, execution):
        await access(self, SYNC)
        while self.owner is not None:
            await self.wq.park(resume=self.resume)
        self.owner = execution.current

    async def release(self):
        await access(self, SYNC)
        self.owner = None
        self.wq.wake_one()


class Cell:
    def __init__(self, name, value=0):
        self.name = name
        self.value = value


def build_abba(execution):
    a, b = Lock("A"), Lock("B")

    async def t(first, second):
        await first.acquire(execution)
        await second.acquire(execution)
        await second.release()
        await first.release()

    execution.spawn(t(a, b), "t1", lane=0)
    execution.spawn(t(b, a), "t2", lane=1)


def build_lost_update(execution):
    """Two unlocked read-modify-write increments; the invariant wants 2."""
    cell = Cell("counter")

    async def inc():
        await access(cell, READ)
        v = cell.value
        await access(cell, WRITE)
        cell.value = v + 1

    execution.spawn(inc(), "inc1", lane=0)
    execution.spawn(inc(), "inc2", lane=1)

    def check(ex):
        if cell.value != 2:
            yield Violation("bug", f"lost update: counter is {cell.value}, expected 2", origin="bug:lost-update")

    execution.checkers.append(check)


def build_lost_wakeup(execution):
    """Check-then-sleep without the lock: the flag is set between check and park."""
    flag = Cell("flag")
    wq = WaitQueue("flag_wq")

    async def waiter():
        await access(flag, READ)
        if flag.value:
            return
        await access(wq, SYNC)  # the window: the waker may run here
        await wq.park()

    async def waker():
        await access(flag, WRITE)
        flag.value = 1
        await access(wq, SYNC)
        wq.wake_all()

    execution.spawn(waiter(), "waiter", lane=0)
    execution.spawn(waker(), "waker", lane=1)


def build_writers(a_steps, b_steps, same_object=True):
    def build(execution):
        x, y = Cell("x"), Cell("y")

        async def writer(obj, n):
            for _ in range(n):
                await access(obj, WRITE)
                obj.value += 1

        execution.spawn(writer(x, a_steps), "a", lane=0)
        execution.spawn(writer(x if same_object else y, b_steps), "b", lane=1)

    return build


def build_bug_on(execution):
    async def t():
        await access(None)
        raise StopRun(Violation("bug", "BUG_ON(1)"))

    execution.spawn(t(), "t", lane=0)


def build_philosophers(n, fixed):
    """N dining philosophers taking fork i then fork i+1 (mod N), sleeping
    locks; deadlocks.  Fixed: the last philosopher takes its forks in the
    other order."""

    def build(execution):
        forks = [Lock(f"fork{i}") for i in range(n)]

        async def philosopher(i):
            first, second = forks[i], forks[(i + 1) % n]
            if fixed and i == n - 1:
                first, second = second, first
            await first.acquire(execution)
            await second.acquire(execution)
            await second.release()
            await first.release()

        for i in range(n):
            execution.spawn(philosopher(i), f"phil{i}", lane=i)

    return build
