"""A wait queue's lock held across steps, and wake functions (kernel/locking/wait.py).

blk_mq_mark_tag_wait() holds ``wq->lock`` while it adds its entry and retries
the driver tag; the head's one-step operations (prepare_to_wait_exclusive(),
finish_wait(), wake_up_nr()) must not run inside that critical section.  A
wake function (blk_mq_dispatch_wake()) runs under the lock too, over steps
of its own, and a non-exclusive entry does not use up the wake-up's ``nr``.
"""

from __future__ import annotations

from blkrace.engine import SYNC, access
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.locking.wait import (
    __add_wait_queue,
    list_del_init_entry,
    prepare_to_wait_exclusive,
    schedule_entry,
    wait_queue_entry,
    wait_queue_head,
    wake_up_nr,
    wq_head_lock_irq,
    wq_head_unlock_irq,
)
from blkrace.kernel.sched import task_run_on_cpu


def _build(log, with_waker):
    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)
        head = wait_queue_head("wq", k=k)
        marker = object()

        async def holder(k):
            await wq_head_lock_irq(k, head)
            log.append(("in", len(head.entries)))
            await access(marker, SYNC)  # a step of its own inside the critical section
            log.append(("still", len(head.entries)))
            await wq_head_unlock_irq(k, head)

        async def waiter(k):
            entry = wait_queue_entry("waiter")
            await prepare_to_wait_exclusive(head, entry)
            log.append(("queued", None))
            if with_waker:
                await schedule_entry(k, entry)

        async def waker(k):
            await access(marker, SYNC)
            await wake_up_nr(head, 1)

        task_run_on_cpu(k, holder, "holder", 0)
        task_run_on_cpu(k, waiter, "waiter", 1)
        if with_waker:
            task_run_on_cpu(k, waker, "waker", 0)

    return build


def test_a_one_step_operation_waits_for_a_lock_held_across_steps():
    """Every interleaving (DFS under a bound no run reaches, so that sleep
    sets cut no run short): the waiter's prepare_to_wait never lands between
    the holder's lock and unlock, and it spins (with interrupts off) rather
    than being lost."""
    runs = []

    def build(ex):
        log = []
        runs.append(log)
        _build(log, False)(ex)

    result = explore(build, make_strategy("dfs", preemption_bound=20), 100_000)
    assert result.exhausted and result.findings == []
    assert len(runs) > 3
    for log in runs:
        inside = [n for what, n in log if what in ("in", "still")]
        assert len(set(inside)) == 1, log  # the list did not change inside the critical section
        assert ("queued", None) in log


def test_the_waiter_is_woken_whatever_the_order():
    def build(ex):
        _build([], True)(ex)

    result = explore(build, make_strategy("dfs", preemption_bound=20), 100_000, stop_on_first=False)
    assert result.exhausted
    # A wake-up before the waiter queued leaves it asleep (nothing else wakes
    # it): a stall the engine names; no other outcome, and never a model error.
    assert set(result.kinds()) <= {"stall"}


def test_a_wake_function_runs_under_the_lock_and_a_non_exclusive_one_uses_no_nr():
    seen = []

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)
        head = wait_queue_head("wq", k=k)
        marker = object()

        async def wake_fn(entry):
            seen.append(("func", head.lock_owner is not None))
            await access(marker, SYNC)  # a step under the lock
            list_del_init_entry(k, entry)
            return 1

        func_entry = wait_queue_entry("dispatch_wait", func=wake_fn, k=k)
        func_entry.exclusive = False

        async def setup(k):
            await wq_head_lock_irq(k, head)
            __add_wait_queue(k, head, func_entry)
            await wq_head_unlock_irq(k, head)

        async def sleeper(k):
            entry = wait_queue_entry("sleeper")
            await prepare_to_wait_exclusive(head, entry)
            await schedule_entry(k, entry)
            seen.append(("sleeper woken", None))

        async def waker(k):
            await access(marker, SYNC)
            woken = await wake_up_nr(head, 1)
            seen.append(("woken", woken))
            seen.append(("lock free", head.lock_owner is None))

        task_run_on_cpu(k, setup, "setup", 0)
        task_run_on_cpu(k, sleeper, "sleeper", 1)
        task_run_on_cpu(k, waker, "waker", 0)

    # The order in which the entries are queued, then the wake-up: the one
    # run where both are queued before it.
    for i in range(200):
        seen.clear()
        result = explore(build, make_strategy("random", i), 1)
        if ("sleeper woken", None) in seen and ("func", True) in seen:
            break
    else:
        raise AssertionError("no run queued both entries before the wake-up")
    assert result.findings == []
    # The non-exclusive wake function ran (under the lock) and did not use up
    # nr=1: the exclusive sleeper was woken too, and counted.
    assert ("woken", 1) in seen and ("lock free", True) in seen
