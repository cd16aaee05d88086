"""Memory allocation and direct reclaim (mm/page_alloc.c, mm/vmscan.c, mm/percpu.c, v3.1).

An allocation that may sleep (__GFP_WAIT) can, under memory pressure, enter
direct reclaim; whether it does, succeeds or fails is the explorer's choice
(``choose``).  Direct reclaim marks the task PF_MEMALLOC (no reclaim from
reclaim) and tells lockdep it is in reclaim, then writes dirty anonymous
pages to swap: swap_writepage() -> submit_bio() on the swap device, on the
same task, back into the block layer.

Left out: zones, watermarks, kswapd (direct reclaim only), page cache
writeback, the OOM killer; a failed allocation just returns NULL.
"""

from __future__ import annotations

from blkrace.engine import choose
from blkrace.kernel.locking.lockdep import (
    __GFP_FS,
    __GFP_IO,
    __GFP_NOMEMALLOC,
    __GFP_WAIT,
    FS_RECLAIM_REWORK,
    fs_reclaim_acquire,
    fs_reclaim_release,
    lockdep_clear_current_reclaim_state,
    lockdep_set_current_reclaim_state,
    lockdep_trace_alloc,
)
from blkrace.kernel.locking.mutex import mutex, mutex_lock, mutex_unlock
from blkrace.kernel.sched import PF_MEMALLOC

__GFP_HIGH = 0x20
GFP_ATOMIC = __GFP_HIGH
GFP_NOIO = __GFP_WAIT
GFP_NOFS = __GFP_WAIT | __GFP_IO
GFP_KERNEL = __GFP_WAIT | __GFP_IO | __GFP_FS


class mm_state:
    """What the scenario sets: memory pressure, and who writes to swap."""

    __slots__ = ("pressure", "swap_writepage", "allocated", "nr_pcpu", "pcpu_alloc_mutex")

    def __init__(self):
        self.pressure = False
        self.swap_writepage = None  # async fn(k): reclaim's pageout of one anonymous page
        self.allocated = 0
        self.nr_pcpu = 0
        self.pcpu_alloc_mutex = mutex("pcpu_alloc_mutex")


# model: boot: the memory-pressure state the allocator's choices read
def mm_init(k):
    k.mm = mm_state()
    return k.mm


# __alloc_pages_nodemask(), mm/page_alloc.c
async def __alloc_pages_nodemask(k, gfp_mask, what):
    """__alloc_pages_nodemask(): may reclaim, may fail; True when the pages came."""
    lockdep_trace_alloc(k, gfp_mask)
    mm = k.mm
    if not mm.pressure:
        return True
    ts = k.current
    can_reclaim = gfp_mask & __GFP_WAIT and not (ts.flags & PF_MEMALLOC and not gfp_mask & __GFP_NOMEMALLOC)
    if not can_reclaim:
        # Atomic (or reclaim's own) allocations dip into the reserves, or fail.
        return not await choose(2, f"{what}: atomic allocation fails")
    pick = await choose(3, f"{what}: 0 pages free, 1 direct reclaim, 2 fails")
    if pick == 0:
        return True
    if pick == 2:
        return False
    await __alloc_pages_direct_reclaim(k, gfp_mask)
    return True


# __alloc_pages_direct_reclaim(), mm/page_alloc.c
async def __alloc_pages_direct_reclaim(k, gfp_mask):
    """__alloc_pages_direct_reclaim() (__perform_reclaim() from v3.4): reclaim as
    PF_MEMALLOC, bracketed for lockdep (the reclaim state, or with
    d92a8cfcb37e the fs_reclaim pseudo-lock held across it)."""
    ts = k.current
    rework = k.patched(FS_RECLAIM_REWORK)
    if rework:
        fs_reclaim_acquire(k, gfp_mask)
    ts.flags |= PF_MEMALLOC
    if not rework:
        lockdep_set_current_reclaim_state(k, gfp_mask)
    k.execution.event(f"{ts.comm}: direct reclaim (gfp {gfp_mask:#x})")
    await try_to_free_pages(k, gfp_mask)
    if not rework:
        lockdep_clear_current_reclaim_state(k)
    ts.flags &= ~PF_MEMALLOC
    if rework:
        fs_reclaim_release(k, gfp_mask)


# try_to_free_pages(), mm/vmscan.c
async def try_to_free_pages(k, gfp_mask):
    """try_to_free_pages() -> shrink_page_list() -> pageout(): swap out an anonymous
    page if the allocation allows I/O."""
    if gfp_mask & __GFP_IO and k.mm.swap_writepage is not None:
        await k.mm.swap_writepage(k)


# kmalloc(), include/linux/slab.h
async def kmalloc(k, size, gfp_mask, what="kmalloc"):
    """kmalloc()/kzalloc_node(): an object, or None."""
    if await __alloc_pages_nodemask(k, gfp_mask, what):
        k.mm.allocated += 1
        return object()
    return None


# kzalloc_node(), include/linux/slab.h
async def kzalloc_node(k, size, gfp_mask, node=0, what="kzalloc_node"):
    return await kmalloc(k, size, gfp_mask, what)


class percpu_ptr:
    """What alloc_percpu() returns."""

    __slots__ = ("name", "freed")

    def __init__(self, name):
        self.name = name
        self.freed = False


async def pcpu_alloc(k, size, what):
    """pcpu_alloc(), mm/percpu.c: under pcpu_alloc_mutex, populate a chunk with
    GFP_KERNEL pages: the mutex is held across an allocation that may reclaim."""
    mm = k.mm
    await mutex_lock(k, mm.pcpu_alloc_mutex)
    ok = await __alloc_pages_nodemask(k, GFP_KERNEL, f"pcpu_populate_chunk for {what}")
    await mutex_unlock(k, mm.pcpu_alloc_mutex)
    if not ok:
        return None
    mm.nr_pcpu += 1
    return percpu_ptr(f"{what}#{mm.nr_pcpu}")


# alloc_percpu(), include/linux/percpu.h
async def alloc_percpu(k, what="alloc_percpu"):
    """alloc_percpu(): per-CPU memory; GFP_KERNEL, no way to say otherwise."""
    return await pcpu_alloc(k, 0, what)


# free_percpu(), mm/percpu.c
def free_percpu(ptr):
    if ptr is not None:
        ptr.freed = True


__all__ = ["GFP_ATOMIC", "GFP_KERNEL", "GFP_NOFS", "GFP_NOIO", "__GFP_FS", "__GFP_IO", "__GFP_WAIT"]
