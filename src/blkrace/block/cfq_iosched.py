"""block/cfq-iosched.c (v3.1-v3.2): CFQ's cgroup groups only, the second user of seed 004's per-CPU stats.

What is here is the group path: cfq_get_cfqg() finds or creates the task's
cfq_group on the queue, from the request allocation path with the queue lock
held (cfq_set_request() -> cfq_get_queue() -> cfq_find_alloc_queue()).  Before
the patch it drops the queue lock and RCU and allocates the group's per-CPU
stats with alloc_percpu(), exactly as blk-throttle does; with the patch the
group comes from GFP_ATOMIC and its stats from a worker, and the group's
reference count becomes atomic because the worker puts it without the lock.

Left out: the legacy (single-queue) elevator itself, cfq queues and their
service trees, slices and idling, cic/io_context lookups, and the reference a
cfq_queue holds on its group (cfq_link_cfqq_cfqg()).  The model's queue is
blk-mq, so "CFQ on the queue" means this group lookup runs where the legacy
request allocation ran it, once per bio, and the dispatch statistics are
charged there too (cfq_dispatch_insert() is not modelled).
"""

from __future__ import annotations

from blkrace.block.blk_cgroup import (
    ALLOC_PCPU_FROM_WORKER,
    CMPXCHG_RESULT_FIX,
    blkio_alloc_blkg_stats,
    blkio_alloc_blkg_stats_pcpu,
    blkio_cmpxchg_blkg_stats,
    blkio_group,
    blkiocg_update_dispatch_stats,
    task_blkio_cgroup,
)
from blkrace.engine import READ, WRITE, StopRun, Violation, access
from blkrace.kernel.bug import BUG_ON
from blkrace.kernel.locking.rcu import rcu_read_lock, rcu_read_unlock
from blkrace.kernel.locking.spinlock import spin_lock_irq, spin_unlock_irq, spinlock_t
from blkrace.kernel.mm import GFP_ATOMIC, free_percpu, kzalloc_node
from blkrace.kernel.workqueue import INIT_WORK, schedule_work


class cfq_group:
    __slots__ = ("name", "blkg", "ref", "stat_alloc_work", "freed")

    def __init__(self, name, blkcg):
        self.name = name
        self.blkg = blkio_group(f"{name}.blkg", blkcg)
        self.ref = 0  # int before the patch, atomic_t with it
        self.stat_alloc_work = None
        self.freed = False


class cfq_data:
    __slots__ = ("name", "queue", "cfqg_list", "root_group", "queue_lock")

    def __init__(self, q, queue_lock):
        self.name = f"{q.name}->elevator_data"
        self.queue = q
        self.cfqg_list = {}  # blkcg id -> cfq_group (the blkio_group lookup of cfq_find_cfqg())
        self.root_group = None
        self.queue_lock = queue_lock


def _check_alive(cfqg):
    if cfqg.freed:
        # Checked invariant: nothing touches a group after cfq_put_cfqg() freed it.
        raise StopRun(
            Violation("bug", f"use after free: {cfqg.name} touched after it was freed", origin="bug:cfqg-uaf")
        )


# cfq_find_cfqg(), block/cfq-iosched.c
def cfq_find_cfqg(cfqd, blkcg):
    """cfq_find_cfqg(): the group of this cgroup on this queue, if any."""
    return cfqd.cfqg_list.get(blkcg.id)


# cfq_ref_get_cfqg(), block/cfq-iosched.c
async def cfq_ref_get_cfqg(k, cfqg):
    """cfq_ref_get_cfqg(): cfqg->ref++ under the queue lock; atomic_inc() with the patch."""
    if k.patched(ALLOC_PCPU_FROM_WORKER):
        await access(cfqg, WRITE)  # atomic_inc(&cfqg->ref)
        _check_alive(cfqg)
        cfqg.ref += 1
        return cfqg
    # A plain increment: load, then store.  Safe only because every user holds the queue lock.
    await access(cfqg, READ)
    _check_alive(cfqg)
    ref = cfqg.ref
    await access(cfqg, WRITE)
    cfqg.ref = ref + 1
    return cfqg


# cfq_put_cfqg(), block/cfq-iosched.c
async def cfq_put_cfqg(k, cfqg):
    """cfq_put_cfqg(): drop a reference; the last one frees the group and its stats."""
    if k.patched(ALLOC_PCPU_FROM_WORKER):
        # The patch: the stat worker puts without the queue lock, so atomic_dec_and_test().
        await access(cfqg, WRITE)
        _check_alive(cfqg)
        BUG_ON(k, cfqg.ref <= 0)
        cfqg.ref -= 1
        last = cfqg.ref == 0
    else:
        await access(cfqg, READ)
        _check_alive(cfqg)
        BUG_ON(k, cfqg.ref <= 0)
        ref = cfqg.ref
        await access(cfqg, WRITE)
        cfqg.ref = ref - 1
        last = cfqg.ref == 0
    if not last:
        return
    cfqg.freed = True  # free_percpu(cfqg->blkg.stats_cpu); kfree(cfqg)
    free_percpu(cfqg.blkg.stats_cpu)
    k.execution.event(f"{cfqg.name} freed")


# cfq_check_schedule_pcpu_stat_alloc(), block/cfq-iosched.c (seed 004's RFT patch)
async def cfq_check_schedule_pcpu_stat_alloc(k, cfqg):
    """cfq_check_schedule_pcpu_stat_alloc() (the patch): a worker allocates the stats, holding a ref."""
    await access(cfqg.blkg, READ)
    if cfqg.blkg.stats_cpu is not None:
        return
    await cfq_ref_get_cfqg(k, cfqg)
    if not await schedule_work(k, cfqg.stat_alloc_work):
        # Work is already scheduled by somebody.
        await cfq_put_cfqg(k, cfqg)


# cfqg_stat_alloc_fn(), block/cfq-iosched.c (seed 004's RFT patch)
async def cfqg_stat_alloc_fn(k, work):
    """cfqg_stat_alloc_fn() (the patch): no locks taken, a reference held by whoever queued it."""
    cfqg = work.data
    await access(cfqg, READ)
    _check_alive(cfqg)
    stat_ptr = await blkio_alloc_blkg_stats_pcpu(k, cfqg.blkg.name)
    if stat_ptr is None:
        # Memory allocation failed. Try again.
        await cfq_check_schedule_pcpu_stat_alloc(k, cfqg)
        await cfq_put_cfqg(k, cfqg)
        return
    ret = await blkio_cmpxchg_blkg_stats(cfqg.blkg, None, stat_ptr)
    if k.patched(CMPXCHG_RESULT_FIX):
        if ret is not None:
            free_percpu(stat_ptr)  # somebody else got to it first
    elif ret is not stat_ptr:
        # As posted: cmpxchg() returns the old value (NULL on success), so
        # this frees the stats that were just installed.
        free_percpu(cfqg.blkg.stats_cpu)
    await cfq_put_cfqg(k, cfqg)


# cfq_init_cfqg_work(), block/cfq-iosched.c (seed 004's RFT patch)
def cfq_init_cfqg_work(k, cfqg):
    if k.patched(ALLOC_PCPU_FROM_WORKER):
        cfqg.stat_alloc_work = INIT_WORK(cfqg_stat_alloc_fn, f"{cfqg.name}->stat_alloc_work", cfqg)


# cfq_alloc_cfqg(), block/cfq-iosched.c
async def cfq_alloc_cfqg(k, cfqd, blkcg):
    """cfq_alloc_cfqg(): the group with one reference (the group list's).  Before
    the patch it brings its per-CPU stats (GFP_KERNEL, may sleep); with it the
    stats are left to a worker."""
    if await kzalloc_node(k, 0, GFP_ATOMIC, what="cfq_group") is None:
        return None
    cfqg = cfq_group(f"cfqg:{blkcg.name}", blkcg)
    cfq_init_cfqg_work(k, cfqg)
    cfqg.ref = 1
    if k.patched(ALLOC_PCPU_FROM_WORKER):
        await cfq_check_schedule_pcpu_stat_alloc(k, cfqg)
        return cfqg
    if await blkio_alloc_blkg_stats(k, cfqg.blkg):
        return None  # kfree(cfqg)
    return cfqg


# cfq_get_cfqg(), block/cfq-iosched.c
async def cfq_get_cfqg(k, cfqd):
    """cfq_get_cfqg(): the task's group on this queue, created if needed.  Called
    and returns with the queue lock held."""
    rcu_read_lock(k)
    blkcg = task_blkio_cgroup(k)
    cfqg = cfq_find_cfqg(cfqd, blkcg)
    if cfqg is not None:
        rcu_read_unlock(k)
        return cfqg
    if k.patched(ALLOC_PCPU_FROM_WORKER):
        cfqg = await cfq_alloc_cfqg(k, cfqd, blkcg)
        if cfqg is None:
            rcu_read_unlock(k)
            return cfqd.root_group
        cfqd.cfqg_list[blkcg.id] = cfqg  # cfq_init_add_cfqg_lists()
        rcu_read_unlock(k)
        return cfqg
    # Need to allocate a group. Allocation of group also needs allocation of
    # per cpu stats which in-turn takes a mutex() and can block. Hence we need
    # to drop rcu lock and queue_lock before we call alloc.
    rcu_read_unlock(k)
    await spin_unlock_irq(k, cfqd.queue_lock)
    cfqg = await cfq_alloc_cfqg(k, cfqd, blkcg)
    await spin_lock_irq(k, cfqd.queue_lock)
    rcu_read_lock(k)
    blkcg = task_blkio_cgroup(k)
    # If some other thread already allocated the group while we were not
    # holding queue lock, free up the group.
    existing = cfq_find_cfqg(cfqd, blkcg)
    if existing is not None:
        # kfree(cfqg): v3.1 frees the group but not its per-CPU stats (they leak).
        rcu_read_unlock(k)
        return existing
    if cfqg is None:
        cfqg = cfqd.root_group
    else:
        cfqd.cfqg_list[blkcg.id] = cfqg  # cfq_init_add_cfqg_lists()
    rcu_read_unlock(k)
    return cfqg


# cfq_set_request(), block/cfq-iosched.c
async def cfq_set_request(k, q, bio):
    """cfq_set_request() -> cfq_get_queue() -> cfq_find_alloc_queue(), cut down to
    the group lookup: take the queue lock, find or create the group, charge it."""
    cfqd = q.cfqd
    await spin_lock_irq(k, cfqd.queue_lock)
    cfqg = await cfq_get_cfqg(k, cfqd)
    _check_alive(cfqg)
    await blkiocg_update_dispatch_stats(k, cfqg.blkg, 4096, bio.bi_opf & 1, True)
    await spin_unlock_irq(k, cfqd.queue_lock)


# cfq_init_queue(), block/cfq-iosched.c
async def cfq_init_queue(k, q):
    """cfq_init_queue(): the root group is allocated synchronously at elevator init
    and holds two references (queue exit, and its own static lifetime)."""
    queue_lock = (
        q.td.queue_lock if q.td is not None else spinlock_t(f"{q.name}->queue_lock", key="&(&q->__queue_lock)->rlock")
    )
    cfqd = cfq_data(q, queue_lock)  # q->queue_lock, shared with blk-throttle
    root = cfq_group("cfqg:root", k.blkcg_root)
    cfq_init_cfqg_work(k, root)
    root.ref = 2
    await blkio_alloc_blkg_stats(k, root.blkg)  # blkio_alloc_set_blkg_stats() with the patch
    cfqd.root_group = root
    cfqd.cfqg_list[k.blkcg_root.id] = root
    q.cfqd = cfqd
    return cfqd


# cfq_unlink_blkio_group(), block/cfq-iosched.c
async def cfq_unlink_blkio_group(k, cfqd, blkcg):
    """cfq_unlink_blkio_group() -> cfq_destroy_cfqg(): the cgroup is removed; drop the list's reference."""
    await spin_lock_irq(k, cfqd.queue_lock)
    cfqg = cfqd.cfqg_list.pop(blkcg.id, None)
    if cfqg is not None:
        await cfq_put_cfqg(k, cfqg)
    await spin_unlock_irq(k, cfqd.queue_lock)
