"""block/blk-throttle.c (v3.1-v3.2): blk_throtl_bio() and its groups, with seed 004's patch.

Before the patch, the first bio of a cgroup on a queue allocates the group
from the I/O submission path: throtl_get_tg() drops the queue lock and RCU,
and throtl_alloc_tg() calls alloc_percpu() (GFP_KERNEL under
pcpu_alloc_mutex).  When that bio is reclaim's swap-out, reclaim re-enters
pcpu_alloc_mutex.  With the patch, the group is allocated with GFP_ATOMIC
under the queue lock and its per-CPU stats by a worker, installed with
cmpxchg, the group held by a reference while the work is pending.

Throttling limits themselves are not modelled: every group has no rule
(tg_no_rule_group()), so a bio only has its group found or created and its
dispatch accounted, which is all the race needs.
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
from blkrace.kernel.locking.rcu import call_rcu, rcu_read_lock, rcu_read_unlock
from blkrace.kernel.locking.spinlock import spin_lock_irq, spin_unlock_irq, spinlock_t
from blkrace.kernel.mm import GFP_ATOMIC, GFP_KERNEL, free_percpu, kzalloc_node
from blkrace.kernel.workqueue import INIT_WORK, schedule_work


class throtl_grp:
    __slots__ = ("name", "blkg", "ref", "stat_alloc_work", "freed")

    def __init__(self, name, blkcg):
        self.name = name
        self.blkg = blkio_group(f"{name}.blkg", blkcg)
        self.ref = 1  # the group list's reference
        self.stat_alloc_work = None
        self.freed = False


class throtl_data:
    __slots__ = ("name", "queue", "tg_list", "root_tg", "queue_lock")

    def __init__(self, q):
        self.name = f"{q.name}->td"
        self.queue = q
        self.tg_list = {}  # blkcg id -> throtl_grp
        self.root_tg = None
        self.queue_lock = spinlock_t(f"{q.name}->queue_lock", key="&(&q->__queue_lock)->rlock")


def _check_alive(tg):
    if tg.freed:
        # Checked invariant: nothing touches a group after its RCU free.
        raise StopRun(Violation("bug", f"use after free: {tg.name} touched after it was freed", origin="bug:tg-uaf"))


# throtl_find_tg(), block/blk-throttle.c
def throtl_find_tg(td, blkcg):
    return td.tg_list.get(blkcg.id)


# throtl_ref_get_tg(), block/blk-throttle.c
async def throtl_ref_get_tg(tg):
    await access(tg, WRITE)
    _check_alive(tg)
    tg.ref += 1


# throtl_put_tg(), block/blk-throttle.c
async def throtl_put_tg(k, tg):
    """throtl_put_tg(): the last reference frees the group (call_rcu(throtl_free_tg))."""
    await access(tg, WRITE)
    _check_alive(tg)
    BUG_ON(k, tg.ref <= 0)
    tg.ref -= 1  # atomic_dec_and_test(&tg->ref)
    if tg.ref == 0:
        # blk_throtl_bio() looks groups up under rcu_read_lock() alone, so the
        # group outlives the last reference by a grace period.
        call_rcu(k, throtl_free_tg, tg)


# throtl_free_tg(), block/blk-throttle.c
async def throtl_free_tg(k, tg):
    """throtl_free_tg() (an RCU callback): free_percpu(stats), kfree(tg)."""
    await access(tg, WRITE)
    tg.freed = True
    free_percpu(tg.blkg.stats_cpu)
    k.execution.event(f"{tg.name} freed")


# throtl_check_schedule_pcpu_stat_alloc(), block/blk-throttle.c (seed 004's RFT patch)
async def throtl_check_schedule_pcpu_stat_alloc(k, tg):
    """throtl_check_schedule_pcpu_stat_alloc(): a worker allocates the stats, holding a ref."""
    await access(tg.blkg, READ)
    if tg.blkg.stats_cpu is not None:
        return
    await throtl_ref_get_tg(tg)
    if not await schedule_work(k, tg.stat_alloc_work):
        # Work is already scheduled by somebody.
        await throtl_put_tg(k, tg)


# tg_stat_alloc_fn(), block/blk-throttle.c (seed 004's RFT patch)
async def tg_stat_alloc_fn(k, work):
    """tg_stat_alloc_fn(): in a worker, GFP_KERNEL is fine; install by cmpxchg."""
    tg = work.data
    await access(tg, READ)
    _check_alive(tg)
    stat_ptr = await blkio_alloc_blkg_stats_pcpu(k, tg.blkg.name)
    if stat_ptr is None:
        # If memory allocation failed, try again.
        await throtl_check_schedule_pcpu_stat_alloc(k, tg)
        await throtl_put_tg(k, tg)
        return
    ret = await blkio_cmpxchg_blkg_stats(tg.blkg, None, stat_ptr)
    if k.patched(CMPXCHG_RESULT_FIX):
        if ret is not None:
            free_percpu(stat_ptr)  # somebody else got to it first: ours goes
    elif ret is not stat_ptr:
        # The RFT as posted: cmpxchg() returns the *old* value, so this frees
        # the stats just installed (or the winner's, when there was one).
        free_percpu(tg.blkg.stats_cpu)
    await throtl_put_tg(k, tg)


# throtl_init_group(), block/blk-throttle.c
def throtl_init_group(k, tg):
    if k.patched(ALLOC_PCPU_FROM_WORKER):
        tg.stat_alloc_work = INIT_WORK(tg_stat_alloc_fn, f"{tg.name}->stat_alloc_work", tg)


# throtl_alloc_tg(), block/blk-throttle.c
async def throtl_alloc_tg(k, td, blkcg):
    """throtl_alloc_tg() (throtl_alloc_tg_sync() with the patch): the stats come with it."""
    if await kzalloc_node(k, 0, GFP_ATOMIC, what="throtl_grp") is None:
        return None
    tg = throtl_grp(f"tg:{blkcg.name}", blkcg)
    if await blkio_alloc_blkg_stats(k, tg.blkg):
        return None
    throtl_init_group(k, tg)
    return tg


# throtl_alloc_tg_async(), block/blk-throttle.c (seed 004's RFT patch)
async def throtl_alloc_tg_async(k, td, blkcg):
    """throtl_alloc_tg_async() (the patch): GFP_ATOMIC now, the stats later."""
    if await kzalloc_node(k, 0, GFP_ATOMIC, what="throtl_grp") is None:
        return None
    tg = throtl_grp(f"tg:{blkcg.name}", blkcg)
    throtl_init_group(k, tg)
    await throtl_check_schedule_pcpu_stat_alloc(k, tg)
    return tg


# throtl_get_tg(), block/blk-throttle.c
async def throtl_get_tg(k, td):
    """throtl_get_tg(): find the task's group on this queue, or create it. Called
    and returns with the queue lock held."""
    rcu_read_lock(k)
    blkcg = task_blkio_cgroup(k)
    tg = throtl_find_tg(td, blkcg)
    if tg is not None:
        rcu_read_unlock(k)
        return tg
    if k.patched(ALLOC_PCPU_FROM_WORKER):
        tg = await throtl_alloc_tg_async(k, td, blkcg)
        if tg is None:  # Group allocation failed. Account the IO to root group.
            rcu_read_unlock(k)
            return td.root_tg
        td.tg_list[blkcg.id] = tg  # throtl_init_add_tg_lists()
        rcu_read_unlock(k)
        return tg
    # Need to allocate a group. Allocation of group also needs allocation of
    # per cpu stats which in-turn takes a mutex() and can block. Hence we
    # need to drop rcu lock and queue_lock before we call alloc.
    rcu_read_unlock(k)
    await spin_unlock_irq(k, td.queue_lock)
    tg = await throtl_alloc_tg(k, td, blkcg)
    # Group allocated and queue is still alive. take the lock
    await spin_lock_irq(k, td.queue_lock)
    rcu_read_lock(k)
    blkcg = task_blkio_cgroup(k)
    # If some other thread already allocated the group while we were not
    # holding queue lock, free up the group.
    existing = throtl_find_tg(td, blkcg)
    if existing is not None:
        # kfree(tg): v3.1 frees the group but not its per-CPU stats (they leak).
        rcu_read_unlock(k)
        return existing
    if tg is None:
        rcu_read_unlock(k)
        return td.root_tg
    td.tg_list[blkcg.id] = tg
    rcu_read_unlock(k)
    return tg


# blk_throtl_bio(), block/blk-throttle.c
async def blk_throtl_bio(k, q, bio):
    """blk_throtl_bio(), from generic_make_request_checks(): find or create the group,
    account the dispatch (no group has limits here)."""
    td = q.td
    rcu_read_lock(k)
    blkcg = task_blkio_cgroup(k)
    tg = throtl_find_tg(td, blkcg)
    if tg is not None:
        await access(tg, READ)
        _check_alive(tg)
        await blkiocg_update_dispatch_stats(k, tg.blkg, 4096, bio.bi_opf & 1, True)
        rcu_read_unlock(k)
        return 0
    rcu_read_unlock(k)
    # Either group has not been allocated yet or it is not an unlimited IO group.
    await spin_lock_irq(k, td.queue_lock)
    tg = await throtl_get_tg(k, td)
    _check_alive(tg)
    await blkiocg_update_dispatch_stats(k, tg.blkg, 4096, bio.bi_opf & 1, True)
    await spin_unlock_irq(k, td.queue_lock)
    return 0


# blk_throtl_init(), block/blk-throttle.c
async def blk_throtl_init(k, q):
    """blk_throtl_init(): the root group, allocated synchronously at queue setup."""
    td = throtl_data(q)
    q.td = td
    root = throtl_grp("tg:root", k.blkcg_root)
    await blkio_alloc_blkg_stats(k, root.blkg)
    throtl_init_group(k, root)
    root.ref = 2
    td.root_tg = root
    td.tg_list[k.blkcg_root.id] = root
    return td


# throtl_unlink_blkio_group(), block/blk-throttle.c
async def throtl_unlink_blkio_group(k, td, blkcg):
    """The cgroup is removed (blkiocg_destroy() -> throtl_unlink_blkio_group())."""
    await spin_lock_irq(k, td.queue_lock)
    tg = td.tg_list.pop(blkcg.id, None)
    if tg is not None:
        await throtl_put_tg(k, tg)  # throtl_destroy_tg(), under the queue lock
    await spin_unlock_irq(k, td.queue_lock)


__all__ = ["GFP_KERNEL"]
