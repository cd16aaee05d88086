"""Lockdep on textbook cases, then its report text line by line."""

import re

from blkrace.block.blk_mq import FREEZE_LOCKDEP
from blkrace.engine import access, choose
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.irq import generic_handle_irq, request_irq
from blkrace.kernel.locking.lockdep import lockdep_graph
from blkrace.kernel.locking.mutex import mutex, mutex_lock, mutex_unlock
from blkrace.kernel.locking.spinlock import spin_lock, spin_unlock, spinlock_t
from blkrace.kernel.mm import GFP_KERNEL, __alloc_pages_direct_reclaim, kmalloc, mm_init
from blkrace.kernel.sched import task_run_on_cpu


def machine(ex, cpus=2):
    k = boot(ex, nr_cpus=cpus, hotplug=False)
    k.lockdep = ex.shared.setdefault("lockdep", lockdep_graph())
    return k


def build_ab_ba_across_runs(ex):
    """One task; which order it takes A and B in is a data choice, so no single
    run can deadlock, but two runs together show the inversion."""
    k = machine(ex)
    a, b = mutex("lock_A"), mutex("lock_B")

    async def t(k):
        first, second = (a, b) if await choose(2, "order") == 0 else (b, a)
        await mutex_lock(k, first)
        await mutex_lock(k, second)
        await mutex_unlock(k, second)
        await mutex_unlock(k, first)

    task_run_on_cpu(k, t, "worker", 0)


def test_ab_ba_across_two_runs_is_a_circular_dependency():
    result = explore(build_ab_ba_across_runs, make_strategy("dfs", preemption_bound=None), 10, stop_on_first=False)
    assert result.kinds() == ["lockdep"]
    finding = result.findings[0]
    assert finding.schedule_index == 1  # the second run completes the cycle...
    assert len(finding.prefix) == 1  # ...on the graph the first one left
    assert "possible circular locking dependency" in finding.violation.message
    assert "[ INFO: possible circular locking dependency detected ]" in finding.violation.detail


def build_irq_inversion(ex):
    """A spinlock taken in a hardirq handler and, elsewhere, with interrupts on."""
    k = machine(ex)
    lock = spinlock_t("dev->lock")

    async def handler(k, desc):
        await spin_lock(k, lock)
        await spin_unlock(k, lock)

    desc = request_irq(k, 33, "dev", handler, [1])

    async def task(k):
        await spin_lock(k, lock)  # interrupts enabled: HARDIRQ-ON-W
        await access(None)
        await spin_unlock(k, lock)

    async def device(k):
        await access(None)
        generic_handle_irq(k, desc)

    task_run_on_cpu(k, task, "task", 0)
    task_run_on_cpu(k, device, "device", 1)


def test_irq_safe_and_irq_unsafe_use_of_one_lock_is_inconsistent():
    result = explore(build_irq_inversion, make_strategy("random", 0), 20, stop_on_first=False)
    assert result.kinds() == ["lockdep"]
    msg = result.findings[0].violation.message
    assert re.search(r"inconsistent \{(IN-HARDIRQ-W|HARDIRQ-ON-W)\} -> \{(HARDIRQ-ON-W|IN-HARDIRQ-W)\} usage", msg)


def build_reclaim_recursion(ex):
    """A mutex held across a GFP_KERNEL allocation, and taken again inside reclaim."""
    k = machine(ex)
    mm = mm_init(k)
    lock = mutex("fs_lock")

    async def writeback(k):
        await mutex_lock(k, lock)
        await mutex_unlock(k, lock)

    mm.swap_writepage = writeback

    async def holder(k):
        await mutex_lock(k, lock)
        await kmalloc(k, 64, GFP_KERNEL)  # RECLAIM_FS-ON-W
        await mutex_unlock(k, lock)

    async def reclaimer(k):
        await access(None)
        await __alloc_pages_direct_reclaim(k, GFP_KERNEL)  # IN-RECLAIM_FS-W

    task_run_on_cpu(k, holder, "holder", 0)
    task_run_on_cpu(k, reclaimer, "kswapd0", 1)


def test_reclaim_recursion_is_an_inconsistent_reclaim_fs_state():
    result = explore(build_reclaim_recursion, make_strategy("random", 0), 20, stop_on_first=False)
    assert result.kinds() == ["lockdep"]
    assert "{RECLAIM_FS-ON-W} -> {IN-RECLAIM_FS-W}" in result.findings[0].violation.message or (
        "{IN-RECLAIM_FS-W} -> {RECLAIM_FS-ON-W}" in result.findings[0].violation.message
    )


def test_lockdep_reports_once_per_campaign():
    result = explore(build_ab_ba_across_runs, make_strategy("random", 1), 30, stop_on_first=False)
    assert len(result.findings) == 1


def _normalize(line):
    """Addresses, offsets and file positions are the model's own; compare the rest exactly."""
    line = re.sub(r"\[<[0-9a-f]{16}>\] ", "[<ADDR>] ", line)
    line = re.sub(r"  \([^)]*:\d+\)$", "", line)
    return re.sub(r"(\w)\+\d+", r"\1+OFF", line)


def test_inconsistent_report_text_line_by_line():
    """The reclaim case, checked by hand against print_usage_bug() of v3.x
    (print_irqtrace_events() is reduced to its first line: the model keeps no
    irq-event history; dump_stack()'s "Not tainted <version>" is left out)."""
    result = explore(build_reclaim_recursion, make_strategy("dfs", preemption_bound=0), 5, stop_on_first=True)
    detail = [_normalize(line) for line in result.findings[0].violation.detail]
    expected = [
        "",
        "=================================",
        "[ INFO: inconsistent lock state ]",
        "3.1.0-blkrace #1",
        "---------------------------------",
        "inconsistent {RECLAIM_FS-ON-W} -> {IN-RECLAIM_FS-W} usage.",
        "kswapd0/2 [HC0[0]:SC0[0]:HE1:SE1] takes:",
        " (fs_lock){+.+.?.}, at: [<ADDR>] writeback+OFF",
        "{RECLAIM_FS-ON-W} state was registered at:",
        "  [<ADDR>] mark_lock+OFF",
        "  [<ADDR>] lockdep_trace_alloc+OFF",
        "  [<ADDR>] __alloc_pages_nodemask+OFF",
        "  [<ADDR>] kmalloc+OFF",
        "  [<ADDR>] holder+OFF",
        "irq event stamp: 4",
        "",
        "other info that might help us debug this:",
        " Possible unsafe locking scenario:",
        "",
        "       CPU0",
        "       ----",
        "  lock(fs_lock);",
        "  <Interrupt>",
        "    lock(fs_lock);",
        "",
        " *** DEADLOCK ***",
        "",
        "no locks held by kswapd0/2.",
        "",
        "stack backtrace:",
        "Pid: 2, comm: kswapd0 Not tainted 3.1.0-blkrace #1",
        "Call Trace:",
        " [<ADDR>] print_usage_bug+OFF",
        " [<ADDR>] mark_lock+OFF",
        " [<ADDR>] mutex_lock+OFF",
        " [<ADDR>] writeback+OFF",
        " [<ADDR>] try_to_free_pages+OFF",
        " [<ADDR>] __alloc_pages_direct_reclaim+OFF",
        " [<ADDR>] reclaimer+OFF",
    ]
    assert detail == expected


def build_freeze_then_lock(ex, non_owner=False, patches=frozenset({FREEZE_LOCKDEP.name})):
    """The queue freeze as a lock (v6.13): one task freezes the queue and takes
    a mutex under it, then takes the mutex and enters the queue.  Run alone it
    cannot deadlock; with another task doing the second half while the first
    is frozen, it would.  Lockdep must see the inversion from the one task."""
    from blkrace.block import blk_mq
    from blkrace.block.blk_core import blk_queue_enter, blk_queue_exit
    from blkrace.drivers.null_blk import null_add_dev

    k = boot(ex, nr_cpus=2, hotplug=False, patches=patches)
    k.lockdep = ex.shared.setdefault("lockdep", lockdep_graph())
    nb = null_add_dev(k, "sda", nr_hw_queues=1, hw_queue_depth=4)
    q = nb.q
    sysfs_lock = mutex("q->sysfs_lock")
    start = blk_mq.blk_freeze_queue_start_non_owner if non_owner else blk_mq.blk_freeze_queue_start
    end = blk_mq.blk_mq_unfreeze_queue_non_owner if non_owner else blk_mq.blk_mq_unfreeze_queue

    async def t(k):
        await start(q)
        await blk_mq.blk_mq_freeze_queue_wait(q)
        await mutex_lock(k, sysfs_lock)
        await mutex_unlock(k, sysfs_lock)
        await end(q)
        await mutex_lock(k, sysfs_lock)
        assert await blk_queue_enter(q, 0, q.io_lockdep_map) == 0
        await blk_queue_exit(q)
        await mutex_unlock(k, sysfs_lock)

    task_run_on_cpu(k, t, "elevator_switch", 0)


def test_a_lock_taken_under_a_queue_freeze_and_around_an_entry_is_a_circular_dependency():
    result = explore(build_freeze_then_lock, make_strategy("random", 0), 5, stop_on_first=False)
    assert result.kinds() == ["lockdep"]
    detail = "\n".join(result.findings[0].violation.detail)
    assert "possible circular locking dependency" in detail
    assert "&sda->q_usage_counter(io)" in detail
    assert "q->sysfs_lock" in detail


def test_before_f1be1788a32e_the_freeze_is_no_lock_to_lockdep():
    result = explore(
        lambda ex: build_freeze_then_lock(ex, patches=frozenset()), make_strategy("random", 0), 5, stop_on_first=False
    )
    assert result.kinds() == []


def test_a_non_owner_freeze_is_invisible_to_lockdep():
    result = explore(
        lambda ex: build_freeze_then_lock(ex, non_owner=True), make_strategy("random", 0), 5, stop_on_first=False
    )
    assert result.kinds() == []


def _one_task(body):
    def build(ex):
        k = machine(ex)
        task_run_on_cpu(k, body, "t", 0)

    return explore(build, make_strategy("random", 0), 3, stop_on_first=False)


def test_an_ordinary_read_taken_twice_is_recursive_locking_but_a_recursive_read_is_not():
    from blkrace.kernel.locking.rwsem import down_read, rw_semaphore, up_read
    from blkrace.kernel.locking.srcu import srcu_read_lock, srcu_read_unlock, srcu_struct

    sem = rw_semaphore("&sb->s_umount")

    async def twice_down_read(k):
        await down_read(k, sem)
        await down_read(k, sem)  # a writer queued between the two would deadlock it
        await up_read(k, sem)
        await up_read(k, sem)

    result = _one_task(twice_down_read)
    assert result.kinds() == ["lockdep"]
    assert "possible recursive locking" in result.findings[0].violation.message

    ssp = srcu_struct("head->srcu")

    async def nested_srcu_and_both_orders(k):
        a = mutex("lock_A")
        i = await srcu_read_lock(k, ssp)
        j = await srcu_read_lock(k, ssp)
        await mutex_lock(k, a)  # srcu -> A is not a dependency: a held recursive read gives none
        await mutex_unlock(k, a)
        await srcu_read_unlock(k, ssp, j)
        await srcu_read_unlock(k, ssp, i)
        await mutex_lock(k, a)
        i = await srcu_read_lock(k, ssp)  # A -> srcu is one
        await srcu_read_unlock(k, ssp, i)
        await mutex_unlock(k, a)

    assert _one_task(nested_srcu_and_both_orders).kinds() == []
